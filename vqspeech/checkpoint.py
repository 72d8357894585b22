"""Checkpoints: what they hold, atomic saving, and safe loading.

A checkpoint is a dict of plain types and tensors only, so it loads with
``torch.load(weights_only=True)``, which refuses any pickled object (a malicious
``__reduce__`` is never executed)::

    format      "vqspeech"            version   CHECKPOINT_VERSION
    config      resolved experiment config (dict)
    speakers    [speaker id, ...]      index = speaker embedding row
    sample_rate int                    hop       int (samples per code)
    model       model state_dict
    measured_history  {samples, tolerance_bits, rows, ...}  (optional: ``vqspeech measure-history``)
    train_state {step, optimizer, rng_cpu}   (training checkpoints only; the CPU RNG, so a resumed
                CPU run draws what an uninterrupted one would)
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch

from .config import ExperimentConfig, config_from_dict
from .errors import CheckpointError
from .fileio import atomic_path
from .ids import id_problem

CHECKPOINT_FORMAT = "vqspeech"
CHECKPOINT_VERSION = 1
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")


@dataclass
class LoadedModel:
    model: "torch.nn.Module"
    config: ExperimentConfig
    speakers: list[str]
    sample_rate: int
    hop: int
    step: int


def save_checkpoint(path: str | os.PathLike, payload: dict) -> None:
    """Write ``payload`` (adding format and version) to ``path`` atomically."""
    payload = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, **payload}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def save_training_checkpoints(exp_dir: str | os.PathLike, inference_name: str, common: dict, train_state: dict,
                              keep: int) -> None:
    """A training run's checkpoint at ``train_state["step"]``: ``exp_dir/checkpoints/step_N.pt`` (full
    state, for resuming), ``exp_dir/<inference_name>`` (weights for use) and only the newest ``keep``
    step files kept."""
    exp_dir = Path(exp_dir)
    step = train_state["step"]
    save_checkpoint(exp_dir / "checkpoints" / f"step_{step:08d}.pt", {**common, "train_state": train_state})
    save_checkpoint(exp_dir / inference_name, {**common, "step": step})
    for _, old in list_step_checkpoints(exp_dir / "checkpoints")[:-keep]:
        old.unlink(missing_ok=True)


def _unpickling_problem(exc: pickle.UnpicklingError) -> str:
    """Tell a pickle that asks for code (refused) from bytes that are not a pickle at all (corrupt)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    # torch's weights-only unpickler names the refused global ("Unsupported global: GLOBAL posix.system ...",
    # "Trying to load unsupported GLOBAL ...") and reports garbage as an unknown opcode ("Unsupported operand").
    detail = next((line for line in lines if "GLOBAL" in line or "Unsupported" in line),
                  lines[0] if lines else "unsafe content")
    if "Unsupported operand" in detail:
        return f"not a readable checkpoint (corrupt or not a torch file: {detail[:120]})"
    return f"refused to load: the file contains objects other than tensors and plain data ({detail[:160]})"


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load and check a checkpoint without unpickling arbitrary objects.

    Raises CheckpointError for a missing, truncated, unsafe or incompatible file.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(f"{path}: {_unpickling_problem(exc)}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError, IndexError, KeyError, TypeError,
            AttributeError) as exc:  # what torch's unpickler raises on other files (e.g. IndexError for text)
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt: "
                              f"{str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path}: not a vqspeech checkpoint")
    if ckpt.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: checkpoint version {ckpt.get('version')} is not supported by this "
                              f"vqspeech (expects {CHECKPOINT_VERSION})")
    for key in ("config", "speakers", "sample_rate", "hop", "model"):
        if key not in ckpt:
            raise CheckpointError(f"{path}: checkpoint lacks {key!r}")
    if not isinstance(ckpt["speakers"], list) or not all(isinstance(s, str) for s in ckpt["speakers"]):
        raise CheckpointError(f"{path}: 'speakers' must be a list of strings")
    for spk in ckpt["speakers"]:
        problem = id_problem(spk)
        if problem is not None:
            raise CheckpointError(f"{path}: speaker {spk!r} is not a valid id ({problem})")
    return ckpt


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the VQ-VAE from a checkpoint, in eval mode on ``device``."""
    from .models import build_model

    ckpt = load_checkpoint(path)
    if ckpt.get("kind", "vqvae") != "vqvae":
        where = {"prior": "a prior goes to --prior", "wavenet-vocoder": "a vocoder goes to --vocoder-model"}
        raise CheckpointError(f"{path}: is a {ckpt['kind']} checkpoint, not a VQ-VAE model "
                              f"({where.get(ckpt['kind'], 'not a model')})")
    cfg = config_from_dict(ckpt["config"], f"{path} (config)")
    model = build_model(cfg, len(ckpt["speakers"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the config ({str(exc).splitlines()[0][:160]})") from None
    if getattr(model, "decoder_kind", None) == "wavenet":
        from .decoder_history import load_measured_history

        load_measured_history(model.decoder, ckpt, str(path))
    model.to(device).eval()
    step = int(ckpt.get("train_state", {}).get("step", ckpt.get("step", 0)))
    return LoadedModel(model, cfg, list(ckpt["speakers"]), int(ckpt["sample_rate"]), int(ckpt["hop"]), step)


def list_step_checkpoints(ckpt_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """[(step, path)] of ``step_NNNNNNNN.pt`` files in ``ckpt_dir``, oldest first."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in ckpt_dir.iterdir() if (m := _STEP_FILE.match(p.name))]
    return sorted(found)


def newest_valid_checkpoint(ckpt_dir: str | os.PathLike) -> tuple[dict, Path] | None:
    """The newest step checkpoint that loads (a corrupt newest file falls back to the one before)."""
    for _, path in reversed(list_step_checkpoints(ckpt_dir)):
        try:
            return load_checkpoint(path), path
        except CheckpointError:
            continue
    return None


def store_measured_history(path: str | os.PathLike, record: dict) -> None:
    """Add (or replace) the ``measured_history`` entry of a VQ-VAE's or a WaveNet vocoder's checkpoint,
    atomically: a failure leaves the old file as it was."""
    ckpt = load_checkpoint(path)
    if ckpt.get("kind", "vqvae") not in ("vqvae", "wavenet-vocoder"):
        raise CheckpointError(f"{path}: is a {ckpt['kind']} checkpoint, not a model with a WaveNet")
    save_checkpoint(path, {**ckpt, "measured_history": record})
