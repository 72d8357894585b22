"""Vector quantizer with straight-through gradients, EMA updates, k-means init and dead-code restarts.

Codebook ``e`` is (K, D).  For encoder outputs ``z`` (B, D, T) each frame is replaced by
its nearest code.  Loss (van den Oord et al. 2017, eq. 3, without the reconstruction term)::

    codebook = ||sg[z] - e||^2          (pulls codes to the outputs; replaced by EMA updates)
    commit   = ||z - sg[e]||^2          (keeps the encoder near its codes), weighted by beta

Under ``torch.distributed`` every codebook change is synchronised so that all ranks hold
the same codebook: EMA statistics are all-reduced, and k-means initialisation and
dead-code restarts are computed on rank 0 and broadcast.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from ..config import EMAQuantizerConfig, QuantizerConfig


def _dist_on() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def squared_distances(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(..., D) vectors, (K, D) codebook -> (..., K) squared Euclidean distances, in float32
    (differentiable in both arguments)."""
    x, e = x.float(), codebook.float()
    with torch.autocast(x.device.type, enabled=False):  # autocast would round the product to bf16
        return x.pow(2).sum(-1, keepdim=True) - 2 * x @ e.t() + e.pow(2).sum(-1)


def perplexity_from_counts(counts: torch.Tensor) -> torch.Tensor:
    """exp(entropy) of the code distribution given by (K,) usage counts (0-dim tensor; 0 counts -> 1)."""
    p = counts / counts.sum().clamp(min=1)
    return torch.exp(-(p * torch.log(p.clamp(min=1e-10))).sum())


