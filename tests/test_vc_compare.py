"""vc-compare: paired differences of two vc-eval reports (or of two systems' runs), against
hand-computed values, the delta-method standard error of a paired ratio and that of a difference of
means over runs."""

import json

import numpy as np
import pytest

from vqspeech.bin.vc_compare import main as compare_main
from vqspeech.vc_eval.compare import compare_reports, comparison_markdown, read_report
from vqspeech.vc_eval.intelligibility import wer_interval


def _report(errors, words, kind="converted", mcd=None, model="m.pt"):
    rows = []
    for i, (e, n) in enumerate(zip(errors, words)):
        row = {"kind": kind, "sentence": f"h{i // 4:03d}", "source": "abcd"[i % 4], "target": "b",
               "word_errors": int(e), "ref_words": int(n)}
        if mcd is not None:
            row["mcd_db"] = float(mcd[i])
        rows.append(row)
    return {"model": model, "rows": rows}


def test_paired_difference_by_hand():
    words = [8, 10, 6, 9, 7, 12, 5, 8]
    ea, eb = [2, 5, 0, 3, 1, 6, 2, 3], [3, 5, 1, 3, 2, 6, 2, 4]
    mcd_a, mcd_b = [5.0 + 0.1 * i for i in range(8)], [5.5 + 0.1 * i for i in range(8)]
    cmp = compare_reports(_report(ea, words, mcd=mcd_a), _report(eb, words, mcd=mcd_b))
    c = cmp["kinds"]["converted"]
    assert (c["utterances"], c["words"], c["utterances_differing"]) == (8, 65, 4)
    assert c["wer_a"] == pytest.approx(22 / 65) and c["wer_b"] == pytest.approx(26 / 65)
    assert c["wer_difference"] == pytest.approx(-4 / 65)
    d = np.array(ea) - np.array(eb)
    assert tuple(c["wer_difference_ci"]) == wer_interval(d, words)
    # B never errs less than A here, so every resample's difference is <= 0
    assert c["wer_difference_ci"][1] <= 0 < -c["wer_difference_ci"][0]
    m = c["measures"]["mcd_db"]
    assert m["difference"] == pytest.approx(-0.5) and m["ci"] == pytest.approx([-0.5, -0.5]) and m["utterances"] == 8
    text = comparison_markdown(cmp, "a", "b")
    assert "| converted | WER | 33.8% | 40.0% | -6.2 (" in text and "8 (4 differ)" in text
    assert "converted: A has the lower WER, clear of zero at 95%." in text


def test_identical_reports_differ_by_nothing():
    rep = _report([1, 2, 0, 4], [6, 7, 5, 9])
    c = compare_reports(rep, json.loads(json.dumps(rep)))["kinds"]["converted"]
    assert c["wer_difference"] == 0 and c["wer_difference_ci"] == [0.0, 0.0] and c["utterances_differing"] == 0
    assert "converted: the same word errors on every utterance." in comparison_markdown(
        compare_reports(rep, rep), "a", "b")


def test_paired_interval_against_the_delta_method_and_narrower_than_either_report():
    """Two systems that share which utterances are hard: the paired interval's half-width /
    1.96 is the delta-method standard error of the ratio sum(e_a - e_b) / sum(n) to 10%, and
    far below the half-width of either system's own WER interval."""
    rng = np.random.default_rng(1)
    n = rng.integers(5, 15, size=400)
    hard = rng.uniform(0.1, 0.7, size=400)          # per-utterance difficulty, shared
    ea = rng.binomial(n, hard)
    eb = np.clip(ea + rng.integers(-1, 2, size=400), 0, n)
    c = compare_reports(_report(ea, n), _report(eb, n))["kinds"]["converted"]
    d = ea - eb
    r = d.sum() / n.sum()
    se = np.sqrt(len(d) / (len(d) - 1) * ((d - r * n) ** 2).sum()) / n.sum()
    lo, hi = c["wer_difference_ci"]
    assert abs((hi - lo) / (2 * 1.96) - se) < 0.1 * se
    own = wer_interval(ea, n)
    assert (hi - lo) < 0.5 * (own[1] - own[0])


