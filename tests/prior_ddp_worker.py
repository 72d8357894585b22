"""Run by torchrun in test_prior.py: train a tiny prior on synthetic codes, save this rank's weights."""

import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from test_prior import SOURCE, _chain_codes, _tiny_cfg  # noqa: E402

from vqspeech.bin.runner import exit_entry_point  # noqa: E402
from vqspeech.prior.data import CodeCorpus  # noqa: E402
from vqspeech.prior.train import train_prior  # noqa: E402


def main():
    exp_dir, out_dir, steps = sys.argv[1:4]
    codes, u2s = _chain_codes(10, 40, seed=6)
    corpus = CodeCorpus.from_codes(codes, u2s, SOURCE.speakers, 4, "codes")
    res = train_prior(_tiny_cfg(int(steps)), SOURCE, corpus, None, exp_dir, progress=False, dist_timeout_s=120)
    torch.save({k: v.cpu() for k, v in res.model.state_dict().items()}, f"{out_dir}/rank{os.environ['RANK']}.pt")


if __name__ == "__main__":
    main()
    exit_entry_point(0)  # as `python -m vqspeech.bin.train*` leaves a torchrun worker
