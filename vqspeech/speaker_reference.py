"""Reference embeddings of a voice: resemblyzer d-vectors, for models with
``speaker_conditioning: reference`` (conversion to a voice given by a few seconds of audio), or
the model's own jointly trained speaker encoder's embeddings (``learned``).

Why a pretrained speaker encoder is the default and not one trained jointly: the toolkit's
corpora have 5 (mini) to 100 (VCTK) speakers, too few for a speaker encoder to learn a space that
places a new voice sensibly; resemblyzer's GE2E encoder was trained on thousands of speakers and
ships offline in its wheel (the README's held-out-speaker rows measure both). The VQ-VAE learns one
linear layer from the 256-d embedding to the decoder's speaker vector.

Checks on references (one-line errors naming the file): the sample rate must be at least
8 kHz; the file must not be silent; after resemblyzer trims silences at least
:data:`MIN_SPEECH_SECONDS` of speech must remain.
"""

from __future__ import annotations

import numpy as np

from .errors import UserError

EMBED_RATE = 16000          # resemblyzer works at 16 kHz
MIN_RATE = 8000             # below this a recording does not carry the voice band
MIN_SPEECH_SECONDS = 1.0    # of speech after silence trimming, over all references of a voice
SILENCE_RMS = 1e-4          # full scale; a recording quieter than this throughout is silent


def reference_embedding(paths, min_speech_seconds: float = MIN_SPEECH_SECONDS, model=None) -> np.ndarray:
    """Reference recordings of one voice -> (256,) unit-norm embedding (their speech pooled): a
    resemblyzer d-vector, or ``model``'s own when it has a jointly trained speaker encoder.

    UserError (one line, naming the file) for an unreadable file, a rate below 8 kHz, or the
    failures of :func:`embed_reference_clips`.
    """
    import soundfile as sf

    from .audio import load_audio

    clips = []
    for path in paths:
        try:
            rate = sf.info(str(path)).samplerate
        except (RuntimeError, OSError) as exc:
            raise UserError(f"{path}: cannot read the reference audio ({str(exc).strip()[:120]})") from None
        if rate < MIN_RATE:
            raise UserError(f"{path}: sample rate {rate} Hz is below the {MIN_RATE} Hz a reference voice needs")
        clips.append((path, load_audio(path, EMBED_RATE)))
    return embed_reference_clips(clips, min_speech_seconds, model)


def embed_reference_clips(clips, min_speech_seconds: float = MIN_SPEECH_SECONDS, model=None) -> np.ndarray:
    """[(name, (T,) waveform at 16 kHz)] of one voice -> (256,) unit-norm embedding: resemblyzer's
    d-vector, or, when ``model`` has a jointly trained ``speaker_encoder``, that encoder's.

    UserError naming the clip for silence, and for less than ``min_speech_seconds`` of speech in
    all of them together after resemblyzer trims silences (the same checks for both encoders).
    """
    from .vc_eval.deps import require
    from .vc_eval.speaker_similarity import voice_encoder

    resemblyzer = require("resemblyzer")   # its silence trimming serves both encoders
    speech = []
    for name, wav in clips:
        if len(wav) == 0 or float(np.sqrt(np.mean(np.square(wav)))) < SILENCE_RMS:
            raise UserError(f"{name}: the reference audio is silent")
        trimmed = resemblyzer.preprocess_wav(np.asarray(wav, dtype=np.float32), EMBED_RATE)
        if len(trimmed) == 0:
            raise UserError(f"{name}: no speech found in the reference audio")
        speech.append(trimmed)
    total = sum(len(s) for s in speech) / EMBED_RATE
    if total < min_speech_seconds:
        names = ", ".join(str(n) for n, _ in clips)
        raise UserError(f"{names}: {total:.2f} s of speech after trimming silence; a reference voice needs at least "
                        f"{min_speech_seconds:g} s")
    learned = getattr(model, "speaker_encoder", None)
    if learned is not None:   # the model's own encoder: resemblyzer's network is not loaded
        return learned.embed(np.concatenate(speech), EMBED_RATE)
    _, encoder = voice_encoder()
    e = encoder.embed_utterance(np.concatenate(speech))
    return (e / np.linalg.norm(e)).astype(np.float32)


class ReferenceBank:
    """For each training speaker, the d-vectors of its utterances ((n_s, 256) each): training draws
    one per crop, another utterance of the same voice, so the decoder learns to follow the
    reference and not the crop's own content."""

    def __init__(self, speakers: list[str], per_speaker: list):
        import torch

        self.speakers = speakers
        self.per_speaker = [torch.as_tensor(np.asarray(e), dtype=torch.float32) for e in per_speaker]

    @classmethod
    def build(cls, dd, speakers: list[str], sample_rate: int, cache=None, say: bool = False) -> "ReferenceBank":
        """Embed every training utterance once (cached in ``cache``, a weights-only torch file)."""
        import torch

        from .audio import load_audio
        from .fileio import atomic_path
        from .vc_eval.speaker_similarity import embed

        if cache is not None and cache.is_file():
            data = torch.load(cache, map_location="cpu", weights_only=True)
            if data.get("speakers") == speakers:
                return cls(speakers, data["embeddings"])
        if say:
            print(f"embedding {len(dd.utt2spk)} training utterances with resemblyzer (once; cached in {cache})")
        per = []
        for spk in speakers:
            rows = []
            for utt in dd.spk2utt[spk]:
                path, start, end = dd.audio_of(utt)
                rows.append(embed(load_audio(path, EMBED_RATE, start, end), EMBED_RATE))
            per.append(np.stack(rows).astype(np.float32))
        bank = cls(speakers, per)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(cache) as tmp:
                torch.save({"speakers": speakers, "embeddings": bank.per_speaker}, tmp)
        return bank

    def means(self):
        """(S, 256) unit-norm mean d-vector per speaker."""
        import torch

        m = torch.stack([e.mean(0) for e in self.per_speaker])
        return m / m.norm(dim=1, keepdim=True)

    def draw(self, speaker, seed: int, step: int, rank: int = 0):
        """(B,) speaker ids -> (B, 256): a random utterance embedding of each speaker, a pure function
        of (seed, step, rank) so resumed training sees the same draws."""
        import torch

        g = torch.Generator().manual_seed((seed * 1_000_003 + step) * 64 + rank + 17)
        rows = [self.per_speaker[int(s)][int(torch.randint(len(self.per_speaker[int(s)]), (1,), generator=g))]
                for s in speaker.cpu()]
        return torch.stack(rows)