def test_reports_of_different_tests_are_refused():
    a = _report([1, 2, 3], [5, 6, 7])
    with pytest.raises(ValueError, match="only the first report has converted sentence h000 c -> b"):
        compare_reports(a, _report([1, 2], [5, 6]))
    with pytest.raises(ValueError, match="has 7 reference words in one report, 8 in the other"):
        compare_reports(a, _report([1, 2, 3], [5, 6, 8]))
    with pytest.raises(ValueError, match="no kind of conversion in common"):
        compare_reports(a, _report([1, 2, 3], [5, 6, 7], kind="real"))


def test_vc_compare_command(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "report.json").write_text(json.dumps(_report([0, 1, 2, 1], [5, 5, 6, 4], model="a.pt")))
    (tmp_path / "b.json").write_text(json.dumps(_report([2, 3, 2, 2], [5, 5, 6, 4], model="b.pt")))
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b.json"), "--json", str(tmp_path / "cmp.json")]) == 0
    out = capsys.readouterr().out
    assert "| converted | WER | 20.0% | 45.0% | -25.0 (" in out and "(a.pt)" in out and "(b.pt)" in out
    saved = json.loads((tmp_path / "cmp.json").read_text())
    assert saved["kinds"]["converted"]["wer_difference"] == pytest.approx(-0.25)
    # bad input: one line naming the file, exit 2; nothing written
    (tmp_path / "bad.json").write_text('{"overall": {}}')
    for bad, message in [(tmp_path / "none", "none: not found"),
                         (tmp_path / "bad.json", "bad.json: not a vc-eval report")]:
        assert compare_main([str(tmp_path / "a"), str(bad), "--json", str(tmp_path / "x.json")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and not (tmp_path / "x.json").exists()
    assert compare_main([str(tmp_path / "a"), str(tmp_path / "b.json"), "--level", "1"]) == 2
    assert "--level: must be below 1" in capsys.readouterr().err


def test_read_report_refuses_what_is_not_json(tmp_path):
    (tmp_path / "r.json").write_text("{")
    with pytest.raises(ValueError, match="r.json: not JSON"):
        read_report(tmp_path / "r.json")


def test_several_runs_a_side_compare_their_means():
    words = [8, 10, 6, 9, 7, 12, 5, 8]
    a1, a2 = [2, 5, 0, 3, 1, 6, 2, 3], [4, 5, 2, 3, 1, 8, 2, 3]
    b = [3, 5, 1, 3, 2, 6, 2, 4]
    cmp = compare_reports([_report(a1, words), _report(a2, words)], _report(b, words))
    c = cmp["kinds"]["converted"]
    assert (cmp["runs_a"], cmp["runs_b"]) == (2, 1)
    assert c["wer_runs_a"] == pytest.approx([22 / 65, 28 / 65]) and c["wer_runs_b"] == pytest.approx([26 / 65])
    assert c["wer_a"] == pytest.approx(25 / 65) and c["wer_difference"] == pytest.approx(-1 / 65)
    # A's mean errors over its runs [3, 5, 1, 3, 1, 7, 2, 3] differ from B's on utterances 4, 5 and 7
    assert c["utterances_differing"] == 3
    # a run given twice is the same system: the same figures and interval as the run alone
    twice = compare_reports([_report(a1, words)] * 2, [_report(b, words)] * 3)["kinds"]["converted"]
    once = compare_reports(_report(a1, words), _report(b, words))["kinds"]["converted"]
    assert twice["wer_difference_ci"] == once["wer_difference_ci"]
    assert twice["wer_difference"] == pytest.approx(once["wer_difference"])
    text = comparison_markdown(cmp, "a1, a2", "b")
    assert "| converted | WER of each run | 33.8%, 43.1% | 40.0% | | |" in text
    assert "the draw of utterances and of training runs" in text or "clear of zero" in text
    with pytest.raises(ValueError, match="only the A2 report has converted sentence h001 c -> b"):
        compare_reports([_report(a1[:6], words[:6]), _report(a2[:7], words[:7])], [_report(b[:6], words[:6])] * 2)


def test_the_runs_interval_holds_the_spread_between_runs():
    """One run of A equals B, the other errs one word more on every utterance: each single-run
    interval is narrow, and the two-run interval reaches from the first run's difference (0) to
    about the second's."""
    rng = np.random.default_rng(2)
    n = rng.integers(5, 15, size=200)
    b = rng.binomial(n, 0.4)
    a2 = np.minimum(b + 1, n)
    d2 = (a2 - b).sum() / n.sum()
    lo, hi = compare_reports([_report(b, n), _report(a2, n)], _report(b, n))["kinds"]["converted"]["wer_difference_ci"]
    assert lo == 0.0 and 0.9 * d2 < hi <= 1.2 * d2
    # the utterances alone would put it narrowly around the mean difference d2 / 2
    mean_only = wer_interval((a2 - b) / 2, n)
    assert mean_only[0] > 0.4 * d2 and mean_only[1] < 0.6 * d2


def test_the_runs_interval_against_the_standard_error_of_a_mean_over_runs():
    """Many runs a side whose training draw shifts each run's error rate: the interval's
    half-width / 1.96 is, to 15%, the standard error of a difference of two means over runs
    (each side's between-run variance / its runs, times (k - 1) / k as a bootstrap sees it)
    together with the paired utterance noise of the mean difference (the delta method)."""
    rng = np.random.default_rng(5)
    n = rng.integers(5, 15, size=300)
    hard = rng.uniform(0.1, 0.6, size=300)
    k = 25

    def runs(offset_sd):
        return np.array([rng.binomial(n, np.clip(hard + rng.normal(0, offset_sd), 0, 1)) for _ in range(k)])

    ea, eb = runs(0.03), runs(0.02)
    c = compare_reports([_report(e, n) for e in ea], [_report(e, n) for e in eb])["kinds"]["converted"]
    total = n.sum()
    between = sum(np.var(e.sum(1) / total, ddof=1) / k * (k - 1) / k for e in (ea, eb))
    d = ea.mean(0) - eb.mean(0)
    r = d.sum() / total
    utter = len(d) / (len(d) - 1) * ((d - r * n) ** 2).sum() / total ** 2
    lo, hi = c["wer_difference_ci"]
    expected = np.sqrt(between + utter)
    assert abs((hi - lo) / (2 * 1.96) - expected) < 0.15 * expected, ((hi - lo) / 3.92, expected)
    assert c["wer_difference"] == pytest.approx(r)


def test_vc_compare_command_with_runs(tmp_path, capsys):
    words = [5, 5, 6, 4]
    for name, errors in (("a1", [0, 1, 2, 1]), ("a2", [1, 1, 2, 2]), ("b", [2, 3, 2, 2])):
        (tmp_path / f"{name}.json").write_text(json.dumps(_report(errors, words, model=f"{name}.pt")))
    a = f"{tmp_path / 'a1.json'},{tmp_path / 'a2.json'}"
    assert compare_main([a, str(tmp_path / "b.json"), "--json", str(tmp_path / "cmp.json")]) == 0
    out = capsys.readouterr().out
    assert "| converted | WER | 25.0% | 45.0% | -20.0 (" in out and "(a1.pt)" in out and "(a2.pt)" in out
    assert "| converted | WER of each run | 20.0%, 30.0% | 45.0% | | |" in out
    saved = json.loads((tmp_path / "cmp.json").read_text())
    assert saved["a"] == ["a1.pt", "a2.pt"] and saved["runs_a"] == 2
    assert compare_main([a + ",", str(tmp_path / "b.json")]) == 2
    assert "A: an empty report path in" in capsys.readouterr().err
    assert compare_main([a, f"{tmp_path / 'b.json'},{tmp_path / 'missing.json'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.json: not found" in err
    # a run of another test is named by its file
    (tmp_path / "short.json").write_text(json.dumps(_report([1, 1, 2], words[:3], model="short.pt")))
    assert compare_main([f"{a},{tmp_path / 'short.json'}", str(tmp_path / "b.json")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"only the {tmp_path / 'a1.json'} report has converted sentence h000 d -> b" in err


def test_paired_runs_cancel_what_a_pair_shares():
    """Each pair of runs shares a training draw that shifts both its runs' error rates alike, and A
    errs about 2 points more within each pair. Paired, the interval's half-width / 1.96 is, to 10%,
    the standard error of the mean of the pairs' differences (their variance / k, times (k - 1) / k
    as a bootstrap sees it) with the paired utterance noise of the drawn pairs' mean (that of the
    mean over all pairs, plus each utterance's spread between pairs / k: a two-level bootstrap
    counts a run's own utterance noise in both levels); unpaired, the shared shifts widen it
    several times. The point figures do not depend on the pairing."""
    rng = np.random.default_rng(7)
    n = rng.integers(5, 15, size=300)
    hard = rng.uniform(0.1, 0.6, size=300)
    k = 25
    shifts = rng.normal(0, 0.05, size=k)
    ea = np.array([rng.binomial(n, np.clip(hard + s + 0.02, 0, 1)) for s in shifts])
    eb = np.array([rng.binomial(n, np.clip(hard + s, 0, 1)) for s in shifts])
    a, b = [_report(e, n) for e in ea], [_report(e, n) for e in eb]
    paired = compare_reports(a, b, paired_runs=True)["kinds"]["converted"]
    unpaired = compare_reports(a, b)["kinds"]["converted"]
    total = n.sum()
    pair_rates = (ea - eb).sum(1) / total
    assert paired["wer_difference_runs"] == pytest.approx(list(pair_rates))
    assert paired["wer_difference"] == pytest.approx(unpaired["wer_difference"]) == pytest.approx(pair_rates.mean())
    d = ea.mean(0) - eb.mean(0)
    r = d.sum() / total
    utter = len(d) / (len(d) - 1) * ((d - r * n) ** 2).sum() / total ** 2
    drawn = ((ea - eb).var(0) / k).sum() / total ** 2
    expected = np.sqrt(np.var(pair_rates, ddof=1) / k * (k - 1) / k + utter + drawn)
    lo, hi = paired["wer_difference_ci"]
    assert abs((hi - lo) / (2 * 1.96) - expected) < 0.1 * expected, ((hi - lo) / 3.92, expected)
    ulo, uhi = unpaired["wer_difference_ci"]
    assert (uhi - ulo) > 3 * (hi - lo)
    # one run a side: pairing changes nothing
    one = [compare_reports(a[0], b[0], paired_runs=p)["kinds"]["converted"]["wer_difference_ci"] for p in (True, False)]
    assert one[0] == one[1]
    with pytest.raises(ValueError, match="paired runs need as many runs a side .* got 2 and 3"):
        compare_reports(a[:2], b[:3], paired_runs=True)


def test_vc_compare_command_with_paired_runs(tmp_path, capsys):
    words = [5, 5, 6, 4]
    for name, errors in (("a1", [0, 1, 2, 1]), ("a2", [1, 1, 2, 2]), ("b1", [2, 3, 2, 2]), ("b2", [2, 2, 3, 2])):
        (tmp_path / f"{name}.json").write_text(json.dumps(_report(errors, words, model=f"{name}.pt")))
    a, b = (",".join(str(tmp_path / f"{s}{i}.json") for i in (1, 2)) for s in "ab")
    assert compare_main([a, b, "--paired-runs"]) == 0
    out = capsys.readouterr().out
    # pairs: (4 - 9) / 20 and (6 - 9) / 20
    assert "| converted | WER of each run | 20.0%, 30.0% | 45.0%, 45.0% | -25.0, -15.0 | |" in out
    assert "2 pairs of runs (run i of A with run i of B), drawn together" in out
    assert compare_main([a, str(tmp_path / "b1.json"), "--paired-runs"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--paired-runs: needs as many runs a side, got 2 (A) and 1 (B)" in err
