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
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import ROW_KINDS
from .intelligibility import wer_interval

# Per-utterance measures compared beside the WER, in the order shown.
COMPARED = ("mcd_db", "f0_corr", "source_f0_corr", "speaker_similarity", "speaker_id_correct")


def _key(row: dict) -> tuple[str, str, str, str]:
    return row["kind"], row["sentence"], row["source"], row["target"]


def compare_reports(a: dict, b: dict, level: float = 0.95) -> dict:
    """Two ``vc-eval`` report dicts (``report.json``) -> for each kind both have ("converted",
    "resynthesis", ...): the pooled WER of each, their difference a - b with its ``level``
    bootstrap interval, how many utterances changed their word errors, and the same difference
    for the means of :data:`COMPARED`. A ValueError names the first utterance one report has
    and the other lacks, or whose reference words differ: the reports must score the same test."""
    rows_a = {_key(r): r for r in a["rows"]}
    rows_b = {_key(r): r for r in b["rows"]}
    present_a, present_b = {r["kind"] for r in a["rows"]}, {r["kind"] for r in b["rows"]}
    kinds = [k for k in ROW_KINDS if k in present_a and k in present_b]
    if not kinds:
        raise ValueError("the reports have no kind of conversion in common")
    out = {"a": a.get("model"), "b": b.get("model"), "level": level, "kinds": {}}
    for kind in kinds:
        keys_a = {k for k in rows_a if k[0] == kind}
        keys_b = {k for k in rows_b if k[0] == kind}
        if keys_a != keys_b:
            only, which = (sorted(keys_a - keys_b), "first") if keys_a - keys_b else (sorted(keys_b - keys_a), "second")
            raise ValueError(f"not the same test: only the {which} report has {kind} sentence {only[0][1]} "
                             f"{only[0][2]} -> {only[0][3]} (compare vc-eval runs on one data directory with the "
                             f"same --max-sentences, --max-pairs and --seed)")
        keys = sorted(keys_a)
        words = np.array([rows_a[k]["ref_words"] for k in keys])
        if not np.array_equal(words, [rows_b[k]["ref_words"] for k in keys]):
            k = next(k for k in keys if rows_a[k]["ref_words"] != rows_b[k]["ref_words"])
            raise ValueError(f"not the same test: {kind} sentence {k[1]} {k[2]} -> {k[3]} has "
                             f"{rows_a[k]['ref_words']} reference words in one report, {rows_b[k]['ref_words']} in the other")
        err_a = np.array([rows_a[k]["word_errors"] for k in keys])
        err_b = np.array([rows_b[k]["word_errors"] for k in keys])
        total = max(int(words.sum()), 1)
        entry = {"utterances": len(keys), "words": int(words.sum()),
                 "wer_a": float(err_a.sum() / total), "wer_b": float(err_b.sum() / total),
                 "wer_difference": float((err_a - err_b).sum() / total),
                 "wer_difference_ci": list(wer_interval(err_a - err_b, words, level=level)),
                 "utterances_differing": int((err_a != err_b).sum()), "measures": {}}
        for m in COMPARED:
            both = [(rows_a[k][m], rows_b[k][m]) for k in keys
                    if rows_a[k].get(m) is not None and rows_b[k].get(m) is not None]
            if not both:
                continue
            va, vb = np.array(both, dtype=np.float64).T
            entry["measures"][m] = {"a": float(va.mean()), "b": float(vb.mean()),
                                    "difference": float((va - vb).mean()),
                                    "ci": list(wer_interval(va - vb, np.ones_like(va), level=level)),
                                    "utterances": len(both)}
        out["kinds"][kind] = entry
    return out


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
    """The comparison as a markdown table, one row per kind and measure, with a closing line per
    kind saying whether the WER difference is clear of zero."""
    pct = int(round(100 * cmp["level"]))
    lines = [f"A: {name_a}", f"B: {name_b}", "",
             f"| kind | measure | A | B | A - B ({pct}% interval) | utterances |", "|---|---|---:|---:|---:|---:|"]
    verdicts = []
    fmt = {"mcd_db": "{:.2f}", "f0_corr": "{:.2f}", "source_f0_corr": "{:.2f}", "speaker_similarity": "{:.3f}", "speaker_id_correct": "{:.0%}"}
    for kind, e in cmp["kinds"].items():
        lo, hi = e["wer_difference_ci"]
        lines.append(f"| {kind} | WER | {100 * e['wer_a']:.1f}% | {100 * e['wer_b']:.1f}% | "
                     f"{100 * e['wer_difference']:+.1f} ({100 * lo:+.1f} to {100 * hi:+.1f}) points | "
                     f"{e['utterances']} ({e['utterances_differing']} differ) |")
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
            verdicts.append(f"{kind}: the WER difference is within what the draw of utterances gives ({pct}% "
                            f"interval holds 0).")
    return "\n".join(lines + [""] + verdicts) + "\n"
