"""Training data: step-indexed random crops from a Kaldi data directory.

Batch ``s`` is a pure function of (seed, step, rank): which utterances (a per-epoch
permutation shared by all ranks, each rank taking its own slice, like
DistributedSampler) and where each crop starts.  Resuming at step ``s`` therefore sees
exactly the batches an uninterrupted run would, with no sampler state to save.
"""

from __future__ import annotations

import numpy as np
import torch

from .audio import load_audio
from .kaldi_data_dir import DataDir


def _seeded(*ints: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence(list(ints)).generate_state(1)[0]))


class CropBatches(torch.utils.data.Dataset):
    """Map-style dataset whose item ``step`` is a batch: (wav (B, L) float32, speaker (B,) int64)."""

    def __init__(self, dd: DataDir, speakers: list[str], sample_rate: int, batch_size: int,
                 segment: int, seed: int, rank: int = 0, world_size: int = 1, preload: bool = True):
        self.dd = dd
        self.utts = dd.utterances
        if not self.utts:
            raise ValueError("empty data directory")
        index = {s: i for i, s in enumerate(speakers)}
        self.spk = [index[dd.utt2spk[u]] for u in self.utts]
        self.sample_rate = sample_rate
        self.batch_size = batch_size
        self.segment = segment
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.cache: dict[int, np.ndarray] = {}
        self._perm_epoch, self._perm = -1, None
        if preload:
            for i in range(len(self.utts)):
                self.cache[i] = self._read(i)

    def _read(self, i: int) -> np.ndarray:
        path, start, end = self.dd.audio_of(self.utts[i])
        wav = load_audio(path, self.sample_rate, start, end)
        return (np.clip(wav, -1, 1) * 32767).astype(np.int16)  # half the memory of float32

    def audio(self, i: int) -> np.ndarray:
        wav = self.cache.get(i)
        if wav is None:
            wav = self._read(i)
        return wav.astype(np.float32) / 32767

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def epoch_of(self, step: int) -> float:
        return step * self.global_batch / len(self.utts)

    def __len__(self) -> int:  # effectively unbounded; the trainer picks the steps
        return 2**62

    def _utt_index(self, g: int) -> int:
        n = len(self.utts)
        epoch, pos = divmod(g, n)
        if self._perm_epoch != epoch:
            self._perm = torch.randperm(n, generator=_seeded(self.seed, epoch))
            self._perm_epoch = epoch
        return int(self._perm[pos])

    def crop_start(self, i: int, key: int, length: int | None = None) -> int:
        """The utterance sample at which crop ``key`` of utterance ``i`` starts; negative (minus
        the zeros put before it) when the utterance is shorter than the segment."""
        if length is None:
            length = len(self.cache[i]) if i in self.cache else len(self.audio(i))
        n = length
        gen = _seeded(self.seed, 1, key)
        if n >= self.segment:
            return int(torch.randint(n - self.segment + 1, (1,), generator=gen))
        return -int(torch.randint(self.segment - n + 1, (1,), generator=gen))

    def crop(self, i: int, key: int) -> np.ndarray:
        wav = self.audio(i)
        start = self.crop_start(i, key, len(wav))
        if start >= 0:
            return wav[start:start + self.segment]
        out = np.zeros(self.segment, dtype=np.float32)
        out[-start:-start + len(wav)] = wav
        return out

    def utterance_indices(self, step: int) -> list[int]:
        """The indices (into ``utts``) of the utterances batch ``step`` crops, in batch order."""
        base = step * self.global_batch + self.rank * self.batch_size
        return [self._utt_index(base + j) for j in range(self.batch_size)]

    def __getitem__(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        base = step * self.global_batch + self.rank * self.batch_size
        idx = self.utterance_indices(step)
        wav = np.stack([self.crop(i, base + j) for j, i in enumerate(idx)])
        return torch.from_numpy(wav), torch.tensor([self.spk[i] for i in idx], dtype=torch.long)


class ReferenceCrops:
    """For each crop of a :class:`CropBatches` batch, a crop of *another* utterance of the same
    speaker (the same one only when the speaker has no other): the audio a jointly trained speaker
    encoder embeds (``speaker_conditioning: learned``), so the voice it passes on cannot carry the
    crop's own words. A pure function of (seed, step, rank), like the batches."""

    def __init__(self, batches: CropBatches, seconds: float = 2.0):
        self.batches = batches
        self.length = int(seconds * batches.sample_rate)
        self.by_speaker: dict[int, list[int]] = {}
        for i, s in enumerate(batches.spk):
            self.by_speaker.setdefault(s, []).append(i)

    def _fit(self, wav: np.ndarray, gen: torch.Generator) -> np.ndarray:
        """A random ``length``-sample window; a shorter utterance is repeated to fill it."""
        if len(wav) < self.length:
            return np.resize(wav, self.length)
        start = int(torch.randint(len(wav) - self.length + 1, (1,), generator=gen))
        return wav[start:start + self.length]

    def draw(self, step: int) -> torch.Tensor:
        """(B, length) float32 reference audio for batch ``step``."""
        b = self.batches
        gen = _seeded(b.seed, 2, step, b.rank)
        rows = []
        for i in b.utterance_indices(step):
            others = [j for j in self.by_speaker[b.spk[i]] if j != i] or [i]
            j = others[int(torch.randint(len(others), (1,), generator=gen))]
            rows.append(self._fit(b.audio(j), gen))
        return torch.from_numpy(np.stack(rows))

    def speaker_clips(self, speaker: int, count: int = 8) -> torch.Tensor:
        """(n, length) audio of the speaker's first ``count`` utterances (the training speakers'
        mean embeddings, for conversion by id)."""
        gen = _seeded(self.batches.seed, 3, speaker)
        return torch.from_numpy(np.stack([self._fit(self.batches.audio(j), gen)
                                          for j in self.by_speaker[speaker][:count]]))
