#!/usr/bin/env bash
# Reproduce the content guider's proof on a CPU (docs/benchmarks.md, issue 17):
#   close-up synthetic data (people in several outfits, captions) → the shipped demo's stage 1 fine-tuned on the mixed
#   framings → the guider (and the demo size's small text encoder) → scripts/eval_guider.py on the held-out people.
# Usage: scripts/train_guider_demo.sh [OUT] (default runs/guider_demo; refused if it exists). Step counts: S1_STEPS,
# GUIDER_STEPS, GUIDER_LR, EVAL_STEPS in the environment; BASE=weights folder to start from (default
# examples/weights). The defaults are the run docs/benchmarks.md reports.
set -euo pipefail

OUT=${1:-runs/guider_demo}
S1_STEPS=${S1_STEPS:-400}
GUIDER_STEPS=${GUIDER_STEPS:-3000}
GUIDER_LR=${GUIDER_LR:-2e-3}
EVAL_STEPS=${EVAL_STEPS:-10}
BASE=${BASE:-examples/weights}
if [ -e "$OUT" ]; then
  echo "error: $OUT already exists (remove it or name another folder)" >&2
  exit 2
fi
latest() { ls -d "$1"/checkpoint-* | sort | tail -n 1; }
start=$(date +%s)
animate synth -o "$OUT/train_data" --train 96 --test 0 --frames 24 -W 64 -H 96 --seed 11 --outfits 3 --framing mixed
animate synth -o "$OUT/test_data" --train 0 --test 8 --frames 24 -W 64 -H 96 --seed 12 --outfits 2 --framing head
animate train stage1 --config configs/train/stage1_tiny.yaml init.weights="$BASE" \
  data.meta="[$OUT/train_data/meta_train.json]" train.output_dir="$OUT/stage1" train.max_steps="$S1_STEPS" \
  train.batch_size=8 train.learning_rate=3e-4 train.lr_schedule=cosine train.lr_warmup_steps=20 \
  train.checkpoint_every=200 train.validate_every=200 train.log_every=10 validation.steps=10
animate train guider --config configs/train/guider_tiny.yaml init.weights="$(latest "$OUT/stage1")/weights" \
  text.size=demo data.meta="[$OUT/train_data/meta_train.json]" train.output_dir="$OUT/guider" \
  train.max_steps="$GUIDER_STEPS" train.batch_size=8 train.learning_rate="$GUIDER_LR" train.lr_schedule=cosine \
  train.lr_warmup_steps=20 train.checkpoint_every=1000 train.validate_every=1000 train.log_every=10
weights="$(latest "$OUT/guider")/weights"
echo "guider weights: $weights"
echo "wall time of the model: $(( $(date +%s) - start )) s"
python scripts/eval_guider.py --data "$OUT/test_data" --weights "$weights" --steps "$EVAL_STEPS" --out "$OUT/eval.json" \
  | tee "$OUT/eval.md"
