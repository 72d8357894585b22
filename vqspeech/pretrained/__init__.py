"""Where a shipped pretrained model lives (used when no --model is given)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PRETRAINED_NAME = "mini.pt"


def default_model_path() -> Path | None:
    """The checkpoint shipped inside the package, or None when this install has none."""
    path = Path(str(resources.files("vqspeech").joinpath("pretrained", PRETRAINED_NAME)))
    return path if path.is_file() else None


def model_path_or_shipped(path, argument: str = "--model") -> Path:
    """``path``, or the shipped checkpoint when it is None; a one-line UserError naming ``argument``
    when neither is there."""
    from ..errors import UserError

    if path is not None:
        return Path(path)
    shipped = default_model_path()
    if shipped is None:
        raise UserError(f"{argument}: no model given and no pretrained model is shipped with this install")
    return shipped
