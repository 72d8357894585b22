"""``python -m vqspeech`` == the ``vqspeech`` command."""

from .cli import main

raise SystemExit(main())
