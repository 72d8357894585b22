"""WaveNet decoder: causal dilated convolutions, gated units, residual and skip connections.

Conditioning (van den Oord et al. 2016, sec. 2.5):
- global: a speaker vector ``g`` (B, speaker_dim), added to every layer's gate input;
- local: code features at the frame rate ``c`` (B, cond_channels, F), upsampled to the
  sample rate by repetition (hop samples per frame).

Because a 1x1 convolution commutes with repetition, each layer projects the conditioning
at the *frame* rate, ``hop`` times fewer multiply-adds than projecting the upsampled
features; :meth:`WaveNet.layer_conditioning` exposes that per-layer frame-rate tensor so the
incremental generator can reuse it.  Nor is the projection repeated to the sample rate: the
layer adds it by broadcasting over a (B, 2G, F, hop) view of its convolution output
(:func:`add_frame_rate`), which saves writing and reading a (B, 2G, T) tensor per layer.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..config import GATE_KERNELS, DecoderConfig
from .gate_kernel import frame_gate, register as register_frame_gate
from .linear_gate import linear_gate, register as register_linear_gate


def add_frame_rate(h: torch.Tensor, cond: torch.Tensor, hop: int) -> torch.Tensor:
    """h (B, C, T) + cond (B, C, F) held for ``hop`` samples per frame (F * hop >= T) -> (B, C, T).

    Equal to ``h + cond.repeat_interleave(hop, 2)[:, :, :T]`` without materialising the repeat.
    """
    B, C, T = h.shape
    frames = -(-T // hop)
    if frames * hop != T:
        h = F.pad(h, (0, frames * hop - T))
    out = h.view(B, C, frames, hop) + cond[:, :, :frames, None]
    return out.view(B, C, frames * hop)[:, :, :T]


def add_frame_rate_last(h: torch.Tensor, cond: torch.Tensor, hop: int) -> torch.Tensor:
    """:func:`add_frame_rate` for channels-last tensors: ``h`` (B, T, C) + ``cond`` (B, F, C) -> (B, T, C).

    ``cond`` should be contiguous: the add (and its backward, a sum over each frame's ``hop``
    samples) then reads it along C, as it reads ``h``.  A (B, C, F) tensor's transposed view here
    made the compiled gate kernels read one 32-byte sector per element, 3-5x their memory time
    on an H200 (``benchmarks/training.py``, the ``conditioning (B, 2G, F)`` row)."""
    B, T, C = h.shape
    frames = -(-T // hop)
    if frames * hop != T:
        h = F.pad(h, (0, 0, 0, frames * hop - T))
    out = h.reshape(B, frames, hop, C) + cond[:, :frames, None, :]
    return out.reshape(B, frames * hop, C)[:, :T]


class ResidualLayer(nn.Module):
    """One gated residual layer with a kernel-2 causal convolution of dilation ``d``."""

    def __init__(self, cfg: DecoderConfig, dilation: int, last: bool = False):
        super().__init__()
        R, G, S = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels
        self.dilation = dilation
        self.conv = nn.Conv1d(R, 2 * G, kernel_size=2, dilation=dilation)
        self.cond = nn.Conv1d(cfg.cond_channels, 2 * G, 1, bias=False)
        self.speaker = nn.Linear(cfg.speaker_dim, 2 * G, bias=False)
        # The last layer's residual output would feed nothing (and leave DDP with unused weights).
        self.res = None if last else nn.Conv1d(G, R, 1)
        self.skip = nn.Conv1d(G, S, 1)

    def conditioning(self, c: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """(B, C, F) frame features + (B, speaker_dim) -> (B, 2G, F) gate bias at frame rate."""
        return self.cond(c) + self.speaker(g).unsqueeze(-1)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, hop: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, R, T); cond (B, 2G, T) at the sample rate (``hop`` 1) or (B, 2G, F) at the frame
        rate, held for ``hop`` samples -> (residual out (B, R, T), skip (B, S, T))."""
        h = self.conv(F.pad(x, (self.dilation, 0)))
        h = h + cond if hop == 1 else add_frame_rate(h, cond, hop)
        a, b = h.chunk(2, dim=1)
        z = torch.tanh(a) * torch.sigmoid(b)
        x = x if self.res is None else (x + self.res(z)) * math.sqrt(0.5)
        return x, self.skip(z)


