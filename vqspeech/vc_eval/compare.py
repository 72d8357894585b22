"""Two voice-conversion reports of the same test set, compared utterance by utterance.

Two systems evaluated on the same conversions (same sentences, speaker pairs and transcripts)
differ by less than either report's own interval suggests, because most utterances are hard or
easy for both: the paired difference cancels that. Each utterance is resampled with both of its
scores (a percentile bootstrap, seeded like :func:`~vqspeech.vc_eval.intelligibility.wer_interval`),
so the interval says whether the difference could be the luck of the draw of utterances.

The difference of two pooled WERs over the same reference words is itself a pooled rate: that
of the per-utterance error differences, sum(e_a - e_b) / sum(n). So its interval is
``wer_interval`` of those differences; a per-utterance measure (MCD, speaker similarity) is the
same with one "word" per utterance.

A system may also be given as several runs (training seeds) scored on the same test: its figure is
then the mean over its runs, and the interval resamples the runs of each side beside the
utterances (:func:`paired_interval`), so it also says whether the difference could be the luck of
the training draw. Two seeds of one config differ by 2.5-3.8 WER points on the mini corpus's 10
sentences (README, decoder study), as much as most differences between configs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import ROW_KINDS

# Per-utterance measures compared beside the WER, in the order shown.
COMPARED = ("mcd_db", "f0_corr", "source_f0_corr", "speaker_similarity", "speaker_id_correct")


def _key(row: dict) -> tuple[str, str, str, str]:
    return row["kind"], row["sentence"], row["source"], row["target"]


def paired_interval(values_a, values_b, weights, level: float = 0.95, resamples: int = 2000,
                    seed: int = 0, paired_runs: bool = False) -> tuple[float, float]:
    """(kA, n) and (kB, n) per-utterance values (word errors, or a measure) of kA and kB runs of two
    systems on the same n utterances, (n,) weights (reference words; ones for a per-utterance mean)
    -> the ``level`` percentile interval of [mean over A's runs of sum(a) - mean over B's runs of
    sum(b)] / sum(weights). Each resample draws the n utterances with replacement (the same ones for
    every run: the comparison stays paired) and each side's runs with replacement. With one run a
    side it is :func:`~vqspeech.vc_eval.intelligibility.wer_interval` of the differences, the same
    draws. With few runs it understates the spread between them (a bootstrap of k runs sees
    (k - 1) / k of their variance): a floor, which more seeds raise to the truth. Where runs differ
    mostly by their utterances' own noise (paired runs that share the rest), the two levels count
    that noise twice, and the interval errs wide instead.

    ``paired_runs``: run i of A and run i of B share their training draw (the same seed, or B's run
    i continues A's run i, or both continue one model), so each resample draws k pairs of runs, the
    same indices on both sides: what the pair shares cancels, as the utterances' difficulty does.
    Needs kA == kB."""
    va, vb = (np.atleast_2d(np.asarray(v, dtype=np.float64)) for v in (values_a, values_b))
    w = np.asarray(weights, dtype=np.float64)
    if va.shape[1:] != vb.shape[1:] or va.shape[1:] != w.shape or w.ndim != 1 or len(w) == 0:
        raise ValueError("paired_interval: (runs, n) values of both systems and (n,) weights, n > 0")
    if paired_runs and va.shape[0] != vb.shape[0]:
        raise ValueError(f"paired runs need as many runs a side (run i of A with run i of B), got "
                         f"{va.shape[0]} and {vb.shape[0]}")
    picks = np.random.default_rng(seed).integers(0, len(w), size=(resamples, len(w)))   # wer_interval's draws
    runs = np.random.default_rng(seed + 1)
    shared = runs.integers(0, va.shape[0], size=(resamples, va.shape[0])) if paired_runs else None

    def side(v):  # (k, n) -> (resamples,): the mean over a resample of runs of each run's resampled sum
        sums = v[:, picks].sum(-1).T                                                    # (resamples, k)
        if v.shape[0] == 1:
            return sums[:, 0]
        drawn = shared if shared is not None else runs.integers(0, v.shape[0], size=sums.shape)
        return np.take_along_axis(sums, drawn, 1).mean(1)

    rates = (side(va) - side(vb)) / np.maximum(w[picks].sum(1), 1)
    low, high = np.quantile(rates, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def _same_test(rows: list[dict], kind: str, names: list[str]) -> list:
    """The sorted utterance keys of ``kind`` that every report's rows (``{key: row}``, one dict per
    report) have, or a ValueError naming the first utterance that one report has and another
    lacks, or whose reference words differ."""
    first = {k for k in rows[0] if k[0] == kind}
    for these, name in zip(rows[1:], names[1:]):
        keys = {k for k in these if k[0] == kind}
        if keys != first:
            only, which = ((sorted(first - keys), names[0]) if first - keys else (sorted(keys - first), name))
            raise ValueError(f"not the same test: only the {which} report has {kind} sentence {only[0][1]} "
                             f"{only[0][2]} -> {only[0][3]} (compare vc-eval runs on one data directory with the "
                             f"same --max-sentences, --max-pairs and --seed)")
        k = next((k for k in sorted(first) if these[k]["ref_words"] != rows[0][k]["ref_words"]), None)
        if k is not None:
            raise ValueError(f"not the same test: {kind} sentence {k[1]} {k[2]} -> {k[3]} has "
                             f"{rows[0][k]['ref_words']} reference words in one report, {these[k]['ref_words']} in "
                             f"the other ({name})")
    return sorted(first)


def compare_reports(a: dict | list[dict], b: dict | list[dict], level: float = 0.95,
                    names: tuple[list[str], list[str]] | None = None, paired_runs: bool = False) -> dict:
    """Two ``vc-eval`` report dicts (``report.json``), or two lists of them (each system's runs,
    e.g. training seeds, on the same test) -> for each kind all have ("converted", "resynthesis",
    ...): the pooled WER of each system (the mean over its runs; each run's in ``wer_runs_a`` /
    ``wer_runs_b``), their difference a - b with its ``level`` bootstrap interval
    (:func:`paired_interval`), how many utterances changed their word errors (their mean over the
    runs), and the same difference for the means of :data:`COMPARED`. A ValueError names the first
    utterance one report has and another lacks, or whose reference words differ: the reports must
    score the same test. ``names`` (each side's, e.g. the files) name the reports in that error;
    by default "first" / "second", or A1, A2, ... and B1, ... for several runs. ``paired_runs``:
    A's run i and B's run i share their training draw (:func:`paired_interval`); each pair's
    difference is then also in ``wer_difference_runs``."""
    runs_a, runs_b = (list(x) if isinstance(x, (list, tuple)) else [x] for x in (a, b))
    if not runs_a or not runs_b:
        raise ValueError("each side needs at least one report")
    reports = runs_a + runs_b
    if names is None:
        names = (["first"] if len(runs_a) == 1 else [f"A{i + 1}" for i in range(len(runs_a))],
                 ["second"] if len(runs_b) == 1 else [f"B{i + 1}" for i in range(len(runs_b))])
    names = list(names[0]) + list(names[1])
    kinds = [k for k in ROW_KINDS if all(k in {r["kind"] for r in rep["rows"]} for rep in reports)]
    if not kinds:
        raise ValueError("the reports have no kind of conversion in common")
    model = (lambda runs: runs[0].get("model") if len(runs) == 1 else [r.get("model") for r in runs])
    out = {"a": model(runs_a), "b": model(runs_b), "runs_a": len(runs_a), "runs_b": len(runs_b),
           "paired_runs": paired_runs, "level": level, "kinds": {}}
    rows = [{_key(r): r for r in rep["rows"]} for rep in reports]       # each report's rows by utterance
    rows_a, rows_b = rows[:len(runs_a)], rows[len(runs_a):]
    for kind in kinds:
        keys = _same_test(rows, kind, names)
        words = np.array([rows_a[0][k]["ref_words"] for k in keys])
        err_a, err_b = (np.array([[rows[k]["word_errors"] for k in keys] for rows in side])
                        for side in (rows_a, rows_b))                                 # (runs, n)
        total = max(int(words.sum()), 1)
        entry = {"utterances": len(keys), "words": int(words.sum()),
                 "wer_a": float(err_a.sum(1).mean() / total), "wer_b": float(err_b.sum(1).mean() / total),
                 "wer_runs_a": [float(e.sum() / total) for e in err_a],
                 "wer_runs_b": [float(e.sum() / total) for e in err_b],
                 "wer_difference": float((err_a.sum(1).mean() - err_b.sum(1).mean()) / total),
                 "wer_difference_ci": list(paired_interval(err_a, err_b, words, level=level,
                                                           paired_runs=paired_runs)),
                 "utterances_differing": int((err_a.mean(0) != err_b.mean(0)).sum()), "measures": {}}
        if paired_runs:
            entry["wer_difference_runs"] = [float((ea - eb).sum() / total) for ea, eb in zip(err_a, err_b)]
        for m in COMPARED:
            usable = [k for k in keys if all(rows[k].get(m) is not None for rows in rows_a + rows_b)]
            if not usable:
                continue
            va, vb = (np.array([[rows[k][m] for k in usable] for rows in side], dtype=np.float64)
                      for side in (rows_a, rows_b))
            entry["measures"][m] = {"a": float(va.mean()), "b": float(vb.mean()),
                                    "difference": float(va.mean() - vb.mean()),
                                    "ci": list(paired_interval(va, vb, np.ones(len(usable)), level=level,
                                                               paired_runs=paired_runs)),
                                    "utterances": len(usable)}
        out["kinds"][kind] = entry
    return out


def report_paths(argument: str, name: str = "A") -> list[str]:
    """A command-line side: one report (``report.json`` or its folder), or several runs joined by
    commas (a path that exists as given is one report, commas and all). ValueError naming the
    side when a part is empty."""
    if Path(argument).exists() or "," not in argument:
        return [argument]
    parts = argument.split(",")
    if any(not p.strip() for p in parts):
        raise ValueError(f"{name}: an empty report path in {argument!r} (join runs with single commas)")
    return parts


def read_report(path: str | Path) -> dict:
    """A ``vc-eval`` report: ``report.json`` or the folder holding it. ValueError naming the path
    when it is missing or is not such a report."""
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    if not p.is_file():
        raise ValueError(f"{p}: not found")
    try:
        rep = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{p}: not JSON ({exc})") from None
    if not isinstance(rep, dict) or not isinstance(rep.get("rows"), list) or not all(
            isinstance(r, dict) and {"kind", "sentence", "source", "target", "word_errors", "ref_words"} <= r.keys()
            for r in rep["rows"]):
        raise ValueError(f"{p}: not a vc-eval report (no per-utterance rows with word errors)")
    return rep


def comparison_markdown(cmp: dict, name_a: str, name_b: str) -> str:
    """The comparison as a markdown table, one row per kind and measure (and, where a side has
    several runs, a row with each run's WER and, for paired runs, each pair's difference), with a
    closing line per kind saying whether the WER difference is clear of zero."""
    pct = int(round(100 * cmp["level"]))
    several = cmp.get("runs_a", 1) > 1 or cmp.get("runs_b", 1) > 1
    draw = "the draw of utterances and of training runs" if several else "the draw of utterances"
    lines = [f"A: {name_a}", f"B: {name_b}", "",
             f"| kind | measure | A | B | A - B ({pct}% interval) | utterances |", "|---|---|---:|---:|---:|---:|"]
    verdicts = []
    fmt = {"mcd_db": "{:.2f}", "f0_corr": "{:.2f}", "source_f0_corr": "{:.2f}", "speaker_similarity": "{:.3f}", "speaker_id_correct": "{:.0%}"}
    for kind, e in cmp["kinds"].items():
        lo, hi = e["wer_difference_ci"]
        lines.append(f"| {kind} | WER | {100 * e['wer_a']:.1f}% | {100 * e['wer_b']:.1f}% | "
                     f"{100 * e['wer_difference']:+.1f} ({100 * lo:+.1f} to {100 * hi:+.1f}) points | "
                     f"{e['utterances']} ({e['utterances_differing']} differ) |")
        if several:
            each = [", ".join(f"{100 * w:.1f}%" for w in e[f"wer_runs_{s}"]) for s in "ab"]
            pairs = ", ".join(f"{100 * d:+.1f}" for d in e.get("wer_difference_runs", []))
            cell = f" {pairs} " if pairs else " "
            lines.append(f"| {kind} | WER of each run | {each[0]} | {each[1]} |{cell}| |")
        for m, s in e["measures"].items():
            f = fmt[m]
            d = "{:+.0%}" if m == "speaker_id_correct" else "{:+.3f}"
            lines.append(f"| {kind} | {m} | {f.format(s['a'])} | {f.format(s['b'])} | {d.format(s['difference'])} "
                         f"({d.format(s['ci'][0])} to {d.format(s['ci'][1])}) | {s['utterances']} |")
        if e["utterances_differing"] == 0:
            verdicts.append(f"{kind}: the same word errors on every utterance.")
        elif lo > 0 or hi < 0:
            better = "B" if lo > 0 else "A"
            verdicts.append(f"{kind}: {better} has the lower WER, clear of zero at {pct}%.")
        else:
            verdicts.append(f"{kind}: the WER difference is within what {draw} gives ({pct}% interval holds 0).")
    if several:
        drawn = (f"{cmp['runs_a']} pairs of runs (run i of A with run i of B), drawn together"
                 if cmp.get("paired_runs") else f"{cmp['runs_a']} and {cmp['runs_b']} runs")
        verdicts.append(f"({drawn}: a bootstrap of k runs sees (k - 1) / k of the "
                        "variance between them, so the interval is a floor; more runs make it truer.)")
    return "\n".join(lines + [""] + verdicts) + "\n"
