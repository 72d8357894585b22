import json
import warnings

import numpy as np
import pytest

from vqspeech.audio import load_audio
from vqspeech.kaldi_data_dir import read_data_dir

pytest.importorskip("librosa")
pytest.importorskip("resemblyzer")
warnings.filterwarnings("ignore", category=DeprecationWarning)

from vqspeech.vc_eval.intelligibility import edit_distance, word_errors  # noqa: E402
from vqspeech.vc_eval.spectral import compare, spectral_features  # noqa: E402
from vqspeech.vc_eval.speaker_similarity import SpeakerCentroids, embed  # noqa: E402


def _wav(dd, utt):
    return load_audio(dd.audio_of(utt)[0])


def test_mcd_zero_for_itself_and_small_for_a_time_stretched_copy(tiny_corpus):
    import librosa

    dd = read_data_dir(tiny_corpus / "data" / "train")
    a = _wav(dd, "awb_h002")
    same = compare(a, a)
    assert same.mcd_db == pytest.approx(0.0, abs=1e-9)
    assert same.f0_rmse_cents == pytest.approx(0.0, abs=1e-6)
    from vqspeech.vc_eval.spectral import _K, world_mel_cepstrum as mel_cepstrum

    stretched = librosa.effects.time_stretch(a, rate=0.85)  # 18% longer (phase vocoder: a few artefacts)
    other = _wav(dd, "slt_h002")  # same sentence, another speaker
    s = compare(stretched, a).mcd_db
    o = compare(other, a).mcd_db
    ca, cs = mel_cepstrum(a), mel_cepstrum(stretched)
    n = min(len(ca), len(cs))
    unaligned = float(np.mean(_K * np.sqrt(((ca[:n] - cs[:n]) ** 2).sum(1))))
    assert s < 0.5 * o, (s, o)          # a different voice is much further away ...
    assert s < 0.6 * unaligned, (s, unaligned)  # ... and DTW absorbs the timing that frame-by-frame cannot


def _reference_mcd(x, y, sr=16000):
    """The literature's recipe written out independently: pyworld + pysptk called directly and a
    plain O(nm) DTW (not librosa's) on the 24 coefficients after c0."""
    import pysptk
    import pyworld

    def mcep(w):
        w = w.astype(np.float64)
        f0, t = pyworld.harvest(w, sr, frame_period=5.0)
        return pysptk.sp2mc(pyworld.cheaptrick(w, f0, t, sr), order=24, alpha=0.42)[:, 1:]

    a, b = mcep(x), mcep(y)
    dist = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    n, m = dist.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            acc[i, j] = dist[i - 1, j - 1] + min(acc[i - 1, j], acc[i, j - 1], acc[i - 1, j - 1])
    i, j, steps = n, m, []
    while i > 0 and j > 0:
        steps.append(dist[i - 1, j - 1])
        k = int(np.argmin([acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1]]))
        i, j = (i - 1, j - 1) if k == 0 else (i - 1, j) if k == 1 else (i, j - 1)
    return 10 / np.log(10) * np.sqrt(2) * float(np.mean(steps))


def test_mcd_is_the_literature_mcd(tiny_corpus):
    pytest.importorskip("pyworld")
    pytest.importorskip("pysptk")
    from vqspeech.vc_eval.spectral import mcep_alpha, mel_cepstral_distortion, world_mel_cepstrum

    dd = read_data_dir(tiny_corpus / "data" / "train")
    awb, slt = _wav(dd, "awb_h002")[:24000], _wav(dd, "slt_h002")[:24000]
    ours = mel_cepstral_distortion(world_mel_cepstrum(awb), world_mel_cepstrum(slt))
    ref = _reference_mcd(awb, slt)
    assert ours == pytest.approx(ref, abs=0.05), (ours, ref)
    assert 8.0 < ours < 13.0  # two different voices: the 10 dB range papers report, not the old 4-5 dB
    assert mcep_alpha(16000) == 0.42 and 0.3 < mcep_alpha(12000) < 0.42
    assert world_mel_cepstrum(awb).shape[1] == 24


def test_source_f0_correlation_is_pearson_of_log_f0_on_frames_voiced_in_both():
    from vqspeech.vc_eval.spectral import source_f0_correlation

    nan = np.nan
    conv = np.array([100.0, 200.0, nan, 400.0, 150.0, 300.0])
    src = np.array([110.0, 190.0, 250.0, nan, 160.0, 330.0, 500.0])   # one frame longer: the tail is left out
    both = [0, 1, 4, 5]
    expected = np.corrcoef(np.log2(conv[both]), np.log2(src[both]))[0, 1]
    assert source_f0_correlation(conv, src) == pytest.approx(expected)
    assert source_f0_correlation(conv, conv) == pytest.approx(1.0)
    # the same contour an octave higher (another register) keeps the intonation exactly
    assert source_f0_correlation(2 * conv, conv) == pytest.approx(1.0)
    assert source_f0_correlation(conv[:2], src[:2]) is None               # under 3 frames
    assert source_f0_correlation(np.full(5, 120.0), src[:5]) is None     # a flat track
    assert source_f0_correlation(None, src) is None


