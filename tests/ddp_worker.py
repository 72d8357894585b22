"""Run by torchrun in test_train.py: train a tiny model, then save this rank's weights."""

import sys

import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from helpers import tiny_config  # noqa: E402

from vqspeech.bin.runner import exit_entry_point  # noqa: E402
from vqspeech.train import train  # noqa: E402


def main():
    train_dir, exp_dir, out_dir, steps = sys.argv[1:5]
    import os
    import threading

    if os.environ.get("DIE_RANK") == os.environ.get("RANK"):  # simulate a worker crash mid-training
        threading.Timer(float(os.environ.get("DIE_AFTER", "4")), os._exit, [17]).start()
    cfg = tiny_config(max_steps=int(steps), checkpoint_every=int(steps))
    res = train(cfg, train_dir, None, exp_dir, progress=False, dist_timeout_s=120)
    rank = int(__import__("os").environ.get("RANK", "0"))
    torch.save({k: v.cpu() for k, v in res.model.state_dict().items()}, f"{out_dir}/rank{rank}.pt")
    torch.save(res.final, f"{out_dir}/final{rank}.pt")


if __name__ == "__main__":
    main()
    exit_entry_point(0)  # as `python -m vqspeech.bin.train*` leaves a torchrun worker
