#!/usr/bin/env bash
# Wheels for a borrowed GPU machine whose image (Python 3.12, its own torch) lacks rs3d's other dependencies:
# writes them to .whl/ (ignored by git; about 48 MB). Then run tools/gpu_checks.sh there with .whl carried.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux2010_x86_64 --platform manylinux1_x86_64 -d .whl decord==0.6.0 av==18.1.0
# pure-Python packages (fvcore and iopath publish only source archives): built here into universal wheels
python3 -m pip wheel -q --no-deps -w .whl pytorchvideo==0.1.5 fvcore==0.1.5.post20221221 iopath==0.1.10 \
    yacs==0.1.8 termcolor==3.3.0 parameterized==0.9.0
du -sh .whl
