"""The embedded parallel mini corpus, synthesized with Debian's flite (and festival).

Every voice reads the same Harvard sentences, so the corpus is parallel (voice
conversion can be scored against the real target) and phone-aligned (the
synthesizer reports each phone's end time, so no aligner is needed).

Layout written under ``out_dir``::

    wav/<spk>/<spk>_<sent>.wav             16 kHz mono 16-bit
    data/{train,dev,test}/{wav.scp,utt2spk,spk2utt,text,utt2dur,phones.ctm}

Sentences are split by sentence id, so test (and dev) sentences are never seen in
training, while every speaker appears in every split.

``--extra-train-sentences M`` also synthesizes the M Harvard sentences after the first N and
writes ``data/train_large``: the train split plus those sentences, with dev and test
unchanged, so a model trained on more text is measured on the same test set.

``vqspeech make-mini-corpus --out-dir DIR [--num-sentences N] [--extra-train-sentences M]``
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import soundfile as sf

from ..alignments import PhoneInterval, write_ctm
from ..kaldi_data_dir import DataDir, write_data_dir
from ..errors import UserError

SAMPLE_RATE = 16000
#: speaker id -> flite voice name.
FLITE_VOICES = {"awb": "awb", "kal": "kal16", "rms": "rms", "slt": "slt"}
#: speaker id -> festival voice function, used when festival and the voice are installed.
# (festival's kal_diphone and us_slt_hts are the same people as flite's kal16 and slt, so only
# ked, a different speaker, is added.)
FESTIVAL_VOICES = {"ked": "voice_ked_diphone"}

_PSDUR = re.compile(r"(\S+):([0-9.]+)")


@dataclass(frozen=True)
class Utterance:
    speaker: str
    sentence_id: str
    text: str

    @property
    def utt_id(self) -> str:
        return f"{self.speaker}_{self.sentence_id}"


def harvard_sentences() -> list[str]:
    """The 720 Harvard sentences shipped with the package, in list order."""
    text = resources.files("vqspeech").joinpath("texts/harvard-sentences.txt").read_text("utf-8")
    return [line.strip() for line in text.splitlines() if line.strip()]


def split_sentences(num: int, dev_fraction: float = 0.1, test_fraction: float = 0.1) -> dict[str, list[int]]:
    """Split sentence indices 0..num-1 into train/dev/test (at least one each, disjoint).

    Test and dev take every k-th sentence rather than a block so they spread over the
    Harvard lists (each list is phonetically balanced on its own).
    """
    if num < 3:
        raise UserError(f"--num-sentences must be at least 3 (one per split), got {num}")
    n_test = max(1, round(num * test_fraction))
    n_dev = max(1, round(num * dev_fraction))
    test = [int(i * num / n_test) + num // (2 * n_test) for i in range(n_test)]
    test = sorted(set(min(num - 1, t) for t in test))
    rest = [i for i in range(num) if i not in set(test)]
    dev = sorted(set(rest[int(i * len(rest) / n_dev)] for i in range(n_dev)))
    train = [i for i in rest if i not in set(dev)]
    return {"train": train, "dev": dev, "test": test}


def available_speakers() -> dict[str, tuple[str, str]]:
    """Speakers this machine can synthesize: {speaker: (engine, voice)}."""
    if shutil.which("flite") is None:
        raise UserError("flite is not installed: run 'apt-get install -y flite' (Debian/Ubuntu), "
                        "or 'make setup' as root")
    voices = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
    out = {spk: ("flite", v) for spk, v in FLITE_VOICES.items() if v in voices.split()}
    if shutil.which("festival"):
        for spk, fn in FESTIVAL_VOICES.items():
            if _festival_has_voice(fn):
                out[spk] = ("festival", fn)
    return dict(sorted(out.items()))


def _festival_has_voice(fn: str) -> bool:
    probe = subprocess.run(["festival", "-b", f"(if (boundp '{fn}) (print 'yes) (print 'no))"],
                           capture_output=True, text=True, timeout=60)
    return "yes" in probe.stdout


def synthesize_flite(voice: str, text: str, wav_path: Path) -> list[PhoneInterval]:
    """Synthesize ``text`` with a flite voice into ``wav_path``; return its phone intervals."""
    res = subprocess.run(["flite", "-voice", voice, "-psdur", "-t", text, "-o", str(wav_path)],
                         capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise RuntimeError(f"flite -voice {voice} failed: {res.stderr.strip()}")
    return _intervals_from_ends(_PSDUR.findall(res.stdout))


_FESTIVAL_SCRIPT = """
({voice})
(set! utt (Utterance Text "{text}"))
(utt.synth utt)
(utt.save.wave utt "{wav}" 'riff)
(mapcar (lambda (s) (format t "%s:%f\\n" (item.name s) (item.feat s "end"))) (utt.relation.items utt 'Segment))
"""


def synthesize_festival(voice_fn: str, text: str, wav_path: Path) -> list[PhoneInterval]:
    """Synthesize with a festival voice, resampled to 16 kHz; return its phone intervals."""
    safe = text.replace("\\", " ").replace('"', " ")
    script = _FESTIVAL_SCRIPT.format(voice=voice_fn, text=safe, wav=wav_path)
    res = subprocess.run(["festival", "-b", "--pipe"], input=script, capture_output=True, text=True,
                         timeout=120)
    if res.returncode != 0 or not wav_path.exists():
        raise RuntimeError(f"festival {voice_fn} failed: {res.stderr.strip()}")
    data, sr = sf.read(str(wav_path), dtype="float32")
    if sr != SAMPLE_RATE:
        from ..audio import resample

        sf.write(str(wav_path), resample(data, sr, SAMPLE_RATE), SAMPLE_RATE, subtype="PCM_16")
    return _intervals_from_ends(_PSDUR.findall(res.stdout))


def _intervals_from_ends(pairs: list[tuple[str, str]]) -> list[PhoneInterval]:
    out, start = [], 0.0
    for phone, end_s in pairs:
        end = float(end_s)
        if end > start:
            out.append(PhoneInterval(round(start, 4), round(end, 4), phone))
            start = end
    if not out:
        raise RuntimeError("synthesizer reported no phone times")
    return out


def _synthesize_one(job: tuple[Utterance, str, str, Path]) -> tuple[Utterance, list[PhoneInterval], float]:
    utt, engine, voice, wav_path = job
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = wav_path.with_name(f".{wav_path.name}.tmp.wav")
    fn = synthesize_flite if engine == "flite" else synthesize_festival
    intervals = fn(voice, utt.text, tmp)
    os.replace(tmp, wav_path)
    duration = sf.info(str(wav_path)).duration
    # The alignment must cover the audio exactly: clamp rounding overshoot, and give the few
    # trailing samples some synthesizers (festival's diphone voices) append to the final pause.
    last = intervals[-1]
    if last.end > duration or (last.phone == "pau" and last.end < duration):
        intervals[-1] = PhoneInterval(last.start, round(duration, 4), last.phone)
    elif duration - last.end > 0.005:
        intervals.append(PhoneInterval(last.end, round(duration, 4), "pau"))
    return utt, intervals, duration


def build_mini_corpus(out_dir: str | os.PathLike, num_sentences: int = 200,
                      speakers: list[str] | None = None, jobs: int | None = None,
                      force: bool = False, progress: bool = True,
                      extra_train_sentences: int = 0) -> dict[str, Path]:
    """Synthesize the corpus and write its data directories; return {split: data dir}.

    With ``extra_train_sentences`` > 0 the split ``train_large`` (train + the next
    ``extra_train_sentences`` Harvard sentences) is written too. Idempotent: when
    ``out_dir/.done`` records the same settings, nothing is redone.
    """
    out_dir = Path(out_dir)
    all_sentences = harvard_sentences()
    if not 3 <= num_sentences <= len(all_sentences):
        raise UserError(f"--num-sentences must be between 3 and {len(all_sentences)}, got {num_sentences}")
    if not 0 <= extra_train_sentences <= len(all_sentences) - num_sentences:
        raise UserError(f"--extra-train-sentences must be between 0 and {len(all_sentences) - num_sentences} "
                        f"(the Harvard sentences after the first {num_sentences}), got {extra_train_sentences}")
    avail = available_speakers()
    if speakers:
        unknown = [s for s in speakers if s not in avail]
        if unknown:
            raise UserError(f"--speakers: unknown or unavailable {unknown}; available: {sorted(avail)}")
        avail = {s: avail[s] for s in speakers}
    stamp = f"num_sentences={num_sentences} speakers={','.join(avail)}\n"
    if extra_train_sentences:
        stamp += f"extra_train_sentences={extra_train_sentences}\n"
    done = out_dir / ".done"
    split_idx = split_sentences(num_sentences)
    if extra_train_sentences:
        split_idx["train_large"] = split_idx["train"] + list(range(num_sentences, num_sentences + extra_train_sentences))
    splits = {name: out_dir / "data" / name for name in split_idx}
    if not force and done.is_file() and done.read_text() == stamp:
        return splits

    sentences = [Utterance(spk, f"h{i + 1:03d}", all_sentences[i])
                 for spk in avail for i in range(num_sentences + extra_train_sentences)]
    jobs_list = [(u, *avail[u.speaker], out_dir / "wav" / u.speaker / f"{u.utt_id}.wav") for u in sentences]
    workers = jobs or max(2, (os.cpu_count() or 2) * 2)  # subprocess-bound: oversubscribe a little
    results = {}
    with ThreadPoolExecutor(workers) as pool:
        iterator = pool.map(_synthesize_one, jobs_list)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, total=len(jobs_list), desc="synthesizing", unit="utt", disable=None)
        for utt, intervals, duration in iterator:
            results[utt.utt_id] = (utt, intervals, duration)

    if not extra_train_sentences:  # a train_large of an earlier build would no longer match
        shutil.rmtree(out_dir / "data" / "train_large", ignore_errors=True)
    for name, idx in split_idx.items():
        ids = {f"h{i + 1:03d}" for i in idx}
        chosen = {k: v for k, v in results.items() if v[0].sentence_id in ids}
        dd = DataDir(
            wav_scp={k: str((out_dir / "wav" / v[0].speaker / f"{k}.wav").resolve()) for k, v in chosen.items()},
            utt2spk={k: v[0].speaker for k, v in chosen.items()},
            text={k: v[0].text for k, v in chosen.items()},
            utt2dur={k: v[2] for k, v in chosen.items()},
        )
        write_data_dir(splits[name], dd)
        write_ctm(splits[name] / "phones.ctm", {k: v[1] for k, v in chosen.items()})
    done.write_text(stamp)
    return splits
