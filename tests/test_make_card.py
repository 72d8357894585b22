"""egs/mini/local/make_card.py: the shipped card's voice-conversion rows."""

import importlib.util
import json
from pathlib import Path

from vqspeech.vc_eval.intelligibility import wer_interval

ROOT = Path(__file__).resolve().parents[1]


def _make_card():
    spec = importlib.util.spec_from_file_location("make_card", ROOT / "egs/mini/local/make_card.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_card_rows_gain_the_wer_interval_of_an_older_report(tmp_path):
    """A report from before vc-eval gave the interval gets it from its own rows; a newer one keeps its own."""
    errors, words = [0, 3, 1, 5, 2, 0], [8, 9, 7, 10, 8, 9]
    rows = [{"kind": "converted", "word_errors": e, "ref_words": n} for e, n in zip(errors, words)]
    rows += [{"kind": "real", "word_errors": 1, "ref_words": 8}, {"kind": "real", "word_errors": 1, "ref_words": 8}]
    overall = {"converted": {"wer": sum(errors) / sum(words)}, "real": {"wer": 0.125, "wer_ci95": [0.1, 0.2]}}
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"overall": overall, "rows": rows}))
    card = _make_card().vc_rows(report, ("converted", "resynthesis", "real"))
    low, high = card["converted"]["wer_ci95"]
    assert (low, high) == wer_interval(errors, words)
    assert 0 < low < 11 / 51 < high < 0.5  # the pooled WER 11 / 51 lies inside
    assert card["real"]["wer_ci95"] == [0.1, 0.2]  # a report's own interval is kept
    assert card["resynthesis"] is None
