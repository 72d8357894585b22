"""Where a shipped pretrained model lives (used when no --model is given)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PRETRAINED_NAME = "mini.pt"


def default_model_path() -> Path | None:
    """The checkpoint shipped inside the package, or None when this install has none."""
    path = Path(str(resources.files("vqspeech").joinpath("pretrained", PRETRAINED_NAME)))
    return path if path.is_file() else None
