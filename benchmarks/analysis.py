"""Phone-report speed on an hour of codes: every measure (mapping, PNMI, boundaries, bitrate,
ABX on codes and on 32-dim features, speaker classifier) timed in one run.

    python benchmarks/analysis.py --data-dir egs/mini/data/train [--hours 1.0]

The utterances of the data dir (with phones.ctm) are repeated under new ids until the total
reaches ``--hours``; codes are constructed from the alignment (each phone drawn from its
own few codes, 30% noise) and features are noisy phone embeddings, so the metrics have
realistic structure while the timing does not depend on a trained model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqspeech.alignments import align_to_frames, read_ctm, write_ctm  # noqa: E402
from vqspeech.phones.report import compute_phone_report  # noqa: E402
from vqspeech.kaldi_data_dir import DataDir, read_data_dir, write_data_dir  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="egs/mini/data/train")
    p.add_argument("--hours", type=float, default=1.0)
    p.add_argument("--frame-shift-ms", type=float, default=4.0)
    p.add_argument("--num-codes", type=int, default=64)
    args = p.parse_args(argv)
    src = read_data_dir(args.data_dir)
    ali = read_ctm(Path(args.data_dir) / "phones.ctm")
    shift = args.frame_shift_ms / 1000
    rng = np.random.default_rng(0)
    dd = DataDir(wav_scp={}, utt2spk={}, text={})
    new_ali, codes, feats = {}, {}, {}
    total, copy = 0.0, 0
    phone_codes: dict[str, np.ndarray] = {}
    phone_vecs: dict[str, np.ndarray] = {}
    while total < args.hours * 3600:
        for utt in src.utterances:
            spk = src.utt2spk[utt]
            new = f"{spk}_c{copy:03d}_{utt[len(spk) + 1:]}"
            dd.wav_scp[new], dd.utt2spk[new], dd.text[new] = src.wav_scp[utt], spk, src.text[utt]
            new_ali[new] = ali[utt]
            n = int(np.ceil(ali[utt][-1].end / shift))
            labels, _ = align_to_frames({new: [0] * n}, {new: ali[utt]}, shift)
            lab = labels[new]
            for ph in set(lab):
                phone_codes.setdefault(ph, rng.choice(args.num_codes, 3, replace=False))
                phone_vecs.setdefault(ph, rng.standard_normal(32))
            c = np.array([rng.choice(phone_codes[ph]) for ph in lab])
            noise = rng.random(n) < 0.3
            c[noise] = rng.integers(0, args.num_codes, noise.sum())
            codes[new] = c.tolist()
            feats[new] = np.stack([phone_vecs[ph] for ph in lab]) + rng.standard_normal((n, 32))
            total += n * shift
            if total >= args.hours * 3600:
                break
        copy += 1
    with tempfile.TemporaryDirectory() as tmp:
        write_data_dir(tmp, dd)
        write_ctm(Path(tmp) / "phones.ctm", new_ali)
        t0 = time.perf_counter()
        rep = compute_phone_report(codes, tmp, shift, args.num_codes, feats)
        seconds = time.perf_counter() - t0
    print(f"{len(codes)} utterances, {rep['audio_hours']:.2f} h, {rep['frames']:,} frames at {args.frame_shift_ms} ms")
    print(f"phone report (all measures) in {seconds:.1f} s; of which boundaries + ABX (codes and features) + "
          f"speaker classifier {rep['analysis_seconds']:.1f} s")
    print(f"many-to-one {100 * rep['many_to_one_accuracy']:.1f}%, PNMI {rep['pnmi']:.3f}, "
          f"ABX codes {rep['abx_codes']}, ABX features {rep['abx_features']}")
    return 0


if __name__ == "__main__":
    from vqspeech.bin.runner import run_user_command

    # a user error (a config or data directory that does not read, an absent device): one line, exit 2
    raise SystemExit(run_user_command(main, prog=Path(__file__).name))
