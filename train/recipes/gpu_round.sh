#!/bin/bash
# Both models trained at once on one rented GPU, in a fixed time budget: how the shipped models of
# 2026-11-26 were made (runtime/zoo/MODEL_CARD.md). The GPU machine had no network and a plain
# python3 with PyTorch, so everything it needs travels in .dev/ beside the checkout:
#   .dev/wheels/        ultralytics, hydra-core, omegaconf, antlr4 and the fontpkg wheels (pip download)
#   .dev/datasets.tar   compact copies of the real training splits (python -m data action=compact)
#   .dev/init/{ocr,det}.pt   the weights to fine-tune
# Usage: bash train/recipes/gpu_round.sh BUDGET_S [smoke]
#   BUDGET_S: seconds this script may run in all; weights are copied to $OUT every 20 s regardless.
#   smoke: a tiny CPU run of exactly the same steps with the project's .venv (try it before renting).
# Optional: N_CROPS, N_SCENES, SEED_CROPS, SEED_SCENES, RESERVE (seconds kept for conversion and the
# final validation), EXTRA (more train overrides, e.g. "optimizer=SGD lr0=0.002").
set -u
T0=$(date +%s)
BUDGET=${1:-580}
MODE=${2:-gpu}
END=$((T0 + BUDGET))
OUT=${OUT:-/tmp/gpu_out}; mkdir -p "$OUT"
ROOT=$PWD
export PYTHONUNBUFFERED=1
log() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a "$OUT/setup.log"; }

if [ "$MODE" = gpu ]; then
  PY=python3
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .dev/wheels/*.whl >>"$OUT/setup.log" 2>&1 || { log "pip failed"; exit 9; }
  SITE=/tmp/site
  DEV="device=0 workers=7"
  N_CROPS=${N_CROPS:-24000}; N_SCENES=${N_SCENES:-6000}; SYN_W=8
  OCR_EPOCH=16000; DET_EPOCH=5000
else
  PY=$ROOT/.venv/bin/python
  SITE=
  DEV="device=cpu workers=1 batch=8"
  N_CROPS=200; N_SCENES=40; SYN_W=2
  OCR_EPOCH=64; DET_EPOCH=32
fi
# Ultralytics imports polars only to re-read results.csv when it saves a checkpoint (inside a
# try) and for plots (off here): a stub keeps its 40 MB wheel off the carried tree.
# The compact datasets travel as one tar (thousands of small JPEGs cost a block each).
[ -d .dev/datasets ] || tar xf .dev/datasets.tar -C .dev || { log "untar failed"; exit 9; }
mkdir -p /tmp/shim/polars
echo 'def __getattr__(name): raise ImportError("polars is not installed on this machine")' >/tmp/shim/polars/__init__.py
export PYTHONPATH=$ROOT:${SITE:+$SITE:}/tmp/shim
export LPR_SHARED_DATASETS=$ROOT/.dev/datasets LPR_RUNS=/tmp/lpr_runs
R=/tmp/lpr_runs; mkdir -p $R

{ nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null; nproc; free -g | head -2
  $PY -c "import sys, torch, ultralytics, hydra, cv2, numpy; print(sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'ultralytics', ultralytics.__version__, 'numpy', numpy.__version__, 'cv2', cv2.__version__)"
} >>"$OUT/setup.log" 2>&1
log "environment ready"

# Synthetic data, both kinds at once (same seeds as the CPU sets' scheme, new numbers).
$PY -m data action=synth kind=crops n=$N_CROPS seed=${SEED_CROPS:-51} out=$R/synth_crops synth.workers=$SYN_W >"$OUT/synth.log" 2>&1 &
P1=$!
$PY -m data action=synth kind=scenes n=$N_SCENES seed=${SEED_SCENES:-61} out=$R/synth_scenes synth.workers=$SYN_W >>"$OUT/synth.log" 2>&1 &
P2=$!
wait $P1 $P2
tail -c 400 "$OUT/synth.log" | tr '\r' '\n' | tail -4 >>"$OUT/setup.log"
log "synthetic data done"

# Copy weights out every 20 s: a run cut off by the deadline still returns its last epoch.
(
  while true; do
    for m in ocr det; do
      f=$R/$m/weights/best.pt
      [ -f "$f" ] && cp -f "$f" "$OUT/.${m}_best.tmp" && mv -f "$OUT/.${m}_best.tmp" "$OUT/${m}_best.pt"
    done
    tar czf "$OUT/.runs.tmp" -C $R --exclude='*.pt' --exclude='synth_*' --exclude='train' ocr det 2>/dev/null && mv -f "$OUT/.runs.tmp" "$OUT/runs.tgz"
    sleep 20
  done
) &
COPIER=$!

NOW=$(date +%s)
# Hours of training each run may spend: what is left, less ~100 s for data conversion, the final
# validation, the OCR read-out and the last copy.
HOURS=$($PY -c "print(max(0.01, ($END - $NOW - ${RESERVE:-110}) / 3600))")
if [ "$MODE" = gpu ]; then TIMECAP="time=$HOURS"; else TIMECAP="epochs=1"; fi
log "training for $HOURS h each ($TIMECAP)"

$PY -m train model=plate_ocr profile=gpu $DEV $TIMECAP plots=false ${EXTRA:-} out=$R/ocr init=$ROOT/.dev/init/ocr.pt \
  "data=[{manifest:uc3m_lp_crops,weight:0.25},{manifest:$ROOT/.dev/datasets/pseudo3/labels.jsonl,weight:0.4},{manifest:$R/synth_crops/labels.jsonl,weight:0.35}]" \
  mix.epoch_size=$OCR_EPOCH mix.holdout=0.03 mix.ocr_jitter=0.05 >"$OUT/ocr.log" 2>&1 &
P3=$!
$PY -m train model=plate_det profile=gpu $DEV $TIMECAP plots=false ${EXTRA:-} out=$R/det init=$ROOT/.dev/init/det.pt \
  "data=[{manifest:uc3m_lp,weight:0.4},{manifest:$R/synth_scenes/labels.jsonl,weight:0.6}]" \
  mix.epoch_size=$DET_EPOCH mix.holdout=0.03 >"$OUT/det.log" 2>&1 &
P4=$!
wait $P3; log "ocr training exit $?"
wait $P4; log "det training exit $?"
kill $COPIER 2>/dev/null; wait $COPIER 2>/dev/null
for m in ocr det; do cp -f $R/$m/weights/best.pt "$OUT/${m}_best.pt" 2>/dev/null; done
tar czf "$OUT/runs.tgz" -C $R --exclude='*.pt' --exclude='synth_*' --exclude='train' ocr det 2>/dev/null
rm -f "$OUT"/.*.tmp
log "done"; ls -la "$OUT" >>"$OUT/setup.log"
