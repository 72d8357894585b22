"""``python -m vqspeech`` == the ``vqspeech`` command (under torchrun too: see ``cli.run``)."""

from .cli import run

run()
