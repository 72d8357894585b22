"""Ship an experiment as the pretrained model: copy its inference checkpoint to
vqspeech/pretrained/mini.pt and write the card mini.json from the experiment's own records
(config, training curve from tensorboard, validation, the stage 5 and 6 reports).

    python local/make_card.py EXP_TAG --config-name pretrained --minutes 45 --note "..."   (from egs/mini)
    (--train-set train_large --data-args "..." when it trained on data/train_large; --command and
    --machine replace those fields' defaults; a warm-started experiment's card also names the
    checkpoint it started from, with that one's step and config)

When a measure changes, the shipped card's voice-conversion reports are re-measured on the shipped
checkpoint and replaced, the rest of the card kept:

    python local/make_card.py --vc-reports STAGE6_REPORT_JSON TEN_SENTENCE_REPORT_JSON --note "..."
"""

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

CURVE = {"loss/recon": "loss/recon (mean |log-mel error|)", "vq/perplexity": "vq/perplexity",
         "vq/codes_used": "vq/codes_used"}
STEPS = (25, 250, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000)


def curve(exp: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(exp / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    out = {}
    for tag, label in CURVE.items():
        points = {e.step: round(e.value, 4) for e in acc.Scalars(tag)}
        out[label] = {str(s): points[s] for s in STEPS if s in points}
        last = max(points)
        out[label][str(last)] = points[last]
    return out


VC_ROWS = ("converted", "resynthesis", "source", "real")  # stage 6's rows on the card
VC_ROWS_10 = ("converted", "resynthesis", "real")  # local/wide_eval.sh's rows on the card


def vc_rows(report: Path, rows: tuple[str, ...]) -> dict:
    """The card's rows of a vc-eval report.json. A report written before ``vc-eval`` gave each WER its
    95% interval gets ``wer_ci95`` computed from its own per-utterance rows, as ``vc-eval`` does now."""
    from vqspeech.vc_eval.intelligibility import rows_wer_interval

    rep = json.loads(report.read_text())
    out = {k: rep["overall"].get(k) for k in rows}
    for kind, summary in out.items():
        if summary is not None and "wer_ci95" not in summary:
            summary["wer_ci95"] = rows_wer_interval([r for r in rep["rows"] if r["kind"] == kind])
    return out


def write_card(card: dict, dest: Path) -> None:
    (dest / "mini.json.tmp").write_text(json.dumps(card, indent=1) + "\n")
    (dest / "mini.json.tmp").replace(dest / "mini.json")


def replace_vc_reports(stage6: Path, wide: Path, note: str, dest: Path) -> None:
    """Replace the card's two voice-conversion reports (and its note, when given) by re-measured ones."""
    card_path = dest / "mini.json"
    card = json.loads(card_path.read_text())
    card["vc_report_test"] = vc_rows(stage6, VC_ROWS)
    card["vc_report_test_10_sentences"] = vc_rows(wide, VC_ROWS_10)
    if note:
        card["note"] = note
    write_card(card, dest)
    print(f"{card_path}: voice-conversion reports replaced")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("tag", nargs="?", help="exp/<tag> with checkpoint.pt, tensorboard/ and reports/")
    p.add_argument("--vc-reports", nargs=2, type=Path, metavar=("STAGE6_JSON", "TEN_SENTENCE_JSON"),
                   help="only replace the shipped card's voice-conversion reports by these re-measured ones")
    p.add_argument("--config-name", default="pretrained", help="conf/<name>.yaml it was trained with")
    p.add_argument("--minutes", type=float, help="wall minutes of the training")
    p.add_argument("--note", default="")
    p.add_argument("--train-set", default="train", help="data/<set> it was trained on")
    p.add_argument("--data-args", default="", help="run.sh --data-args that made that set")
    p.add_argument("--command", default=None, help="the card's command (default: run.sh stages 0-2 with --config-name)")
    p.add_argument("--machine", default=None, help="where and how it trained (default: one thread of the 2-core "
                                                   "CPU sharing the cores, --minutes of wall time)")
    p.add_argument("--dest", default="../../vqspeech/pretrained")
    args = p.parse_args()
    if args.vc_reports:
        missing = [str(path) for path in args.vc_reports if not path.exists()]
        if missing:
            sys.exit(f"make_card.py: not found: {', '.join(missing)}")
        replace_vc_reports(*args.vc_reports, args.note, Path(args.dest))
        return
    if args.tag is None or args.minutes is None:
        p.error("EXP_TAG and --minutes are needed to ship a model")
    exp = Path("exp") / args.tag
    needed = [exp / "checkpoint.pt", exp / "train_summary.json", exp / "reports" / "phones_test" / "report.json",
              exp / "reports" / "vc_test" / "report.json", Path("data") / args.train_set / "text"]
    missing = [str(path) for path in needed if not path.exists()]
    if missing:  # run from egs/mini after stages 2-6 (and local/wide_eval.sh for the 10-sentence report)
        sys.exit(f"make_card.py: not found: {', '.join(missing)}")
    summary = json.loads((exp / "train_summary.json").read_text())
    phones = json.loads((exp / "reports" / "phones_test" / "report.json").read_text())
    utts = dict(line.split(" ", 1) for line in (Path("data") / args.train_set / "text").read_text().splitlines())
    sentences = {u.split("_", 1)[1] for u in utts}
    speakers = {u.split("_", 1)[0] for u in utts}
    extra = (f' --data-args "{args.data_args}"' if args.data_args else "") + \
        (f" --train-sets {args.train_set}" if args.train_set != "train" else "")
    card = {
        "name": "vqspeech mini pretrained (spectral decoder)",
        "step": summary["step"],
        "config": f"egs/mini/conf/{args.config_name}.yaml",
        "command": args.command or (f"cd egs/mini && ./run.sh --stage 0 --stop-stage 2 --config {args.config_name}"
                                    f"{extra}   # then stages 3-6 for the reports"),
        "trained_on": f"the mini corpus data/{args.train_set} ({len(speakers)} synthesized voices x "
                      f"{len(sentences)} Harvard sentences, {len(utts)} utterances, 16 kHz)",
        "machine": args.machine or (f"2 x86_64 CPU cores, torch 2.13.0+cpu, one thread, {args.minutes:.0f} minutes "
                                    "of wall time sharing the cores with other jobs"),
        "note": args.note,
        "curve": curve(exp),
        "validation_at_end": summary["validation"],
        "phone_report_test": {k: phones.get(k) for k in ("many_to_one_accuracy", "chance_accuracy", "cluster_purity",
                                                         "pnmi", "code_perplexity", "bitrate_bps", "abx_codes",
                                                         "abx_features", "speaker_from_codes")},
        "vc_report_test": vc_rows(exp / "reports" / "vc_test" / "report.json", VC_ROWS),
    }
    init_from = yaml.safe_load((exp / "config.yaml").read_text())["train_conf"].get("init_from")
    if init_from:  # a warm start: the steps before this training's, read before mini.pt may be replaced
        import torch

        if not Path(init_from).is_file():
            sys.exit(f"make_card.py: {exp / 'config.yaml'}: train_conf.init_from {init_from} not found (the card "
                     "names the checkpoint the training started from)")

        before = torch.load(init_from, map_location="cpu", weights_only=True)
        card["initialised_from"] = {"checkpoint": init_from, "step": int(before["step"]),
                                    "config": before["config"]}
    wide = exp / "reports" / "vc_test_s10" / "report.json"  # local/wide_eval.sh: 10 sentences
    if wide.exists():
        card["vc_report_test_10_sentences"] = vc_rows(wide, VC_ROWS_10)
    dest = Path(args.dest)
    shutil.copyfile(exp / "checkpoint.pt", dest / "mini.pt.tmp")
    (dest / "mini.pt.tmp").replace(dest / "mini.pt")
    write_card(card, dest)
    print(f"{dest / 'mini.pt'}: step {card['step']}; card {dest / 'mini.json'}")


if __name__ == "__main__":
    main()