def test_speaker_identification_of_real_utterances(tiny_corpus):
    train = read_data_dir(tiny_corpus / "data" / "train")
    test = read_data_dir(tiny_corpus / "data" / "test")
    cents = SpeakerCentroids({s: [embed(_wav(train, u)) for u in utts] for s, utts in train.spk2utt.items()})
    for utt, spk in test.utt2spk.items():
        e = embed(_wav(test, utt))
        assert cents.identify(e) == spk
        assert cents.similarity(e, spk) > 0.7


def test_word_error_rate():
    assert edit_distance("a b c d".split(), "a x c".split()) == 2
    assert edit_distance([], ["a"]) == 1 and edit_distance(["a"], []) == 1
    from vqspeech.vc_eval.intelligibility import error_counts

    assert error_counts("a b c d".split(), "a x c".split()) == (1, 1, 0)
    assert error_counts("a b".split(), "a b c c".split()) == (0, 0, 2)
    assert error_counts("the cat sat".split(), "a cat".split()) == (1, 1, 0)
    assert error_counts([], []) == (0, 0, 0)


def test_error_counts_agree_with_jiwer():
    jiwer = pytest.importorskip("jiwer")
    import random

    from vqspeech.vc_eval.intelligibility import error_counts

    rng = random.Random(0)
    for _ in range(300):
        ref = [rng.choice("abcd") for _ in range(rng.randint(1, 9))]
        hyp = [rng.choice("abcde") for _ in range(rng.randint(0, 9))]
        s, d, i = error_counts(ref, hyp)
        out = jiwer.process_words(" ".join(ref), " ".join(hyp) or "")
        assert s + d + i == out.substitutions + out.deletions + out.insertions == edit_distance(ref, hyp)
        assert i - d == len(hyp) - len(ref)
        # ties: both are minimal; ours prefers a substitution to a deletion + insertion (sclite)
        assert s >= out.substitutions


def test_wer_interval_against_the_ratio_estimators_standard_error():
    from vqspeech.vc_eval.intelligibility import wer_interval

    # every utterance errs at the same rate: every resample has it, so the interval is that point
    assert wer_interval([1, 2, 3], [4, 8, 12]) == (0.25, 0.25)
    rng = np.random.default_rng(7)
    words = rng.integers(3, 13, 400)
    errors = rng.binomial(words, rng.uniform(0.1, 0.7, 400))  # rates differ between utterances
    low, high = wer_interval(errors, words, resamples=4000)
    wer = errors.sum() / words.sum()
    # the pooled WER is a ratio estimator; its first-order (delta-method) standard error
    se = np.sqrt(((errors - wer * words) ** 2).sum()) / words.sum()
    assert low < wer < high
    assert (high - low) / (2 * 1.96) == pytest.approx(se, rel=0.1)
    assert abs((low + high) / 2 - wer) < 0.2 * se  # about symmetric at this size
    # four copies of the same utterances: half the width
    low4, high4 = wer_interval(np.tile(errors, 4), np.tile(words, 4), resamples=4000)
    assert (high4 - low4) / (high - low) == pytest.approx(0.5, rel=0.1)
    with pytest.raises(ValueError):
        wer_interval([], [])


def test_recognition_of_clear_speech(tiny_corpus):
    dd = read_data_dir(tiny_corpus / "data" / "train")
    errs = refs = 0
    for utt in dd.spk2utt["rms"]:
        e, n, _ = word_errors(dd.text[utt], _wav(dd, utt))
        errs, refs = errs + e, refs + n
    assert errs / refs < 0.5  # the synthesizer's clearest voice is mostly recognised


def test_recognition_does_not_depend_on_what_was_recognised_before(tiny_corpus):
    from vqspeech.vc_eval import intelligibility

    dd = read_data_dir(tiny_corpus / "data" / "train")
    wavs = [_wav(dd, utt) for utt in dd.spk2utt["slt"]]
    alone = []
    for wav in wavs:  # each by a new recogniser
        intelligibility._decoder = None
        alone.append(intelligibility.recognise(wav))
    assert sum(map(len, alone)) >= 3 * len(wavs)  # real hypotheses, not empty ones
    # one recogniser, each utterance after loud noise, which raised the noise floor that the front
    # end carried into the next utterance (2 of these 4 were recognised differently then)
    noise = 0.3 * np.random.default_rng(0).standard_normal(16000).astype(np.float32)
    after_noise = []
    for wav in wavs:
        intelligibility.recognise(noise)
        after_noise.append(intelligibility.recognise(wav))
    assert after_noise == alone


