"""Run as a subprocess by test_faults.py: train the tiny model (resuming) until max_steps."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from helpers import tiny_config  # noqa: E402

from vqspeech.train import train  # noqa: E402

if __name__ == "__main__":
    data, exp, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
    train(tiny_config(max_steps=steps, checkpoint_every=3, val_every=10_000, audio_samples=0), data, None, exp,
          progress=False)
