"""The device a command or the Python API runs on, from its name (training has its own rule:
``training_runtime``, where ``cuda`` means each torchrun process's own GPU)."""

from __future__ import annotations

import torch

from .errors import UserError


def resolve_device(name, argument: str = "--device") -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"`` -> torch.device; a one-line UserError naming ``argument``
    for an unknown name or a CUDA device on a machine without one."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise UserError(f"{argument}: unknown device {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"{argument} {name}: no CUDA device is available on this machine")
    return device
