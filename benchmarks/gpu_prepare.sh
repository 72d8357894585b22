#!/bin/bash
# Fill .device/ for benchmarks/gpu_check.sh on the lent GPU machine (run here, from the project's root):
# soundfile's wheels for that machine's Python 3.12 (it has no soundfile), and the mini corpus's
# training split as 16-bit FLAC with a data directory whose wav.scp paths start with @ROOT@ (gpu_check.sh
# rewrites them).  Only the training split travels: the checkout plus .device must stay under the
# device tool's 64 MiB (about 15 + 38 MiB).  Needs egs/mini/data/train (cd egs/mini && ./run.sh --stop-stage 1).
#   usage: bash benchmarks/gpu_prepare.sh [.venv/bin/python]
set -euo pipefail
PY=${1:-.venv/bin/python}
[ -f egs/mini/data/train/wav.scp ] || { echo "gpu_prepare: egs/mini/data/train/wav.scp is missing: prepare the mini corpus first" >&2; exit 1; }
grep -qx '/.device/' .git/info/exclude 2>/dev/null || echo '/.device/' >> .git/info/exclude
rm -rf .device/corpus; mkdir -p .device/whl
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .device/whl soundfile cffi pycparser
"$PY" - egs/mini/data/train .device/corpus <<'PY'
import pathlib, sys
import soundfile as sf
src, dst = map(pathlib.Path, sys.argv[1:])
out = dst / "data" / "train"
out.mkdir(parents=True, exist_ok=True)
for f in src.iterdir():
    if not f.is_file():
        continue
    text = f.read_text()
    if f.name == "wav.scp":
        lines = []
        for line in text.splitlines():
            utt, path = line.split(maxsplit=1)
            wav = pathlib.Path(path)
            flac = dst / "wav" / wav.parent.name / (wav.stem + ".flac")
            flac.parent.mkdir(parents=True, exist_ok=True)
            x, sr = sf.read(wav, dtype="int16")
            sf.write(flac, x, sr, subtype="PCM_16")
            lines.append(f"{utt} @ROOT@/wav/{wav.parent.name}/{flac.name}")
        text = "\n".join(lines) + "\n"
    (out / f.name).write_text(text)
PY
du -sh .device
echo 'then: device run, carry [".device"], command: STEPS="1 4 3" OUT=$OUT DEADLINE=480 bash benchmarks/gpu_check.sh'
