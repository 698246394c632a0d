#!/usr/bin/env bash
# The GPU checks of issue 19 as one run with a time cap per step, for a borrowed GPU (11 minutes at most, so that
# with the machine's start it fits the 15 minutes of device time; tests/studies/test_gpu_checks_script.py checks):
#   bash tools/gpu_wheels.sh                                  # here, once: .whl/ with the missing dependencies
#   bash tools/gpu_checks.sh "$OUT"                           # there, with .whl carried along
# Steps, most important first: versions; the eager levers of RS3D-50 at batch 16, 32x224 with per-conv-shape rows;
# the GPU test tier; regional compile; whole-model compile. Logs (and the levers' JSON) go to the folder given.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-${OUT:-/tmp/rs3d_gpu_checks}}
mkdir -p "$out"
if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH=/tmp/site || exit 1
fi
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(pwd)" PYTHONUNBUFFERED=1
step() {  # step CAP_SECONDS NAME COMMAND...
    local cap=$1 name=$2; shift 2
    echo "== $name (at most ${cap} s)"
    local start=$SECONDS
    timeout -k 10 "$cap" "$@" > "$out/$name.log" 2>&1
    local status=$?
    tail -n 60 "$out/$name.log"
    echo "== $name: exit $status after $((SECONDS - start)) s"
}
levers=(python3 tools/benchmark_levers.py --cfg configs/kinetics400/rs3d_50.yaml --batch-size 16 --anatomy 0)  # anatomy: device-free
step 30 versions python3 -c "import torch; print(torch.__version__, torch.version.cuda, torch.backends.cudnn.version(),
torch.cuda.get_device_name()); import decord, av, fvcore, pytorchvideo, iopath; print('imports ok')"
step 180 levers_eager "${levers[@]}" --levers 0 1 2 3 --json "$out/levers_eager.json"
step 150 gpu_tier python3 -m pytest -q -m gpu tests -p no:cacheprovider --timeout 120 --continue-on-collection-errors
step 140 levers_regional "${levers[@]}" --levers 4 --layers 0 --compile-timeout 120 --json "$out/levers_regional.json"
step 120 levers_whole "${levers[@]}" --levers 5 --layers 0 --compile-timeout 100 --json "$out/levers_whole.json"
