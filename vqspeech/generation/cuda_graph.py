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

from .sampling import SamplingOptions, pick
from .step_weights import StepWeights, frame_conditioning


class _GraphState:
    def __init__(self, model, codes: torch.Tensor, speaker: torch.Tensor, T: int,
                 uniforms: torch.Tensor, opts: SamplingOptions):
        dev = codes.device
        B = codes.shape[0]
        self.opts, self.hop = opts, model.hop
        self.w = StepWeights.from_decoder(model.decoder)
        self.skip0 = self.w.b_skip.sum(0)
        self.cond = frame_conditioning(model, codes, speaker, self.w.b_conv)  # (L, B, F, 2G)
        R = self.w.embed.shape[1]
        self.queues = [torch.zeros(B, R, int(d), device=dev) for d in self.w.dilations]
        self.dilations = [torch.tensor(int(d), device=dev) for d in self.w.dilations]
        self.t = torch.zeros((), dtype=torch.long, device=dev)
        self.prev = torch.full((B,), model.decoder.cfg.quantization_channels // 2, dtype=torch.long, device=dev)
        self.uniforms = uniforms.to(dev)
        self.out = torch.zeros(B, T, dtype=torch.long, device=dev)

    def step(self) -> None:
        """Generate sample ``t`` for every element, write it to ``out``, advance ``t``."""
        w = self.w
        x = w.embed.index_select(0, self.prev)
        frame = torch.div(self.t, self.hop, rounding_mode="floor").view(1)
        skip = self.skip0
        for l, (q, d) in enumerate(zip(self.queues, self.dilations)):
            slot = torch.remainder(self.t, d).view(1)
            past = q.index_select(2, slot).squeeze(2)
            h = past @ w.w_past[l] + x @ w.w_cur[l] + self.cond[l].index_select(1, frame).squeeze(1)
            q.index_copy_(2, slot, x.unsqueeze(2))
            a, b = h.chunk(2, dim=1)
            z = torch.tanh(a) * torch.sigmoid(b)
            skip = skip + z @ w.w_skip[l]
            x = (x + z @ w.w_res[l] + w.b_res[l]) * math.sqrt(0.5)
        logits = torch.relu(torch.relu(skip) @ w.w1 + w.b1) @ w.w2 + w.b2
        u = self.uniforms.index_select(1, self.t.view(1)).squeeze(1)
        sample = pick(logits, u, self.opts)
        self.out.index_copy_(1, self.t.view(1), sample.unsqueeze(1))
        self.prev.copy_(sample)
        self.t.add_(1)


@torch.no_grad()
def generate_cuda_graph(model, codes: torch.Tensor, speaker: torch.Tensor, T: int, uniforms: torch.Tensor,
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
