"""Cached WaveNet generation as a CUDA graph: capture one sample step, replay it T times.

On a GPU the per-sample step is ~10 small kernels per layer whose launch overhead, not
arithmetic, bounds the speed.  A CUDA graph replays the whole step with one launch.  A
graph fixes its tensors' addresses and its control flow, so everything that changes per
step lives in static tensors and is indexed *by tensors*: the time ``t`` (a 0-d tensor the
step increments), each layer's queue slot ``t % dilation``, the conditioning frame
``t // hop`` and the uniform used for sampling.

:func:`generate_cuda_graph` with ``capture=False`` runs the same tensor-indexed step
eagerly, which is how the logic is tested on machines without a GPU.
"""

from __future__ import annotations

import math

import torch

from .generation import SamplingOptions, pick
from .models import VQVAE


class _GraphState:
    def __init__(self, model: VQVAE, codes: torch.Tensor, speaker: torch.Tensor, T: int,
                 uniforms: torch.Tensor, opts: SamplingOptions):
        wn = model.decoder
        dev = codes.device
        B = codes.shape[0]
        self.model, self.opts, self.hop = model, opts, model.hop
        self.conds = [c.contiguous() for c in model.codes_to_conditioning(codes, speaker)]  # L x (B, 2G, F)
        R = wn.cfg.residual_channels
        self.queues = [torch.zeros(B, R, layer.dilation, device=dev) for layer in wn.layers]
        self.dilations = [torch.tensor(layer.dilation, device=dev) for layer in wn.layers]
        self.t = torch.zeros((), dtype=torch.long, device=dev)
        self.prev = torch.full((B,), wn.cfg.quantization_channels // 2, dtype=torch.long, device=dev)
        self.uniforms = uniforms.to(dev)
        self.out = torch.zeros(B, T, dtype=torch.long, device=dev)
        # weights as (in, out) matrices, made once
        self.w = [(layer.conv.weight[:, :, 0].t().contiguous(), layer.conv.weight[:, :, 1].t().contiguous(),
                   layer.skip.weight[:, :, 0].t().contiguous(),
                   None if layer.res is None else layer.res.weight[:, :, 0].t().contiguous())
                  for layer in wn.layers]

    def step(self) -> None:
        """Generate sample ``t`` for every element, write it to ``out``, advance ``t``."""
        wn = self.model.decoder
        x = wn.embed(self.prev)
        frame = torch.div(self.t, self.hop, rounding_mode="floor").view(1)
        skip = None
        for layer, q, d, cond, (w_past, w_cur, w_skip, w_res) in zip(wn.layers, self.queues, self.dilations,
                                                                     self.conds, self.w):
            slot = torch.remainder(self.t, d).view(1)
            past = q.index_select(2, slot).squeeze(2)
            h = past @ w_past + x @ w_cur + layer.conv.bias + cond.index_select(2, frame).squeeze(2)
            q.index_copy_(2, slot, x.unsqueeze(2))
            a, b = h.chunk(2, dim=1)
            z = torch.tanh(a) * torch.sigmoid(b)
            s = z @ w_skip + layer.skip.bias
            if w_res is not None:
                x = (x + z @ w_res + layer.res.bias) * math.sqrt(0.5)
            skip = s if skip is None else skip + s
        logits = wn.output(skip.unsqueeze(-1)).squeeze(-1)
        u = self.uniforms.index_select(1, self.t.view(1)).squeeze(1)
        sample = pick(logits, u, self.opts)
        self.out.index_copy_(1, self.t.view(1), sample.unsqueeze(1))
        self.prev.copy_(sample)
        self.t.add_(1)


@torch.no_grad()
def generate_cuda_graph(model: VQVAE, codes: torch.Tensor, speaker: torch.Tensor, T: int, uniforms: torch.Tensor,
                        opts: SamplingOptions, capture: bool | None = None) -> torch.Tensor:
    """(B, F) codes, (B,) speakers -> (B, T) classes; same samples as the reference for the same seed."""
    if capture is None:
        capture = codes.is_cuda
    if capture and not codes.is_cuda:
        raise ValueError("CUDA graph generation needs the model and codes on a CUDA device")
    state = _GraphState(model, codes, speaker, T, uniforms, opts)
    if not capture:
        for _ in range(T):
            state.step()
        return state.out
    # Warm up on a side stream (allocations, cuBLAS handles), then reset and capture one step.
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    snapshot = [q.clone() for q in state.queues], state.prev.clone()
    with torch.cuda.stream(stream):
        for _ in range(2):
            state.step()
    torch.cuda.current_stream().wait_stream(stream)
    for q, q0 in zip(state.queues, snapshot[0]):
        q.copy_(q0)
    state.prev.copy_(snapshot[1])
    state.t.zero_()
    state.out.zero_()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        state.step()
    # Capture recorded the step without running it; replay T times from t = 0.
    for q, q0 in zip(state.queues, snapshot[0]):
        q.copy_(q0)
    state.prev.copy_(snapshot[1])
    state.t.zero_()
    for _ in range(T):
        graph.replay()
    torch.cuda.synchronize()
    return state.out
