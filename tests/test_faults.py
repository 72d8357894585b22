import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from vqspeech.checkpoint import list_step_checkpoints, load_checkpoint
from vqspeech.train import train

from helpers import tiny_config

TESTS = Path(__file__).resolve().parent


def test_sigkill_at_random_moments_then_resume_equals_uninterrupted(tiny_corpus, tmp_path):
    data = str(tiny_corpus / "data" / "train")
    steps = 90
    cfg = tiny_config(max_steps=steps, checkpoint_every=3, val_every=10_000, audio_samples=0)
    reference = train(cfg, data, None, tmp_path / "ref", progress=False).model.state_dict()

    exp = tmp_path / "killed"
    # The worker must reduce in the same order as the reference above: the same number of threads (on a
    # machine or a taskset with one core, torch here uses one; forcing two there made the weights differ
    # in their last bits).
    env = dict(os.environ, PYTHONPATH=str(TESTS.parent), OMP_NUM_THREADS=str(torch.get_num_threads()))
    rng = random.Random(0)
    kills = 0
    for attempt in range(6):
        proc = subprocess.Popen([sys.executable, str(TESTS / "train_worker.py"), data, str(exp), str(steps)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if attempt < 4:
            # Wait until this run has written a new checkpoint (it is past start-up and training), then
            # kill it a random moment later: mid-step or mid-checkpoint-write.
            def newest_step():
                found = list_step_checkpoints(exp / "checkpoints")
                return found[-1][0] if found else 0

            before = newest_step()
            deadline = time.time() + 60
            while proc.poll() is None and time.time() < deadline and newest_step() <= before:
                time.sleep(0.02)
            time.sleep(rng.uniform(0.0, 0.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
        proc.wait(120)
        done = list_step_checkpoints(exp / "checkpoints")
        if done and done[-1][0] == steps:
            break
    assert kills >= 2
    final = load_checkpoint(exp / "checkpoint.pt")
    assert final["step"] == steps
    for k, v in reference.items():
        assert torch.equal(v, final["model"][k]), k
    assert not list((exp / "checkpoints").glob(".*.tmp"))  # stale partial writes cleaned up on restart