def to_device_async(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor on ``device`` without waiting for the GPU: a copy from pageable host memory
    first drains the stream (CUDA's rule), which stalled every training step's launch queue
    (found on an H200 by ``torch.cuda.set_sync_debug_mode``); from pinned memory it is queued."""
    if device.type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def code_counts(codes: torch.Tensor, num_codes: int) -> torch.Tensor:
    """(...) code indices -> (num_codes,) float32 uses.  ``torch.bincount`` equals it but reads the
    largest index back to the host on CUDA (a synchronisation every step); a scatter-add does not."""
    flat = codes.reshape(-1)
    return torch.zeros(num_codes, device=codes.device).index_add_(0, flat, torch.ones_like(flat, dtype=torch.float32))


def kmeans(x: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Plain Lloyd k-means with k-means++ seeding: (N, D) -> (k, D) centroids.

    With fewer points than ``k`` the points are repeated (with a little noise) so every
    centroid starts on data.
    """
    x = x.float()
    if x.shape[0] < k:
        reps = (k + x.shape[0] - 1) // x.shape[0]
        x = x.repeat(reps, 1)
        x = x + 1e-3 * x.std() * torch.randn(x.shape, generator=generator, device=x.device)
    n = x.shape[0]
    first = torch.randint(n, (1,), generator=generator, device=x.device)
    centroids = [x[first]]
    d2 = torch.cdist(x, centroids[0]).squeeze(1) ** 2
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
        idx = torch.multinomial(probs, 1, generator=generator)
        centroids.append(x[idx])
        d2 = torch.minimum(d2, (torch.cdist(x, x[idx]).squeeze(1) ** 2))
    c = torch.cat(centroids)
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(1)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).unsqueeze(1).to(x.dtype)
        c = torch.where(counts > 0, sums / counts.clamp(min=1), c)
    return c


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantisation of (B, D, T) latents against a (K, D) codebook."""

    def __init__(self, dim: int, cfg: QuantizerConfig):
        super().__init__()
        self.cfg = cfg
        self.dim = dim
        self.num_codes = cfg.num_codes
        self.ema = isinstance(cfg, EMAQuantizerConfig)
        codebook = torch.empty(cfg.num_codes, dim).uniform_(-1.0 / cfg.num_codes, 1.0 / cfg.num_codes)
        # The codebook is a Parameter either way so that it lives in state_dict / .to(); under
        # EMA it gets no gradient and no optimizer state.
        self.codebook = nn.Parameter(codebook, requires_grad=not self.ema)
        if self.ema:
            self.register_buffer("ema_count", torch.ones(cfg.num_codes))
            self.register_buffer("ema_sum", codebook.clone())
        # Bookkeeping that must survive a resume (so it is in state_dict):
        self.register_buffer("initialised", torch.tensor(not cfg.kmeans_init))
        self.register_buffer("usage", torch.zeros(cfg.num_codes))        # uses since the last restart
        self.register_buffer("buffer", torch.zeros(cfg.buffer_size, dim))  # recent encoder outputs
        self.register_buffer("buffer_fill", torch.tensor(0))
        self.register_buffer("steps", torch.tensor(0))                    # training forward passes seen
        # Host copies of the three bookkeeping scalars that steer control flow, so a training
        # step never reads a device buffer back (each read is a GPU synchronisation that stalls
        # the launch queue).  The buffers stay the truth in checkpoints; loading one re-reads them.
        self._host_steps, self._host_fill, self._host_initialised = 0, 0, not cfg.kmeans_init
        self.register_load_state_dict_post_hook(lambda module, _keys: module._read_host_mirrors())

    def _read_host_mirrors(self) -> None:
        self._host_steps = int(self.steps)
        self._host_fill = int(self.buffer_fill)
        self._host_initialised = bool(self.initialised)

    # ------------------------------------------------------------------ lookup
    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """(N, D) -> (N,) index of the nearest code (squared Euclidean distance)."""
        return squared_distances(flat, self.codebook.detach()).argmin(1)

    def lookup(self, codes: torch.Tensor) -> torch.Tensor:
        """(B, T) code indices -> (B, D, T) code vectors."""
        return F.embedding(codes, self.codebook).transpose(1, 2)

    # ------------------------------------------------------------------ forward
    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """Quantise ``z`` (B, D, T).

        Returns a dict with ``z_q`` (B, D, T, straight-through), ``codes`` (B, T),
        ``loss`` (scalar: codebook + beta * commit, or beta * commit under EMA),
        ``codebook_loss``, ``commit_loss``, ``perplexity`` and ``codes_used`` (this batch).
        """
        B, D, T = z.shape
        flat = z.transpose(1, 2).reshape(-1, D)
        if self.training:
            self._observe(flat.detach().float())
        codes = self.nearest(flat)
        z_q_flat = F.embedding(codes, self.codebook)
        codebook_loss = F.mse_loss(z_q_flat.float(), flat.detach().float())
        commit_loss = F.mse_loss(flat.float(), z_q_flat.detach().float())
        counts = code_counts(codes, self.num_codes)
        if self.training:
            if self.ema:
                self._ema_update(flat.detach().float(), codes, counts)
            self._track_usage(counts)
        loss = self.cfg.beta * commit_loss + (0.0 if self.ema else codebook_loss)
        z_q = z_q_flat.view(B, T, D).transpose(1, 2).to(z.dtype)
        z_q_st = z + (z_q - z).detach()  # straight-through: forward z_q, gradient to z unchanged
        perplexity = perplexity_from_counts(counts)
        return {"z_q": z_q_st, "codes": codes.view(B, T), "loss": loss, "codebook_loss": codebook_loss,
                "commit_loss": commit_loss, "perplexity": perplexity,
                "codes_used": (counts > 0).sum(), "counts": counts}

    # ------------------------------------------------------------------ training-time codebook care
    @torch.no_grad()
    def _observe(self, flat: torch.Tensor) -> None:
        """Remember recent outputs; run k-means once enough batches were seen."""
        self.steps += 1
        self._host_steps += 1
        n = min(flat.shape[0], self.cfg.buffer_size)
        # Deterministic subsample (seeded by the step) so resumed runs see the same buffer.
        g = torch.Generator(device="cpu").manual_seed(self._host_steps * 7919)
        pick = to_device_async(torch.randperm(flat.shape[0], generator=g)[:n], flat.device)
        self.buffer.copy_(torch.roll(self.buffer, n, 0))
        self.buffer[:n] = flat[pick]
        self._host_fill = min(self._host_fill + n, self.cfg.buffer_size)
        self.buffer_fill.fill_(self._host_fill)
        if not self._host_initialised and self._host_steps >= self.cfg.kmeans_init_batches:
            self._kmeans_init()

    @torch.no_grad()
    def _kmeans_init(self) -> None:
        data = self._gathered_buffer()
        if not _dist_on() or dist.get_rank() == 0:
            g = torch.Generator(device="cpu").manual_seed(self._host_steps)
            centroids = kmeans(data.cpu(), self.num_codes, self.cfg.kmeans_iters, g).to(self.codebook.device)
        else:
            centroids = torch.empty_like(self.codebook)
        self._set_codes(torch.arange(self.num_codes, device=self.codebook.device), centroids, broadcast=True)
        self.initialised.fill_(True)
        self._host_initialised = True
        self.usage.zero_()

    def _gathered_buffer(self) -> torch.Tensor:
        """(N, D) recent outputs of every rank (all ranks have equally full buffers)."""
        data = self.buffer[: self._host_fill]
        if _dist_on():
            parts = [torch.empty_like(data) for _ in range(dist.get_world_size())]
            dist.all_gather(parts, data.contiguous())
            data = torch.cat(parts)
        return data

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, codes: torch.Tensor, counts: torch.Tensor) -> None:
        sums = torch.zeros(self.num_codes, self.dim, device=flat.device).index_add_(0, codes, flat)
        if _dist_on():
            dist.all_reduce(counts)  # note: in place, so the caller's usage counts are global too
            dist.all_reduce(sums)
        decay, eps = self.cfg.decay, self.cfg.epsilon
        self.ema_count.mul_(decay).add_(counts, alpha=1 - decay)
        self.ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + eps) / (n + self.num_codes * eps) * n  # Laplace smoothing
        self.codebook.data.copy_(self.ema_sum / smoothed.unsqueeze(1))

    @torch.no_grad()
    def _track_usage(self, counts: torch.Tensor) -> None:
        if not self.ema and _dist_on():
            counts = counts.clone()
            dist.all_reduce(counts)
        self.usage += counts
        if self.cfg.dead_code_restart and self._host_initialised and self._host_steps % self.cfg.restart_every == 0:
            self.restart_dead_codes()

    @torch.no_grad()
    def restart_dead_codes(self) -> int:
        """Move codes used fewer than ``dead_code_threshold`` times since the last restart onto
        randomly chosen recent encoder outputs.  Returns the number of codes restarted."""
        dead = (self.usage < self.cfg.dead_code_threshold).nonzero().squeeze(1)
        self.usage.zero_()
        if dead.numel() == 0 or self._host_fill == 0:
            return 0
        data = self._gathered_buffer()
        if not _dist_on() or dist.get_rank() == 0:
            g = torch.Generator(device="cpu").manual_seed(self._host_steps + 1)
            pick = torch.randint(data.shape[0], (dead.numel(),), generator=g).to(data.device)
            new = data[pick]
        else:
            new = torch.empty(dead.numel(), self.dim, device=self.codebook.device)
        self._set_codes(dead, new, broadcast=True)
        return int(dead.numel())

    def _set_codes(self, idx: torch.Tensor, vectors: torch.Tensor, broadcast: bool) -> None:
        if broadcast and _dist_on():
            vectors = vectors.contiguous()
            dist.broadcast(vectors, 0)
        self.codebook.data[idx] = vectors.to(self.codebook.dtype)
        if self.ema:
            # A restarted code starts as if it had been chosen once, at its new place.
            self.ema_count[idx] = 1.0
            self.ema_sum[idx] = vectors.to(self.ema_sum.dtype)
