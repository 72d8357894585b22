"""Loading a trained prior and sampling code sequences from it (``vqspeech sample``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..checkpoint import load_checkpoint
from ..errors import CheckpointError
from ..generation.sampling import SamplingOptions, pick
from .config import prior_config_from_dict
from .model import CodePrior
from .train import PRIOR_KIND


@dataclass
class LoadedPrior:
    model: CodePrior
    speakers: list[str]
    sample_rate: int
    hop: int
    num_codes: int


def load_prior(path, device="cpu") -> LoadedPrior:
    """A prior checkpoint (``exp/<prior>/prior.pt``), in eval mode; weights_only loading."""
    ckpt = load_checkpoint(path)
    if ckpt.get("kind") != PRIOR_KIND:
        raise CheckpointError(f"{path}: not a prior checkpoint (train one with 'vqspeech train-prior')")
    cfg = prior_config_from_dict(ckpt["config"], f"{path} (config)")
    model = CodePrior(int(ckpt["num_codes"]), len(ckpt["speakers"]), cfg.model)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not match the config ({str(exc).splitlines()[0][:160]})") from None
    return LoadedPrior(model.to(device).eval(), list(ckpt["speakers"]), int(ckpt["sample_rate"]), int(ckpt["hop"]),
                       int(ckpt["num_codes"]))


@torch.no_grad()
def sample_codes(prior: CodePrior, speaker: int, n: int, opts: SamplingOptions | None = None,
                 prompt: list[int] | None = None) -> list[int]:
    """``n`` codes for speaker index ``speaker``, continuing ``prompt`` (codes) when given.

    One seeded uniform per code and inverse-CDF draws (as the WaveNet's), so the same seed gives
    the same codes.  The model sees the last ``context`` tokens (BOS and the prompt included).
    """
    opts = opts or SamplingOptions()
    opts.check()
    device = next(prior.parameters()).device
    tokens = [prior.bos] + list(prompt or [])
    u = opts.uniforms(1, n)[0]
    spk = torch.tensor([speaker], device=device)
    out = []
    for i in range(n):
        window = torch.tensor(tokens[-prior.cfg.context:], device=device)[None]
        logits = prior(window, spk)[0, -1].float()
        code = int(pick(logits[None], u[i:i + 1], opts)[0])
        tokens.append(code)
        out.append(code)
    return out
