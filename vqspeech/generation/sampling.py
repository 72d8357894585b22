"""Sampling helpers shared by every generation backend (the bottom of the package).

Every backend draws one uniform number per generated sample up front (``torch.rand`` with the
seed, float64) and inverts the softmax CDF of that sample's logits, so backends that compute
the same logits make the same draws for the same seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class SamplingOptions:
    temperature: float = 1.0
    seed: int = 0
    argmax: bool = False

    def check(self) -> None:
        if not self.argmax and not self.temperature > 0:
            raise ValueError("temperature must be > 0 (or use argmax)")

    def uniforms(self, batch: int, length: int) -> torch.Tensor:
        """(B, T) float64 uniforms in [0, 1), one per generated sample."""
        g = torch.Generator().manual_seed(self.seed)
        return torch.rand(batch, length, generator=g, dtype=torch.float64)

    @property
    def inverse_temperature(self) -> float:
        return 1.0 if self.argmax else 1.0 / self.temperature


def pick(logits: torch.Tensor, u: torch.Tensor, opts: SamplingOptions) -> torch.Tensor:
    """(B, Q) logits, (B,) uniforms -> (B,) classes by inverse-CDF sampling (or argmax).

    The class is the first one whose cumulative probability exceeds ``u`` (float64).
    """
    if opts.argmax:
        return logits.argmax(-1)
    probs = torch.softmax(logits.double() / opts.temperature, dim=-1)
    cdf = probs.cumsum(-1)
    idx = torch.searchsorted(cdf, (u.to(cdf.device) * cdf[:, -1]).unsqueeze(1), right=True).squeeze(1)
    return idx.clamp(max=logits.shape[-1] - 1)
