"""Content consistency: a conversion should read, to the encoder, as its source does.

The spectral decoder only ever reconstructs a crop with the crop's own speaker, yet voice
conversion decodes a source's codes with another speaker: a combination training never shows.
This loss shows it. Each crop's codes are decoded with another crop's speaker (the batch's
speakers rolled by one); the log-mel encoder reads those converted frames and the crop's own
target frames, and the two readings must agree (``target`` below). So the decoder
learns to render mismatched codes and voice with the content the codes stand for, which is what a
listener (or pocketsphinx) needs from a conversion. (AutoVC's content-code reconstruction loss,
applied to the conversion instead of the reconstruction.)

- The encoder is run with its parameters detached (:func:`torch.func.functional_call`) and the
  conversions are decoded from detached code vectors: the loss trains the decoder (and the speaker
  vectors) only, so the encoder cannot make it small by reading less.
- What must agree (``target``): ``latents``, the mean squared difference of the two readings'
  continuous latents, which carry the voice as well as the content; or ``codes``, the
  cross-entropy of the conversion's reading, as a softmax over minus its squared distances to the
  codebook, against the code the true frames' reading is nearest to: only the code identity, the
  content, must survive the conversion.
- Both readings take the same path into the encoder: the decoder's log-mel frames (``frame_hop``
  samples apart) interpolated in time to the encoder's frame rate (``mel_hop``). The two STFTs
  differ (window length, filter normalisation, time resolution), so the path changes what the
  encoder reads (on training crops of a trained model only about 40% of the frames read this
  way pick the code the waveform gives), but equally on both sides: the target is the reading
  of the true frames along that path, not the codes the wave gave.
- Measured on the mini corpus (README, decoder study), neither target helped: matching latents
  pulled conversions back to the source's voice, and the codes' cross-entropy grew with the
  latents' spread until it outweighed the reconstruction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from .encoder import ConvEncoder
from .quantizer import squared_distances


def to_encoder_rate(log_mel: torch.Tensor, ratio: int) -> torch.Tensor:
    """(B, bins, F') decoder log-mel frames -> (B, bins, F' * ratio), linearly interpolated in
    time (``ratio`` = decoder frame hop / encoder mel hop)."""
    if ratio == 1:
        return log_mel
    return F.interpolate(log_mel, scale_factor=ratio, mode="linear", align_corners=False)


def content_consistency_loss(encoder: ConvEncoder, real_frames: torch.Tensor, converted_frames: torch.Tensor,
                             ratio: int, codebook: torch.Tensor | None = None) -> torch.Tensor:
    """real_frames (B, bins, F') the crops' true log-mel frames, converted_frames (B, bins, F') the
    same crops decoded with other speakers -> scalar: without ``codebook``, the mean squared
    difference between the encoder's latents (B, D, F) of the two; with ``codebook`` (K, D), the
    mean cross-entropy of each converted latent's softmax(-squared distance) over the codes against
    the code nearest the true latent. Gradients reach ``converted_frames`` only."""
    with torch.no_grad():
        target = encoder(None, log_mel=to_encoder_rate(real_frames.float(), ratio))
    frozen = {name: p.detach() for name, p in encoder.named_parameters()}
    frozen.update(dict(encoder.named_buffers()))
    reading = functional_call(encoder, frozen, (None,), {"log_mel": to_encoder_rate(converted_frames.float(), ratio)})
    if codebook is None:
        return F.mse_loss(reading, target)
    book = codebook.detach().float()
    nearest = squared_distances(target.transpose(1, 2), book).argmin(-1)          # (B, F)
    logits = -squared_distances(reading.transpose(1, 2), book)                      # (B, F, K)
    return F.cross_entropy(logits.flatten(0, 1), nearest.flatten())
