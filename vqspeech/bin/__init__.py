"""Entry points runnable with ``python -m vqspeech.bin.<name>`` (e.g. under torchrun)."""
