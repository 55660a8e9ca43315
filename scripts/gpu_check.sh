#!/usr/bin/env bash
# One call on a lent GPU: everything nnlite can check there, logs in DIR.
#
#   scripts/gpu_check.sh DIR
#
# Runs, each with its own time limit (together 10 min; the whole took 2 min
# 45 s on an H100 before --all was added to the bench, after a 16 s
# `pip install -e .`):
#   1. nnlite info                      what was found (CuPy, NVRTC compile of every family)
#   2. pytest -m cuda                    every cuda-marked test (all of them, not -x:
#                                        one call should show every failure)
#   3. python -m bench --device cuda --all  kernels, every seed layer and the seed CRNN,
#                                        checked then timed, against PyTorch/cuDNN (TF32
#                                        off) when installed, with the copy bandwidth
#   4. 200 steps of the seed-size CRNN on cuda (scripts/train_text.py)
#   5. the memory budget: a TK1-sized NNLITE_GPU_MEMORY_LIMIT refuses a too-large request
# and a summary.txt with each step's exit status and time. A failing step does
# not stop the later ones. DIR gets only logs (a few MB); the training run's
# checkpoints go to a temporary folder. Environment: NNLITE_GPU_CHECK_FAST=1 shortens the
# bench and the training run (for a dry run on a busy machine).
set -uo pipefail
out=${1:?usage: scripts/gpu_check.sh DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
summary="$out/summary.txt"
: > "$summary"

py=${PYTHON:-python3}  # the interpreter nnlite is installed in
repeat=20
steps=200
if [ "${NNLITE_GPU_CHECK_FAST:-0}" = 1 ]; then
    repeat=3
    steps=20
fi

step() {  # step NAME LIMIT_S COMMAND...
    local name=$1 limit=$2
    shift 2
    local start=$SECONDS
    echo "== $name: $*" | tee -a "$summary"
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local status=$?
    echo "   exit $status after $((SECONDS - start)) s (log: $name.log)" | tee -a "$summary"
    tail -n 5 "$out/$name.log" | sed 's/^/   | /' >> "$summary"
}

run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT
nvidia-smi > "$out/nvidia-smi.log" 2>&1
step info 60 "$py" -m nnlite info
step pytest-cuda 120 "$py" -m pytest -m cuda -q -p no:cacheprovider --maxfail=30 -rf
step bench-cuda 300 "$py" -m bench --device cuda --all --repeat "$repeat" --json "$out/bench-cuda.json"
step crnn-seed-cuda 90 "$py" scripts/train_text.py crnn --size seed --device cuda \
    --steps "$steps" --eval-every "$steps" --val-size 64 --out "$run_dir/crnn-seed" --overwrite
step memory-budget 30 env NNLITE_GPU_MEMORY_LIMIT=1.5GiB "$py" -c '
import sys
import nnlite, nnlite.cuda as c
print("budget", c.get_memory_limit())
small = nnlite.zeros((1 << 20,), device="cuda")  # 4 MiB: within the budget
try:
    big = nnlite.zeros((1 << 29,), device="cuda")  # 2 GiB: over the 1.5 GiB budget
except nnlite.OutOfMemoryError as exc:
    print("refused as expected:", exc)
    sys.exit(0)
print("NOT REFUSED: allocated", c.memory_allocated())
sys.exit(1)
'
echo "done; summary in $summary"
