"""Parallel supervision for a spectral model: the same sentence said by another training voice.

A non-parallel VQ-VAE never sees what it is asked to do at conversion: a source's codes decoded
with *another* speaker.  Where the training set is parallel (the mini corpus: every voice reads
the same sentences; VCTK: a few dozen shared sentences), the other voice's recording of the same
sentence says what that decoding should sound like.  This module gives, for each training crop,
a partner utterance with the same transcript by another speaker, and the partner's target frames
aligned to the crop's frames by dynamic time warping, so the model can add
``parallel_weight x |decoder(crop codes, partner speaker) - aligned partner frames|``
(``decoder_conf.parallel_weight``).

Partners can also come without transcripts: ``origin`` groups each utterance with its
voice-shifted copies (``vqspeech shift-voices`` writes ``utt2origin``), which say the same words at
the same times, so frame ``t`` pairs with frame ``t`` and no DTW is needed.

Alignment: DTW (librosa) between the two utterances' log-mel frames turned into cepstra (a DCT of
each frame, the first coefficient, loudness, dropped, and each coefficient's utterance mean
removed), the classic speaker-robust distance of parallel voice conversion.  Each source frame
takes the partner frame of its first pairing on the path.  Crops are drawn as the training
batches draw them (:class:`vqspeech.training_crops.CropBatches`), so the crop's first frame is
known: its start sample rounded to the frame grid (within half a frame hop).
"""

from __future__ import annotations

import numpy as np
import torch

from .training_crops import CropBatches, _seeded


def cepstra(log_mel: np.ndarray, keep: int = 24) -> np.ndarray:
    """(bins, F) log-mel frames -> (keep, F) mean-removed cepstra without c0 (the DTW features)."""
    from scipy.fft import dct

    c = dct(log_mel, type=2, norm="ortho", axis=0)[1:keep + 1]
    return c - c.mean(axis=1, keepdims=True)


