#!/usr/bin/env bash
# Reproduce the demo model end to end on a CPU and score it on the held-out split:
#   synthetic dataset → the demo size's autoencoder → stage 1 → stage 2 → scripts/eval_synth.py
# Usage: scripts/train_demo.sh [OUT] (default runs/demo; refused if it exists). Step counts: AE_STEPS, S1_STEPS,
# S2_STEPS, EVAL_STEPS in the environment; DATA=folder reuses a dataset `animate synth` wrote (linked as OUT/data).
# Prints the wall time at the end; `python scripts/ship_demo.py OUT` then copies the weights and a held-out case
# into examples/.
set -euo pipefail

OUT=${1:-runs/demo}
AE_STEPS=${AE_STEPS:-1800}
S1_STEPS=${S1_STEPS:-2200}
S2_STEPS=${S2_STEPS:-300}
EVAL_STEPS=${EVAL_STEPS:-10}
if [ -e "$OUT" ]; then
  echo "error: $OUT already exists (remove it or name another folder)" >&2
  exit 2
fi
if [ -n "${DATA:-}" ] && [ ! -f "$DATA/meta_train.json" ]; then
  echo "error: DATA=$DATA has no meta_train.json (give a folder \`animate synth\` wrote)" >&2
  exit 2
fi
start=$(date +%s)
data="$OUT/data"
train_meta="[$data/meta_train.json]"
latest() { ls -d "$1"/checkpoint-* | sort | tail -n 1; }

if [ -n "${DATA:-}" ]; then
  mkdir -p "$OUT" && ln -s "$(realpath "$DATA")" "$data"
else
  animate synth -o "$data" --train 256 --test 8 --frames 48 -W 64 -H 96 --seed 0
fi
animate train autoencoder init.weights=random:demo data.meta="$train_meta" train.output_dir="$OUT/autoencoder" train.max_steps="$AE_STEPS"
python scripts/eval_autoencoder.py --meta "$data/meta_test.json" --weights "$OUT/autoencoder/weights"
animate train stage1 --config configs/train/stage1_tiny.yaml init.weights="$OUT/autoencoder/weights" \
  data.meta="$train_meta" train.output_dir="$OUT/stage1" train.max_steps="$S1_STEPS" train.batch_size=4 \
  train.learning_rate=1e-3 train.checkpoint_every=500 train.validate_every=500 train.log_every=10 validation.steps=10
animate train stage2 --config configs/train/stage2_tiny.yaml init.weights="$(latest "$OUT/stage1")/weights" \
  data.meta="$train_meta" train.output_dir="$OUT/stage2" train.max_steps="$S2_STEPS" data.n_sample_frames=8 \
  train.learning_rate=2e-4 train.checkpoint_every=200 train.validate_every=200 train.log_every=10 validation.steps=10
weights="$(latest "$OUT/stage2")/weights"
python scripts/eval_synth.py --data "$data" --weights "$weights" --steps "$EVAL_STEPS" | tee "$OUT/eval.md"
echo "demo weights: $weights"
echo "wall time: $(( $(date +%s) - start )) s"
