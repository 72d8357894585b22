"""Fundamental frequency (F0) of speech, batched in torch, and the pitch features a spectral decoder
can be conditioned on.

:func:`yin` is the YIN estimator (de Cheveigné and Kawahara, 2002): the cumulative-mean-normalised
difference function of each frame, the first lag whose value dips under a threshold (refined by a
parabola through its neighbours), and no F0 (unvoiced) when no lag does or the frame is near
silence. It runs on whole batches at once (one FFT per frame), on the CPU or a GPU, so a training
step can compute it for its crops instead of reading a cache.

:func:`pitch_features` turns F0 into what the decoder reads: the log-F0 contour (median-smoothed
over 5 frames against octave errors) with its mean and spread over the row's voiced frames taken
out (the intonation, not the voice's register, which the target speaker supplies; optionally
averaged over ``decoder_conf.source_pitch_smoothing_ms``, :func:`voiced_moving_average`), a voicing
channel (``decoder_conf.source_pitch_voicing``: the periodicity, how voiced each frame is; a
binary voiced flag; or nothing) and a "pitch known" flag that is 0 when no source pitch is given
(decoding codes alone, or a training row whose pitch was dropped). A row is the whole utterance in
conversion; in training, a crop (about a second) normalised over itself or, with
``decoder_conf.source_pitch_normalisation: utterance``, over the utterance it is cut from
(:func:`utterance_log_f0_stats`). :func:`with_intonation` scales a
contour at conversion (``--intonation``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .config import VOICING_KINDS

PITCH_CHANNELS = 3  # normalised log-F0, voicing, known


def yin(wav: torch.Tensor, sample_rate: int, frame_hop: int, frame_length: int = 1024, fmin: float = 60.0,
        fmax: float = 500.0, threshold: float = 0.3, silence_db: float = -50.0, chunk_frames: int = 2048
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) waveform -> ((B, T // frame_hop) F0 in Hz, 0 where unvoiced; (B, T // frame_hop)
    periodicity in [0, 1]: 1 - the smallest normalised difference in the lag range, 0 in near silence).

    Frame ``i`` is centred on sample ``i * frame_hop`` (reflect padding, as
    :func:`vqspeech.models.spectral.log_magnitude`), so the contour lines up with the spectral
    decoder's frames. Each frame's first half is compared with itself shifted by every lag up to
    ``sample_rate / fmin`` (which must fit in the other half). A frame is unvoiced when no lag in
    [sample_rate / fmax, sample_rate / fmin] has a normalised difference under ``threshold``, or
    when its energy is ``silence_db`` below the row's loudest frame. On the mini corpus's voices a
    threshold of 0.3 agrees with librosa's pYIN on voicing in 70-87% of frames (pYIN calls more
    frames voiced) and within 50 cents on 89-98% of the frames both call voiced.
    """
    if wav.dim() != 2:
        raise ValueError(f"yin: expected a (B, T) waveform, got shape {tuple(wav.shape)}")
    window = frame_length // 2
    tau_max = min(int(sample_rate / fmin), frame_length - window)
    tau_min = max(2, int(sample_rate / fmax))
    if tau_min + 2 > tau_max:
        raise ValueError(f"yin: fmin {fmin} Hz and fmax {fmax} Hz leave no lags at {sample_rate} Hz "
                         f"with frame_length {frame_length}")
    B, T = wav.shape
    n = T // frame_hop
    if n == 0:
        empty = wav.new_zeros(B, 0, dtype=torch.float32)
        return empty, empty
    # reflect needs more samples than the padding; shorter inputs are padded with silence
    mode = "reflect" if T > frame_length // 2 else "constant"
    x = F.pad(wav.float()[:, None], (frame_length // 2, frame_length // 2), mode=mode)[:, 0]
    frames = x.unfold(-1, frame_length, frame_hop)[:, :n]                     # (B, n, W), a view
    # bounded memory for long inputs: the FFTs of at most chunk_frames frames at a time
    parts = [_frame_dips(frames[:, i: i + chunk_frames], window, tau_min, tau_max, threshold)
             for i in range(0, n, chunk_frames)]
    period, found, dip, loud = (torch.cat(t, 1) for t in zip(*parts))
    loudest = loud.amax(-1, keepdim=True).clamp(min=1e-20)
    audible = (10 * torch.log10(loud.clamp(min=1e-30) / loudest) > silence_db) & (loud > 0)
    voiced = found & audible
    periodicity = (1 - dip).clamp(0, 1) * audible
    return torch.where(voiced, sample_rate / period, torch.zeros_like(period)), periodicity


def _frame_dips(frames: torch.Tensor, window: int, tau_min: int, tau_max: int, threshold: float):
    """(B, n, W) frames -> (period (B, n) in samples, found (B, n) bool, the smallest normalised
    difference in [tau_min, tau_max] (B, n), the energy of each frame's first ``window`` samples (B, n))."""
    frames = frames - frames.mean(-1, keepdim=True)
    # r(tau) = sum_j x[j] x[j + tau] over the first half, for every lag at once: one FFT product.
    # No padding: j + tau <= window - 1 + tau_max < W, so the circular correlation does not wrap.
    size = frames.shape[-1]
    spec = torch.fft.rfft(frames, size)
    head = torch.fft.rfft(frames[..., :window], size)
    r = torch.fft.irfft(spec * head.conj(), size)[..., : tau_max + 1]          # (B, n, tau_max + 1)
    energy = frames.square().cumsum(-1)
    e0 = energy[..., window - 1: window]                                      # sum of x[j]^2, j < window
    lags = torch.arange(tau_max + 1, device=frames.device)
    upper = energy[..., lags + window - 1]
    lower = torch.cat([torch.zeros_like(energy[..., :1]), energy[..., : tau_max]], -1)
    diff = (e0 + (upper - lower) - 2 * r).clamp(min=0)                        # d(tau)
    # cumulative mean normalised difference: d'(0) = 1, d'(tau) = d(tau) * tau / sum_{k<=tau} d(k)
    cum = diff[..., 1:].cumsum(-1)
    cmnd = torch.cat([torch.ones_like(diff[..., :1]), diff[..., 1:] * lags[1:] / cum.clamp(min=1e-12)], -1)
    # the first lag in range under the threshold that is a local minimum (the dip's bottom)
    inner = cmnd[..., tau_min: tau_max]
    below = (inner < threshold) & (inner <= cmnd[..., tau_min + 1: tau_max + 1]) \
        & (inner < cmnd[..., tau_min - 1: tau_max - 1])
    found = below.any(-1)
    tau = below.float().argmax(-1) + tau_min                                  # (B, n)
    # parabolic interpolation through (tau - 1, tau, tau + 1)
    a, b, c = (cmnd.gather(-1, (tau + k).unsqueeze(-1)).squeeze(-1) for k in (-1, 0, 1))
    curvature = a - 2 * b + c
    offset = torch.where(curvature > 1e-12, 0.5 * (a - c) / curvature.clamp(min=1e-12), torch.zeros_like(b))
    period = tau.float() + offset.clamp(-1, 1)
    return period, found, cmnd[..., tau_min: tau_max + 1].amin(-1), e0.squeeze(-1)


def median_smoothed(f0: torch.Tensor, width: int = 5) -> torch.Tensor:
    """(B, F) F0 in Hz (0 unvoiced) -> (B, F): each voiced frame's F0 replaced by the median of the
    voiced frames among the ``width`` centred on it (the lower middle one of an even count); unvoiced
    frames stay 0. An octave error of one or two frames, YIN's usual mistake, is removed."""
    if f0.shape[-1] == 0:
        return f0
    pad = width // 2
    x = F.pad(torch.where(f0 > 0, f0, torch.full_like(f0, float("nan"))), (pad, pad), value=float("nan"))
    med = x.unfold(-1, width, 1).nanmedian(-1).values
    return torch.where(f0 > 0, med, torch.zeros_like(f0))


def log_f0_stats(f0: torch.Tensor, min_spread: float = 0.05) -> torch.Tensor:
    """(B, F) F0 in Hz (0 unvoiced) -> (B, 2) [mean, spread] of each row's voiced frames' log F0
    (natural log): the level and range :func:`normalised_log_f0` takes out. ``spread`` is the
    standard deviation, at least ``min_spread`` (a monotone row, or a row with one voiced frame, is
    not blown up); a row without voiced frames gives [0, min_spread]."""
    voiced = f0 > 0
    logf = torch.where(voiced, f0.clamp(min=1e-3).log(), torch.zeros_like(f0))
    count = voiced.sum(-1, keepdim=True).clamp(min=1)
    mean = logf.sum(-1, keepdim=True) / count
    var = (torch.where(voiced, logf - mean, torch.zeros_like(f0)).square().sum(-1, keepdim=True) / count)
    return torch.cat([mean, var.sqrt().clamp(min=min_spread)], -1)


def normalised_log_f0(f0: torch.Tensor, min_spread: float = 0.05, limit: float = 3.0,
                      stats: torch.Tensor | None = None) -> torch.Tensor:
    """(B, F) F0 in Hz (0 unvoiced) -> (B, F) (log F0 - mean) / spread, clipped to [-limit, limit],
    0 where unvoiced. ``stats`` (B, 2) [mean, spread]: those of a longer stretch the row is cut
    from (the utterance of a training crop, ``decoder_conf.source_pitch_normalisation:
    utterance``); by default the row's own (:func:`log_f0_stats`)."""
    voiced = f0 > 0
    if stats is None:
        stats = log_f0_stats(f0, min_spread)
    mean, spread = stats[:, :1], stats[:, 1:]
    logf = f0.clamp(min=1e-3).log()
    return torch.where(voiced, ((logf - mean) / spread).clamp(-limit, limit), torch.zeros_like(f0))


def voiced_moving_average(contour: torch.Tensor, voiced: torch.Tensor, width: int) -> torch.Tensor:
    """(B, F) contour, (B, F) bool voiced, ``width`` frames (odd) -> (B, F): each voiced frame's
    value replaced by the mean over the voiced frames among the ``width`` centred on it; unvoiced
    frames stay 0. Unvoiced frames neither count nor pull the mean towards 0, so a voiced stretch
    keeps its level up to its edges."""
    if width % 2 == 0 or width < 1:
        raise ValueError(f"moving average width must be an odd number of frames, got {width}")
    if width == 1 or contour.shape[-1] == 0:
        return torch.where(voiced, contour, torch.zeros_like(contour))
    mask = voiced.float()[:, None]
    # sums over the window (zero padding at the ends: those frames are simply absent)
    total = F.avg_pool1d(F.pad(contour[:, None] * mask, (width // 2, width // 2)), width, 1)[:, 0]
    count = F.avg_pool1d(F.pad(mask, (width // 2, width // 2)), width, 1)[:, 0]
    return torch.where(voiced, total / count.clamp(min=1e-12), torch.zeros_like(contour))


def smoothing_frames(smoothing_ms: float, sample_rate: int, frame_hop: int) -> int:
    """``decoder_conf.source_pitch_smoothing_ms`` -> the odd window in frames nearest to it (1: none)."""
    frames = smoothing_ms * sample_rate / 1000 / frame_hop
    return 2 * int(round((frames - 1) / 2)) + 1 if frames > 1 else 1


@torch.no_grad()
def pitch_features(wav: torch.Tensor, sample_rate: int, frame_hop: int, voicing: str = "periodicity",
                   smoothing: int = 1, stats: torch.Tensor | None = None, **options) -> torch.Tensor:
    """(B, T) waveform -> (B, 3, T // frame_hop) float32 [normalised log F0 of the
    median-smoothed track (0 unvoiced), voicing, known (1)]: the source pitch a
    ``decoder_conf.source_pitch`` model is conditioned on. ``voicing``
    (``decoder_conf.source_pitch_voicing``): "periodicity" (YIN's, in [0, 1]), "binary" (1 on
    the smoothed track's voiced frames) or "none" (0). ``smoothing`` (odd, in frames; see
    :func:`smoothing_frames`): the contour is averaged over that many frames
    (:func:`voiced_moving_average`), keeping the slow intonation and dropping the frame-to-frame
    micro-prosody; 1 leaves it as tracked. ``stats`` (B, 2): the log-F0 mean and spread to
    normalise with (:func:`utterance_log_f0_stats` of the utterances the rows are cut from), by
    default each row's own. ``options`` go to :func:`yin`."""
    if voicing not in VOICING_KINDS:
        raise ValueError(f"voicing must be one of {', '.join(VOICING_KINDS)}, got {voicing!r}")
    f0, periodicity = _smoothed_track(wav, sample_rate, frame_hop, **options)
    voiced = (periodicity if voicing == "periodicity" else
              (f0 > 0).float() if voicing == "binary" else torch.zeros_like(f0))  # only the one asked for
    contour = voiced_moving_average(normalised_log_f0(f0, stats=stats), f0 > 0, smoothing)
    return torch.stack([contour, voiced, torch.ones_like(f0)], 1)


@torch.no_grad()
def utterance_log_f0_stats(wav: torch.Tensor, sample_rate: int, frame_hop: int, **options) -> torch.Tensor:
    """(B, T) waveform -> (B, 2) float32 [mean, spread] of the log F0 of its median-smoothed track's
    voiced frames (:func:`log_f0_stats`): what :func:`pitch_features` of the whole waveform takes
    out, to normalise crops of it with (``stats``). ``options`` go to :func:`yin`."""
    return log_f0_stats(_smoothed_track(wav, sample_rate, frame_hop, **options)[0])


def _smoothed_track(wav: torch.Tensor, sample_rate: int, frame_hop: int, **options
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T) waveform -> ((B, F) median-smoothed F0, (B, F) periodicity): YIN in float32 (never
    under autocast), the track both the features and the utterance statistics are taken from."""
    with torch.autocast(wav.device.type, enabled=False):
        f0, periodicity = yin(wav, sample_rate, frame_hop, **options)
    return median_smoothed(f0), periodicity


MAX_INTONATION = 3.0  # the contour is clipped at 3 spreads in training; 3x that is far outside it


def with_intonation(features: torch.Tensor, scale: float) -> torch.Tensor:
    """(..., 3, F) pitch features -> a copy with the contour channel times ``scale``: 1 keeps the
    source's intonation, 0 gives a monotone at the target voice's own mean pitch (the contour is
    relative to the row's mean), 0.5 half the source's excursions, 2 twice them. Voicing and the
    "known" flag are kept, so the decoder still reads the pitch as given."""
    if not 0.0 <= scale <= MAX_INTONATION:
        raise ValueError(f"intonation scale must be within [0, {MAX_INTONATION:g}], got {scale!r}")
    out = features.clone()
    out[..., 0, :] *= scale
    return out


def unknown_pitch(batch: int, frames: int, device=None) -> torch.Tensor:
    """(B, 3, F) zeros: no source pitch (the "known" flag 0), what a model decodes codes alone with."""
    return torch.zeros(batch, PITCH_CHANNELS, frames, device=device)

