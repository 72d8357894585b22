"""``python -m vqspeech`` == the ``vqspeech`` command (under torchrun too: see ``exit_entry_point``)."""

from .bin.runner import exit_entry_point
from .cli import main

exit_entry_point(main())