def align_both(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(D, Fs), (D, Fd) features -> ((Fs,), (Fd,)) int64 maps from one DTW path (Euclidean frame
    distance): each source frame's partner frame, and each partner frame's source frame (the
    first pairing when a frame pairs with several)."""
    import librosa

    _, path = librosa.sequence.dtw(X=src, Y=dst, metric="euclidean")
    path = path[::-1]  # librosa returns it end first
    to_dst = np.full(src.shape[1], -1, dtype=np.int64)
    to_src = np.full(dst.shape[1], -1, dtype=np.int64)
    for i, j in path:
        if to_dst[i] < 0:
            to_dst[i] = j
        if to_src[j] < 0:
            to_src[j] = i
    return to_dst, to_src


def align(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """(D, Fs), (D, Fd) features -> (Fs,) int64: each source frame's partner frame on the DTW path."""
    return align_both(src, dst)[0]


def same_times(frames_a: int, frames_b: int) -> tuple[np.ndarray, np.ndarray]:
    """The frame maps of two renderings of one recording (a voice-shifted copy keeps every time):
    frame t -> frame t, the last frame standing in past the shorter one's end."""
    return (np.minimum(np.arange(frames_a), frames_b - 1).astype(np.int64),
            np.minimum(np.arange(frames_b), frames_a - 1).astype(np.int64))


class ParallelTargets:
    """Partners and aligned target frames for the crops of a :class:`CropBatches`.

    ``frames_of(wav (T,) float32) -> (bins, T // hop) float32`` must be the model's regression
    target (``SpectralVQVAE.target_frames`` for one utterance).  Utterances whose transcript no
    other speaker reads get no partner: their rows are masked out.  With ``origin`` (utterance ->
    the utterance it was made from) instead of ``text``, the partners are the other utterances of
    the same origin by other speakers, aligned frame for frame. With ``pitch_of(wav (T,) float32) ->
    (3, T // hop)`` (``SpectralVQVAE.source_pitch`` for one utterance), :meth:`draw` also gives the
    partners' pitch features aligned the same way, for a ``source_pitch`` model.
    """

    def __init__(self, batches: CropBatches, text: dict[str, str] | None, frames_of, frame_hop: int,
                 origin: dict[str, str] | None = None, pitch_of=None):
        if (text is None) == (origin is None):
            raise ValueError("give the transcripts or the origins (one of them)")
        self.batches = batches
        self.hop = frame_hop
        utts = batches.utts
        self.frames = [frames_of(batches.audio(i)) for i in range(len(utts))]
        self.pitch = None if pitch_of is None else [pitch_of(batches.audio(i)) for i in range(len(utts))]
        groups: dict[str, list[int]] = {}
        for i, u in enumerate(utts):
            key = origin.get(u, "") if origin is not None else " ".join(text.get(u, "").lower().split())
            if key:
                groups.setdefault(key, []).append(i)
        # partners[i]: utterances of i's group by other speakers, each with the (F_i,) frame map
        self.partners: list[list[tuple[int, np.ndarray]]] = [[] for _ in utts]
        feats = {}
        for group in groups.values():
            for a, i in enumerate(group):
                for j in group[a + 1:]:
                    if batches.spk[i] == batches.spk[j]:
                        continue
                    if origin is not None:
                        i_to_j, j_to_i = same_times(self.frames[i].shape[1], self.frames[j].shape[1])
                    else:
                        for k in (i, j):
                            if k not in feats:
                                feats[k] = cepstra(self.frames[k])
                        i_to_j, j_to_i = align_both(feats[i], feats[j])  # one DTW serves both directions
                    self.partners[i].append((j, i_to_j))
                    self.partners[j].append((i, j_to_i))

    @property
    def coverage(self) -> float:
        """The fraction of utterances with at least one partner."""
        return sum(bool(p) for p in self.partners) / len(self.partners)

    def crop_first_frame(self, i: int, key: int) -> int:
        """Utterance frame of the crop's first frame (negative when the crop starts with padding)."""
        return int(round(self.batches.crop_start(i, key) / self.hop))

    def _pairs(self, step: int) -> list[tuple[int, int, int, np.ndarray | None]]:
        """Batch ``step``'s rows as (crop key, utterance i, partner j or -1, i -> j frame map or None);
        the partner draw is a pure function of (seed, step, rank)."""
        b = self.batches
        gen = _seeded(b.seed, 4, step, b.rank)
        base = step * b.global_batch + b.rank * b.batch_size
        rows = []
        for row, i in enumerate(b.utterance_indices(step)):
            if not self.partners[i]:
                rows.append((base + row, i, -1, None))
                continue
            j, path = self.partners[i][int(torch.randint(len(self.partners[i]), (1,), generator=gen))]
            rows.append((base + row, i, j, path))
        return rows

    def draw(self, step: int, code_hop: int | None = None) -> tuple[torch.Tensor, ...]:
        """For batch ``step``: partner speakers (B,) int64, aligned partner frames (B, bins, n)
        float32 and a (B, n) float32 mask (1 where the crop frame lies in its utterance and the
        utterance has a partner), n = segment // hop; with ``code_hop``, also
        :meth:`draw_partner_crops`'s two tensors for the same partners (drawn once); last, when
        built with ``pitch_of``, the partners' aligned pitch features (B, 3, n) float32 (zeros,
        "unknown", where the mask is 0).  A pure function of (seed, step, rank)."""
        b = self.batches
        n = b.segment // self.hop
        bins = self.frames[0].shape[0]
        pairs = self._pairs(step)
        spk = np.zeros(b.batch_size, dtype=np.int64)
        target = np.zeros((b.batch_size, bins, n), dtype=np.float32)
        mask = np.zeros((b.batch_size, n), dtype=np.float32)
        pitch = None if self.pitch is None else np.zeros((b.batch_size, self.pitch[0].shape[0], n), dtype=np.float32)
        for row, (key, i, j, path) in enumerate(pairs):
            spk[row] = b.spk[i if j < 0 else j]
            if j < 0:
                continue
            src = self.crop_first_frame(i, key) + np.arange(n)
            inside = (src >= 0) & (src < len(path))
            target[row][:, inside] = self.frames[j][:, path[src[inside]]]
            if pitch is not None:
                pitch[row][:, inside] = self.pitch[j][:, np.minimum(path[src[inside]], self.pitch[j].shape[1] - 1)]
            mask[row, inside] = 1.0
        out = (torch.from_numpy(spk), torch.from_numpy(target), torch.from_numpy(mask))
        if code_hop is not None:
            out = out + self._partner_crops(pairs, code_hop)
        return out if pitch is None else out + (torch.from_numpy(pitch),)

    def draw_partner_crops(self, step: int, code_hop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """For batch ``step`` (the same partners as :meth:`draw`): the partners' waveform crops
        (B, segment) float32, each centred on the stretch of the partner reading that DTW pairs with
        the crop, and (B, n) int64 the partner-crop code index aligned with each of the crop's
        n = segment // code_hop codes (-1: no partner, or the code or its partner falls outside its
        utterance or the partner crop).

        Code ``c`` of a crop starting at utterance sample ``a0`` sits at sample ``a0 + c * code_hop``;
        its frame's partner frame keeps the offset within the frame, and the partner crop's code
        ``k`` sits at ``b0 + k * code_hop``."""
        return self._partner_crops(self._pairs(step), code_hop)

    def _partner_crops(self, pairs, code_hop: int) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.batches
        seg = b.segment
        n = seg // code_hop
        crops = np.zeros((b.batch_size, seg), dtype=np.float32)
        index = np.full((b.batch_size, n), -1, dtype=np.int64)
        for row, (key, i, j, path) in enumerate(pairs):
            if j < 0:
                continue
            a0 = b.crop_start(i, key)
            s_a = a0 + code_hop * np.arange(n)
            ok = (s_a >= 0) & (s_a < len(path) * self.hop)
            if not ok.any():
                continue
            f_a = np.clip(np.round(s_a / self.hop).astype(np.int64), 0, len(path) - 1)
            s_b = path[f_a] * self.hop + (s_a - f_a * self.hop)
            partner = b.audio(j)
            b0 = int(s_b[ok][ok.sum() // 2]) - seg // 2   # the middle code's partner sample at the centre
            lo, hi = max(b0, 0), min(b0 + seg, len(partner))
            if hi > lo:
                crops[row, lo - b0:hi - b0] = partner[lo:hi]
            k = np.round((s_b - b0) / code_hop).astype(np.int64)
            ok &= (k >= 0) & (k < n) & (s_b >= 0) & (s_b < len(partner))
            index[row, ok] = k[ok]
        return torch.from_numpy(crops), torch.from_numpy(index)
