"""Print the study table (markdown) from the experiment folders the recipe wrote.

    python local/study_table.py CONFIG [CONFIG ...]     (run from egs/mini)
"""

import json
import sys
from pathlib import Path


def load(path):
    p = Path(path)
    return json.loads(p.read_text()) if p.is_file() else {}


def pct(x):
    return "n/a" if x is None else f"{100 * x:.1f}%"


def main(configs):
    print("| config | train min | codes/s | bit/s | WER conv. | WER resynth. | WER conv. / resynth., 10 sentences | "
          "target ID | MCD dB | F0 corr | F0 corr with source | conv. RTF | many-to-one | ABX codes within / across | speaker from codes |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in configs:
        exp = Path("exp") / c
        tr = load(exp / "train_summary.json")
        vc = load(exp / "reports" / "vc_test" / "report.json")
        wide = load(exp / "reports" / "vc_test_s10" / "report.json").get("overall", {})  # local/wide_eval.sh
        ph = load(exp / "reports" / "phones_test" / "report.json")
        conv = vc.get("overall", {}).get("converted", {})
        res = vc.get("overall", {}).get("resynthesis", {})
        rtfs = [r["real_time_factor"] for r in vc.get("rows", []) if "real_time_factor" in r]
        abx = ph.get("abx_codes") or {}
        spk = (ph.get("speaker_from_codes") or {}).get("accuracy")
        f = lambda v, fmt: "n/a" if v is None else fmt.format(v)  # noqa: E731
        print(f"| {c} | {f(tr.get('wall_seconds_this_run') and tr['wall_seconds_this_run'] / 60, '{:.1f}')} | "
              f"{f(ph.get('frame_shift_ms') and 1000 / ph['frame_shift_ms'], '{:.1f}')} | "
              f"{f(ph.get('bitrate_bps'), '{:.0f}')} | {pct(conv.get('wer'))} | {pct(res.get('wer'))} | "
              f"{pct(wide.get('converted', {}).get('wer'))} / {pct(wide.get('resynthesis', {}).get('wer'))} | "
              f"{pct(conv.get('speaker_id_correct'))} | {f(conv.get('mcd_db'), '{:.2f}')} | "
              f"{f(conv.get('f0_corr'), '{:.2f}')} | {f(conv.get('source_f0_corr'), '{:.2f}')} | "
              f"{f(sum(rtfs) / len(rtfs) if rtfs else None, '{:.1f}x')} | "
              f"{pct(ph.get('many_to_one_accuracy'))} | {f(abx.get('within_speaker_error_pct'), '{:.1f}%')} / "
              f"{f(abx.get('across_speaker_error_pct'), '{:.1f}%')} | {pct(spk)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
