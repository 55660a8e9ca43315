#!/usr/bin/env bash
# One call on a lent GPU: train the CRNN on printed text (issue 15's pretrained
# weights) for a fixed wall time, evaluate it on the unseen-fonts benchmark and
# export its weights (no optimiser state) to DIR.
#
#   scripts/gpu_train_printed.sh DIR [TRAIN_SECONDS] [RUN_DIR]
#
# The model is the half-width CRNN (channels 32..256, 128 LSTM units: 2.2M
# parameters, 8.8 MB of float32 weights). Training stops with SIGINT after
# TRAIN_SECONDS (default 280), which saves last.h5; best.h5 is the best
# validation checkpoint so far. RUN_DIR (default /tmp/crnn-printed) holds the
# run: give an existing one to continue it (--resume). While it trains, the
# `cuda` tests run beside it. Written for the device tool's one-call budget;
# not run on a GPU yet (session 2 was lent no further call); dry-run on the CPU.
set -uo pipefail
out=${1:?usage: scripts/gpu_train_printed.sh DIR [TRAIN_SECONDS] [RUN_DIR]}
seconds=${2:-280}
run=${3:-/tmp/crnn-printed}
py=${PYTHON:-python3}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
start=$SECONDS
resume=()
[ -f "$run/last.h5" ] && resume=(--resume)
( timeout -s INT "$seconds" "$py" -m nnlite train crnn --data printed --device cuda \
    --steps 100000 --eval-every 500 ${resume[@]+"${resume[@]}"} \
    --option "model_options={'channels': (32, 64, 128, 128, 256, 256, 256), 'hidden_size': 128}" \
    --option workers=8 --option clean_steps=500 --option ramp_steps=2500 \
    --option lr_schedule=constant --out "$run" \
    > "$out/train.log" 2>&1
  echo "train exit $? after $((SECONDS - start)) s" >> "$out/train.log" ) &
timeout 150 "$py" -m pytest -m cuda -q -p no:cacheprovider --maxfail=30 -rf > "$out/pytest.log" 2>&1
echo "pytest exit $? after $((SECONDS - start)) s"
wait
tail -n 3 "$out/train.log"
checkpoint="$run/best.h5"  # the last evaluation's best; last.h5 if none finished
[ -f "$checkpoint" ] || checkpoint="$run/last.h5"
timeout 90 "$py" -m nnlite eval crnn "$checkpoint" --data unseen-fonts --device cuda \
    > "$out/eval.log" 2>&1
echo "eval exit $? after $((SECONDS - start)) s"; tail -n 4 "$out/eval.log"
"$py" - "$checkpoint" "$out/crnn-printed.h5" <<'PY'
import sys
import nnlite as nl
from nnlite.models import crnn_train
model = crnn_train.build_for_checkpoint(sys.argv[1])
nl.io.load(sys.argv[1], model)
nl.io.save(sys.argv[2], model)
PY
cp "$run/metrics.json" "$run/curves.png" "$out/" 2>/dev/null
echo "done after $((SECONDS - start)) s"