def sample_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of (B, Q, T) logits against (B, T) classes, in float32.

    The channels-last decoder returns a (B, T, Q) tensor seen as (B, Q, T); ATen's cross-entropy
    over such a strided class axis runs its slow spatial kernel (1.7 ms of a gpu.yaml step on the
    H200), so those logits go in as the (B*T, Q) rows they already are.  Same value either way.
    """
    rows = logits.transpose(1, 2)
    if rows.is_contiguous():
        return F.cross_entropy(rows.reshape(-1, rows.shape[-1]).float(), targets.reshape(-1))
    return F.cross_entropy(logits.float(), targets)


class WaveNet(nn.Module):
    """Autoregressive mu-law WaveNet.

    forward: previous samples (B, T) int classes + frame conditioning -> logits (B, Q, T),
    where logits[:, :, t] predicts the class of sample t from samples < t.
    """

    # How the teacher-forced forward runs (the same function; benchmarks/training.py times them):
    # "channels-last": (B, T, C) activations, every 1x1 and kernel-2 conv a matrix product over
    #   B*T rows, conditioning broadcast at the frame rate;
    # "broadcast": (B, C, T) convolutions, conditioning broadcast at the frame rate;
    # "repeat": (B, C, T), conditioning repeated to the sample rate in every layer (the first form).
    upsample = "broadcast"
    # The channels-last form's frame-rate conditioning: "frames-last" (B, F, 2G) from a matrix
    # product, read along channels; "channels-first" the (B, 2G, F) of layer_conditioning,
    # transposed (the earlier form, kept for benchmarks/training.py).
    cond_layout = "frames-last"
    # The channels-last form's skip and residual 1x1 convolutions: False, two matrix products of z;
    # True, one product with the two weight matrices stacked (z read once, one (B*T, S+R) output;
    # its backward one product too).  The same sums, so equal within float tolerance; True measured
    # 1.02-1.04x the steps/s of False on an H200 (benchmarks/training.py, two runs).
    # (Gate channels interleaved [a0, b0, a1, ...] instead of halves measured 0.94x there.)
    merge_skip_res = True
    # The channels-last form's residual stream under autocast: False, float32 (the embedding is
    # float32 and each residual add promotes the product's bf16 to it); True, autocast's dtype from
    # the embedding on, as the skip sum already is.  Each layer reads x twice (its two taps) and
    # reads and writes it once more (the residual add), forward and backward: about 0.4 GB less
    # traffic a layer at batch 32 x 16,384 (an estimate).
    # Each layer's sum is rounded to bf16 (tests/test_wavenet.py bounds what that changes); not yet
    # measured on a GPU (benchmarks/training.py, "+ bf16 residual stream").
    autocast_stream = False

    def __init__(self, cfg: DecoderConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.quantization_channels, cfg.residual_channels)
        dil = cfg.dilations
        self.layers = nn.ModuleList(ResidualLayer(cfg, d, last=i == len(dil) - 1) for i, d in enumerate(dil))
        self.out1 = nn.Conv1d(cfg.skip_channels, cfg.skip_channels, 1)
        self.out2 = nn.Conv1d(cfg.skip_channels, cfg.quantization_channels, 1)
        # Samples of history this trained decoder was measured to use (``vqspeech measure-history``,
        # stored in its checkpoint): folded generation's default warm-up.  None: not measured, warm
        # up the whole receptive field.  Not a weight, so not in the state dict.
        self.history_samples: int | None = None
        self._cross_entropy = sample_cross_entropy  # compiled by compile_loss
        self._gate_kernel = "torch"

    @property
    def gate_kernel(self) -> str:
        """The channels-last form's gate: "torch" (conditioning add, tanh, sigmoid; compiled on CUDA),
        "triton", the hand-written kernel pair of :mod:`.gate_kernel`, or "triton-linear", the kernel-2
        convolution's product and the gate in one kernel (:mod:`.linear_gate`; neither is yet
        measured on a GPU)."""
        return self._gate_kernel

    @gate_kernel.setter
    def gate_kernel(self, name: str) -> None:
        if name not in GATE_KERNELS:
            raise ValueError(f"gate_kernel: one of {', '.join(GATE_KERNELS)}, got {name!r}")
        # Registered now, outside any compiled graph: torch.compile cannot trace the registration
        # (it would break the graph at every layer).  Imports triton.
        if name == "triton":
            register_frame_gate()
        elif name == "triton-linear":
            register_linear_gate()
        self._gate_kernel = name

    def cross_entropy(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """The training loss: mean cross-entropy of :meth:`forward`'s (B, Q, T) logits against
        (B, T) classes (:func:`sample_cross_entropy`; compiled after :meth:`compile_loss`)."""
        return self._cross_entropy(logits, targets)

    def compile_loss(self) -> None:
        """Compile the loss on its own (CUDA training; not yet measured on a GPU, see README).

        The decoder's own compile stops at its logits, so the loss runs eagerly: a float32 copy of
        the (B*T, Q) logits, a log-softmax written out and read back, a dense gradient and a cast
        back, several passes over 0.27 GB (bf16, batch 32 x 16,384 samples).  Compiled, the
        forward is one reduction per row and the backward one pass that writes the gradient."""
        self._cross_entropy = torch.compile(sample_cross_entropy, dynamic=False)

    @property
    def receptive_field(self) -> int:
        return self.cfg.receptive_field

    def shift_inputs(self, targets: torch.Tensor) -> torch.Tensor:
        """(B, T) target classes -> (B, T) inputs: the previous sample, silence (mid class) first."""
        first = torch.full_like(targets[:, :1], self.cfg.quantization_channels // 2)
        return torch.cat([first, targets[:, :-1]], dim=1)

    def layer_conditioning_last(self, c: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
        """:meth:`layer_conditioning` laid out (B, F, 2G), contiguous, for the channels-last form."""
        if self.cond_layout == "channels-first":
            return [cond.transpose(1, 2) for cond in self.layer_conditioning(c, g)]
        ct = c.transpose(1, 2)  # (B, F, C)
        return [F.linear(ct, layer.cond.weight[:, :, 0]) + layer.speaker(g)[:, None, :] for layer in self.layers]

    def layer_conditioning(self, c: torch.Tensor, g: torch.Tensor) -> list[torch.Tensor]:
        """Per-layer gate biases at the frame rate: list of (B, 2G, F)."""
        return [layer.conditioning(c, g) for layer in self.layers]

    def output(self, skip: torch.Tensor) -> torch.Tensor:
        """(B, S, T) summed skips -> (B, Q, T) logits."""
        return self.out2(F.relu(self.out1(F.relu(skip))))

    def forward(self, inputs: torch.Tensor, c: torch.Tensor, g: torch.Tensor, hop: int) -> torch.Tensor:
        """inputs (B, T) previous-sample classes, c (B, C, F) with F * hop >= T, g (B, speaker_dim)."""
        if self.upsample == "channels-last":
            return self._forward_channels_last(inputs, c, g, hop)
        T = inputs.shape[1]
        x = self.embed(inputs).transpose(1, 2)
        skip = None
        for layer, cond in zip(self.layers, self.layer_conditioning(c, g)):
            if self.upsample == "repeat":
                x, s = layer(x, cond.repeat_interleave(hop, dim=2)[:, :, :T])
            else:
                x, s = layer(x, cond, hop)
            skip = s if skip is None else skip + s
        return self.output(skip)

    def _layer_gate(self, layer: ResidualLayer, taps: torch.Tensor, w: torch.Tensor, cond: torch.Tensor,
                    hop: int) -> torch.Tensor:
        """The channels-last layer's convolution and gate, as ``gate_kernel`` says: taps (B, T, 2R) =
        [x_{t-d}, x_t], w (2G, 2R), cond (B, F, 2G) -> z (B, T, G)."""
        if self.gate_kernel == "triton-linear":
            # cond came out of a product, so it has the dtype autocast gives F.linear (or none)
            return linear_gate(taps.to(cond.dtype), w, layer.conv.bias, cond, hop)
        h = F.linear(taps, w, layer.conv.bias)
        if self.gate_kernel == "triton":
            return frame_gate(h, cond, hop)
        a, b = add_frame_rate_last(h, cond, hop).chunk(2, dim=2)  # (B, T, G) each
        return torch.tanh(a) * torch.sigmoid(b)

    def _forward_channels_last(self, inputs: torch.Tensor, c: torch.Tensor, g: torch.Tensor, hop: int) -> torch.Tensor:
        """:meth:`forward` with (B, T, C) activations: each layer is two matrix products over B*T
        rows ([x_{t-d}, x_t] @ conv taps; z @ [skip | res]) plus element-wise work.  Returns (B, Q, T)."""
        T = inputs.shape[1]
        x = self.embed(inputs)  # (B, T, R)
        if self.autocast_stream and torch.is_autocast_enabled(x.device.type):
            x = x.to(torch.get_autocast_dtype(x.device.type))
        skip = None
        for layer, cond in zip(self.layers, self.layer_conditioning_last(c, g)):
            past = F.pad(x, (0, 0, layer.dilation, 0))[:, :T]  # x_{t-d}, zeros before the start
            w = layer.conv.weight  # (2G, R, 2): tap 0 sees t - d, tap 1 sees t
            z = self._layer_gate(layer, torch.cat([past, x], dim=2), torch.cat([w[:, :, 0], w[:, :, 1]], dim=1),
                                 cond, hop)
            if self.merge_skip_res and layer.res is not None:
                S = layer.skip.weight.shape[0]
                sr = F.linear(z, torch.cat([layer.skip.weight[:, :, 0], layer.res.weight[:, :, 0]]),
                              torch.cat([layer.skip.bias, layer.res.bias]))
                s, res = sr[..., :S], sr[..., S:]
            else:
                s = F.linear(z, layer.skip.weight[:, :, 0], layer.skip.bias)
                res = None if layer.res is None else F.linear(z, layer.res.weight[:, :, 0], layer.res.bias)
            skip = s if skip is None else skip + s
            if res is not None:
                x = (x + res) * math.sqrt(0.5)
        h = F.relu(F.linear(F.relu(skip), self.out1.weight[:, :, 0], self.out1.bias))
        return F.linear(h, self.out2.weight[:, :, 0], self.out2.bias).transpose(1, 2)