def test_vc_eval_report(trained_tiny, tiny_corpus, tmp_path, monkeypatch, capsys):
    from vqspeech.bin.vc_eval import main
    from vqspeech.vc_eval import spectral

    analysed = []  # every utterance the report analyses (WORLD, filter bank, pYIN): its length

    def counted(wav, *args, **kwargs):
        analysed.append(len(wav))
        return spectral_features(wav, *args, **kwargs)

    monkeypatch.setattr(spectral, "spectral_features", counted)

    def run(out, *extra):
        assert main(["--model", str(trained_tiny / "checkpoint.pt"), "--data-dir", str(tiny_corpus / "data" / "test"),
                     "--centroid-data", str(tiny_corpus / "data" / "train"), "--output-dir", str(out),
                     "--max-sentences", "1", "--max-pairs", "6", "--no-progress", *extra]) == 0
        rep = json.loads((out / "report.json").read_text())
        for row in rep["rows"]:
            row.pop("real_time_factor", None)  # a timing
        return rep

    out = tmp_path / "vc"
    rep = run(out)  # the spectral measures on two threads beside the conversions (the default)
    assert "intonation" not in rep   # a model without source pitch has none to record ...
    capsys.readouterr()  # ... and refuses a setting, in one line, before converting anything
    assert main(["--model", str(trained_tiny / "checkpoint.pt"), "--data-dir", str(tiny_corpus / "data" / "test"),
                 "--centroid-data", str(tiny_corpus / "data" / "train"), "--output-dir", str(tmp_path / "vc_i"),
                 "--intonation", "0.5"]) == 2
    assert capsys.readouterr().err.strip() == ("vqspeech vc-eval: error: intonation 0.5: this model does not read "
                                               "the source's pitch (train one with decoder_conf.source_pitch: true, "
                                               "e.g. egs/mini/conf/default_pitch.yaml)")
    assert not (tmp_path / "vc_i").exists()
    in_turn = run(tmp_path / "vc_in_turn", "--analysis-threads", "0")
    assert in_turn == rep and list(in_turn["rows"][0]) == list(rep["rows"][0])  # values and key order
    del analysed[len(analysed) // 2:]  # the first run's
    assert set(rep["overall"]) >= {"real"} and "converted" in rep["overall"] or "resynthesis" in rep["overall"]
    real = rep["overall"]["real"]
    assert real["speaker_id_correct"] == 1.0 and real["mcd_db"] == 0.0
    for kind, summary in rep["overall"].items():
        low, high = summary["wer_ci95"]
        rates = [row["wer"] for row in rep["rows"] if row["kind"] == kind]
        assert min(rates) <= low <= summary["wer"] <= high <= max(rates)  # a resample pools some of these
        assert f"{100 * summary['wer']:.1f}% ({100 * low:.1f}-{100 * high:.1f})" in (out / "report.md").read_text()
    if "source" in rep["overall"]:
        assert rep["overall"]["source"]["mcd_db"] > 0
    html = (out / "report.html").read_text()
    from vqspeech.vc_eval.report import MEASURES

    assert html.count("data:image/png;base64,") == len(MEASURES) == 8  # one heat map per measure
    # every conversion's intonation is compared with its source's, frame for frame
    for r in rep["rows"]:
        if r["kind"] in ("converted", "resynthesis"):
            assert "source_f0_corr" in r and (r["source_f0_corr"] is None or -1 <= r["source_f0_corr"] <= 1)
        else:
            assert r.get("source_f0_corr") is None
    assert "log-F0 corr with source" in (out / "report.md").read_text()
    assert len(list((out / "wav").rglob("*.wav"))) == 6
    # each conversion is analysed once, and each real utterance once however many rows compare with it
    spectral = [r for r in rep["rows"] if r["kind"] != "real"]
    reals = {(r["sentence"], r["target"]) for r in spectral} | {(r["sentence"], r["source"]) for r in spectral
                                                                if r["kind"] == "source"}
    conversions = sum(r["kind"] in ("converted", "resynthesis") for r in rep["rows"])
    assert conversions == 6 and len(spectral) > len(reals)
    assert len(analysed) == conversions + len(reals)
