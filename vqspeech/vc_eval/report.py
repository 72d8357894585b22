"""``vqspeech vc-eval``: convert a parallel test set between all its speakers and measure it.

For every chosen sentence and every (source, target) speaker pair the source utterance is
converted to the target and compared with the target speaker's real utterance of the same
sentence (utterance ids ``<speaker>_<sentence>``):

- MCD (dB, DTW-aligned) and log-F0 RMSE (cents) / correlation on voiced frames;
- speaker similarity: cosine of the resemblyzer d-vector to the target's centroid (built
  from real utterances of another set, never the references), and identification: is the
  nearest centroid the target's?
- intelligibility: pocketsphinx word error rate against the transcript.

Reference rows in the same report: ``source`` (the unconverted source against the target:
the distortion before conversion), ``resynthesis`` (source = target through the model: what
the decoder loses) and ``real`` (the target's real utterance: ASR and speaker-ID ceilings).
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..audio import load_audio, save_audio
from ..checkpoint import load_model
from ..conversion import check_intonation, convert
from ..kaldi_data_dir import read_data_dir
from ..errors import UserError
from ..fileio import atomic_write
from ..ids import path_in
from ..generation import SamplingOptions
from . import ROW_KINDS
from .intelligibility import rows_wer_interval, word_error_counts, word_errors
from .spectral import FeatureThreads, compare_features, source_f0_correlation
from .speaker_similarity import centroids_from_data_dir, embed

MEASURES = ("mcd_db", "filterbank_mcd_db", "f0_rmse_cents", "f0_corr", "source_f0_corr", "speaker_similarity",
            "speaker_id_correct", "wer")


def _sentence(utt: str, spk: str) -> str:
    return utt[len(spk) + 1:] if utt.startswith(spk + "_") else utt[len(spk):].lstrip("_-")


def parallel_sentences(utt2spk: dict[str, str], speakers: list[str], max_sentences: int, rng: random.Random,
                       where: str) -> tuple[dict[str, dict[str, str]], list[str]]:
    """The test set's parallel sentences: ({sentence: {speaker: utterance}}, up to ``max_sentences``
    sentences read by every one of ``speakers``, drawn with ``rng`` and sorted). Utterance ids are
    <speaker>_<sentence>; a UserError naming ``where`` when no sentence is read by all."""
    by_sentence: dict[str, dict[str, str]] = defaultdict(dict)
    for utt, spk in utt2spk.items():
        by_sentence[_sentence(utt, spk)][spk] = utt
    parallel = sorted(s for s, d in by_sentence.items() if all(sp in d for sp in speakers))
    if not parallel:
        raise UserError(f"{where}: no sentence is read by every speaker (utterance ids <speaker>_<sentence>)")
    return by_sentence, sorted(rng.sample(parallel, min(max_sentences, len(parallel))))


def run_vc_eval(model_path: str | Path, test_dir: str | Path, centroid_dir: str | Path, out_dir: str | Path,
                max_sentences: int = 2, max_pairs: int | None = None, seed: int = 0,
                centroid_utts: int = 10, opts: SamplingOptions | None = None, method: str = "numba",
                progress: bool = True, reference_utts: int = 3, vocoder_model: str | Path | None = None,
                analysis_threads: int = 2, intonation: float | None = 1.0) -> dict:
    """Convert parallel test sentences between every pair of speakers and score them.

    A model with ``speaker_conditioning: reference`` is also evaluated on test speakers it never
    saw: such a target is given by the d-vector of its first ``reference_utts`` utterances in
    ``centroid_dir`` (kinds ``converted_unseen`` / ``resynthesis_unseen``), and each of those rows
    also records its similarity to the nearest training speaker. ``vocoder_model``: a WaveNet
    vocoder (``vocoder.pt``) that voices a spectral model's frames instead of Griffin-Lim.
    ``analysis_threads``: threads that compute the spectral measures (WORLD's analysis releases
    the GIL) while conversion goes on; 0 computes them in turn. The report is the same either way.
    ``intonation``: what a ``source_pitch`` model does with the source's pitch (see
    :func:`vqspeech.conversion.convert`); the report records it."""
    lm = load_model(model_path)
    check_intonation(lm.model, intonation)
    vocoder = "griffin-lim"
    if vocoder_model is not None:
        from ..vocoders import WaveNetVocoding

        vocoder = WaveNetVocoding.load(vocoder_model, lm, method)
    sr = lm.sample_rate
    test = read_data_dir(test_dir)
    if test.text is None:
        raise UserError(f"{test_dir}: a 'text' file is needed for the intelligibility measure")
    reference_model = getattr(lm.model, "reference", False)
    speakers = [s for s in test.speakers if s in lm.speakers or reference_model]
    unseen = [s for s in speakers if s not in lm.speakers]
    if len(speakers) < 2:
        raise UserError(f"{test_dir}: fewer than 2 of its speakers are known to the model ({lm.speakers})")
    rng = random.Random(seed)
    by_sentence, sentences = parallel_sentences(test.utt2spk, speakers, max_sentences, rng, str(test_dir))
    pairs = [(s, t) for s in speakers for t in speakers]
    jobs = [(sent, s, t) for sent in sentences for s, t in pairs]
    if max_pairs is not None and len(jobs) > max_pairs:
        jobs = sorted(rng.sample(jobs, max_pairs))

    # centroids from real utterances of another set
    cdd = read_data_dir(centroid_dir)
    centroids = centroids_from_data_dir(cdd, speakers, sr, centroid_utts, centroid_dir)
    seen_in_test = [s for s in speakers if s in lm.speakers]
    targets = {t: lm.speakers.index(t) for t in seen_in_test}
    for t in unseen:  # a voice the model never heard: its reference recordings (segments respected)
        from ..speaker_reference import EMBED_RATE, embed_reference_clips

        clips = []
        for u in cdd.spk2utt[t][:reference_utts]:
            path, start, end = cdd.audio_of(u)
            clips.append((u, load_audio(path, EMBED_RATE, start, end)))
        targets[t] = embed_reference_clips(clips, model=lm.model)

    audio_cache: dict[str, np.ndarray] = {}

    def real(utt):
        if utt not in audio_cache:
            path, start, end = test.audio_of(utt)
            audio_cache[utt] = load_audio(path, sr, start, end)
        return audio_cache[utt]

    per_wav: dict[str, tuple] = {}  # real utterances recur across pairs: embed / recognise them once
    real_features: dict = {}  # ... and analyse them once (WORLD and pYIN: about a second each)
    analysis = FeatureThreads(sr, analysis_threads)
    spectral_rows = []  # (row, its wav's features, the target's), filled in once all are computed

    def features_of_real(utt):
        if utt not in real_features:
            real_features[utt] = analysis.submit(real(utt))
        return real_features[utt]

    def score(row, wav, target_utt, target_spk, text, with_spectral=True, key=None, nearest_of=(), source_utt=None):
        """``row`` with the measures of ``wav`` against the target (the spectral ones once
        :func:`FeatureThreads` has them); ``nearest_of``: speakers to report the best similarity
        among (the training speakers, for an unheard target); ``source_utt``: the utterance ``wav``
        was converted from, whose intonation ``source_f0_corr`` compares it with."""
        if with_spectral:
            # key: wav is the real utterance ``key``
            mine = features_of_real(key) if key is not None else analysis.submit(wav)
            row.update(mcd_db=None, filterbank_mcd_db=None, f0_rmse_cents=None, f0_corr=None,  # their place
                       source_f0_corr=None)
            spectral_rows.append((row, mine, features_of_real(target_utt),
                                  None if source_utt is None else features_of_real(source_utt)))
        if key is None or key not in per_wav:
            value = (embed(wav, sr), word_errors(text, wav))
            if key is not None:
                per_wav[key] = value
        e, (err, n, hyp) = per_wav[key] if key is not None else value
        row["speaker_similarity"] = centroids.similarity(e, target_spk)
        if nearest_of:
            row["similarity_nearest_training_speaker"] = max(centroids.similarity(e, k) for k in nearest_of)
        row["speaker_id_correct"] = float(centroids.identify(e) == target_spk)
        row.update(word_errors=err, wer=err / max(1, n), hypothesis=" ".join(hyp), **word_error_counts(text, hyp))
        return row

    try:
        out_dir = Path(out_dir)
        rows = []
        opts = opts or SamplingOptions(seed=seed)
        from tqdm import tqdm

        real_done = set()
        for sent, s, t in tqdm(jobs, desc="vc-eval", unit="pair", disable=not progress):
            src_utt, tgt_utt = by_sentence[sent][s], by_sentence[sent][t]
            text = test.text[tgt_utt]
            res = convert(lm.model, real(src_utt), targets[t], sr, opts, method, vocoder=vocoder,
                          intonation=intonation)
            save_audio(path_in(out_dir / "wav", f"{s}_to_{t}", f"{src_utt}.wav"), res.wav, sr)
            kind = ("resynthesis" if s == t else "converted") + ("_unseen" if t in unseen else "")
            rows.append(score({"kind": kind, "sentence": sent, "source": s, "target": t,
                               "real_time_factor": res.real_time_factor},
                              res.wav, tgt_utt, t, text, nearest_of=seen_in_test if t in unseen else (),
                              source_utt=src_utt))
            if s != t:
                rows.append(score({"kind": "source", "sentence": sent, "source": s, "target": t},
                                  real(src_utt), tgt_utt, t, text, key=src_utt))
            if (sent, t) not in real_done:
                real_done.add((sent, t))
                rows.append(score({"kind": "real", "sentence": sent, "source": t, "target": t, "mcd_db": 0.0},
                                  real(tgt_utt), tgt_utt, t, text, with_spectral=False, key=tgt_utt))
        for row, mine, theirs, source in spectral_rows:
            sc = compare_features(mine.result(), theirs.result())
            row.update(mcd_db=sc.mcd_db, filterbank_mcd_db=sc.filterbank_mcd_db, f0_rmse_cents=sc.f0_rmse_cents,
                       f0_corr=sc.f0_corr)
            if source is not None:
                row["source_f0_corr"] = source_f0_correlation(mine.result().f0, source.result().f0)
    except BaseException:
        analysis.close(cancel=True)
        raise
    analysis.close()
    rep = summarise(rows, speakers, str(model_path), str(test_dir), sentences)
    rep["unseen_speakers"] = unseen
    if lm.model.uses_source_pitch:
        rep["intonation"] = intonation
    rep["vocoder"] = str(vocoder_model) if vocoder_model is not None else (
        "griffin-lim" if lm.model.decoder_kind == "spectral" else None)
    return rep


def _mean(values):
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def summarise(rows: list[dict], speakers: list[str], model: str, test_dir: str, sentences: list[str]) -> dict:
    overall, matrices = {}, {}
    for kind in ROW_KINDS:
        sel = [r for r in rows if r["kind"] == kind]
        if not sel:
            continue
        summary = {m: _mean(r.get(m) for r in sel) for m in MEASURES}
        if kind.endswith("_unseen"):
            summary["similarity_nearest_training_speaker"] = _mean(
                r.get("similarity_nearest_training_speaker") for r in sel)
        words = sum(r["ref_words"] for r in sel)
        summary["wer"] = sum(r["word_errors"] for r in sel) / max(1, words)  # pooled, as WER is defined
        summary["wer_ci95"] = rows_wer_interval(sel)
        for k in ("substitutions", "deletions", "insertions"):
            summary[k] = sum(r[k] for r in sel)
        summary["ref_words"] = words
        summary["n"] = len(sel)
        overall[kind] = summary
    for m in MEASURES:
        mat = [[None] * len(speakers) for _ in speakers]
        for i, s in enumerate(speakers):
            for j, t in enumerate(speakers):
                kinds = ("resynthesis", "resynthesis_unseen") if s == t else ("converted", "converted_unseen")
                mat[i][j] = _mean(r.get(m) for r in rows if r["kind"] in kinds and r["source"] == s and r["target"] == t)
        matrices[m] = mat
    return {"model": model, "test_dir": test_dir, "speakers": speakers, "sentences": sentences,
            "overall": overall, "matrices": matrices, "rows": rows}


_LABELS = {"mcd_db": "MCD (dB)", "filterbank_mcd_db": "filter-bank MCD (dB, in-house)", "f0_rmse_cents": "log-F0 RMSE (cents)", "f0_corr": "log-F0 correlation",
           "source_f0_corr": "log-F0 correlation with the source (intonation kept)",
           "speaker_similarity": "speaker similarity (cosine)", "speaker_id_correct": "speaker identification",
           "wer": "word error rate"}


def _intonation_label(intonation: float | None) -> str:
    """How a source-pitch model's conversions used the source's pitch."""
    if intonation is None:
        return "none (codes alone)"
    return "as spoken (1)" if intonation == 1.0 else f"the source's x {intonation:g}"


def write_vc_report(rep: dict, out_dir: str | Path) -> Path:
    """report.json, report.md and a self-contained report.html with a heat map per measure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..phones.report import _html, _png

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(out_dir / "report.json") as fh:  # the numbers first, whatever happens to the plots
        json.dump(rep, fh, indent=2)
    spk = rep["speakers"]
    images = {}
    for m, mat in rep["matrices"].items():
        arr = np.array([[np.nan if v is None else v for v in row] for row in mat], dtype=float)
        fig, ax = plt.subplots(figsize=(1.2 + 0.7 * len(spk), 1.0 + 0.6 * len(spk)))
        im = ax.imshow(arr, cmap="viridis")
        for i in range(len(spk)):
            for j in range(len(spk)):
                if not np.isnan(arr[i, j]):
                    ax.text(j, i, f"{arr[i, j]:.2f}", ha="center", va="center", fontsize=7, color="w")
        ax.set_xticks(range(len(spk)), spk)
        ax.set_yticks(range(len(spk)), spk)
        ax.set_xlabel("target")
        ax.set_ylabel("source")
        ax.set_title(_LABELS[m])
        fig.colorbar(im, ax=ax, fraction=0.046)
        images[f"{m}.png"] = _png(fig)
        with atomic_write(out_dir / f"{m}.png", "wb") as fh:
            fh.write(images[f"{m}.png"])

    def f(v, fmt="{:.2f}"):
        return "n/a" if v is None else fmt.format(v)

    lines = [f"# Voice-conversion report: {rep['test_dir']}", "",
             f"Model {rep['model']}"
             + (f", vocoder {rep['vocoder']}" if rep.get("vocoder") else "")
             + (f", intonation {_intonation_label(rep['intonation'])}" if "intonation" in rep else "")
             + f"; speakers {', '.join(spk)}; sentences {', '.join(rep['sentences'])}.", "",
             "MCD: WORLD + SPTK mel-cepstrum (order 24, c0 excluded), DTW; WER: pocketsphinx, "
             "substitutions / deletions / insertions of the reference words; in brackets its 95% "
             "bootstrap interval over the utterances. Log-F0 against the target's reading (DTW) and, "
             "frame for frame, against the source (how much of its intonation is kept).", "",
             "| system | MCD (dB) | log-F0 RMSE (cents) | log-F0 corr | log-F0 corr with source | speaker similarity "
             "| speaker ID | WER | S / D / I | n |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    names = {"converted": "converted (source -> target)", "resynthesis": "resynthesis (target -> target)",
             "converted_unseen": "converted to an unheard voice (from its reference audio)",
             "resynthesis_unseen": "resynthesis of an unheard voice (from its reference audio)",
             "source": "unconverted source vs target", "real": "real target"}
    for kind, o in rep["overall"].items():
        lines.append(f"| {names[kind]} | {f(o['mcd_db'])} | {f(o['f0_rmse_cents'], '{:.0f}')} | {f(o['f0_corr'])} | "
                     f"{f(o.get('source_f0_corr'))} | "
                     f"{f(o['speaker_similarity'], '{:.3f}')} | {f(o['speaker_id_correct'] and 100 * o['speaker_id_correct'], '{:.0f}%')} | "
                     f"{f(o['wer'] * 100, '{:.1f}%')} ({100 * o['wer_ci95'][0]:.1f}-{100 * o['wer_ci95'][1]:.1f}) | {o['substitutions']} / {o['deletions']} / {o['insertions']} "
                     f"of {o['ref_words']} | {o['n']} |")
    lines.append("")
    for kind in ("converted_unseen", "resynthesis_unseen"):
        o = rep["overall"].get(kind)
        if o and o.get("similarity_nearest_training_speaker") is not None:
            lines.append(f"{names[kind]}: similarity to the held-out target {f(o['speaker_similarity'], '{:.3f}')}, "
                         f"to the nearest training speaker {f(o['similarity_nearest_training_speaker'], '{:.3f}')}.")
    if rep.get("unseen_speakers"):
        lines += [f"Speakers the model never heard: {', '.join(rep['unseen_speakers'])} (identification is among "
                  f"all {len(spk)} test speakers).", ""]
    lines += [f"![{_LABELS[m]}]({m}.png)" for m in rep["matrices"]]
    md = "\n".join(lines) + "\n"
    with atomic_write(out_dir / "report.md") as fh:
        fh.write(md)
    with atomic_write(out_dir / "report.html") as fh:
        fh.write(_html(md, images, f"VC report {rep['test_dir']}"))
    return out_dir / "report.json"
