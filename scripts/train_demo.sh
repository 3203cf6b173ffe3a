#!/usr/bin/env bash
# Reproduce the demo model end to end on a CPU and score it on the held-out split:
#   synthetic dataset → the demo size's autoencoder → stage 1 → stage 2 → scripts/eval_synth.py
# Usage: scripts/train_demo.sh [OUT] (default runs/demo; refused if it exists). Step counts: AE_STEPS, S1_STEPS,
# S2_STEPS, EVAL_STEPS in the environment; DATA=folder reuses a dataset `animate synth` wrote (linked as OUT/data);
# AUTOENCODER=folder reuses a weight set the autoencoder stage wrote (its folder's `weights`).
# Prints the wall time of building the model, then of scoring it; `python scripts/ship_demo.py OUT` then copies the
# weights and a held-out case into examples/.
set -euo pipefail

OUT=${1:-runs/demo}
AE_STEPS=${AE_STEPS:-1800}
S1_STEPS=${S1_STEPS:-1350}
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
if [ -n "${AUTOENCODER:-}" ] && [ ! -f "$AUTOENCODER/sd-vae-ft-mse/config.json" ]; then
  echo "error: AUTOENCODER=$AUTOENCODER has no sd-vae-ft-mse/config.json (give the weights folder the autoencoder stage wrote)" >&2
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
if [ -n "${AUTOENCODER:-}" ]; then
  autoencoder="$(realpath "$AUTOENCODER")"
else
  animate train autoencoder init.weights=random:demo data.meta="$train_meta" train.output_dir="$OUT/autoencoder" \
    train.max_steps="$AE_STEPS"
  autoencoder="$OUT/autoencoder/weights"
fi
python scripts/eval_autoencoder.py --meta "$data/meta_test.json" --weights "$autoencoder"
# Batch 16 draws 4x the pairs of batch 4 for ~2.4x the time of a step (the tiny step is mostly fixed overhead on a
# CPU); the cosine decay to 0 is worth ~1 dB of held-out PSNR over a constant rate (docs/benchmarks.md).
animate train stage1 --config configs/train/stage1_tiny.yaml init.weights="$autoencoder" \
  data.meta="$train_meta" train.output_dir="$OUT/stage1" train.max_steps="$S1_STEPS" train.batch_size=16 \
  train.learning_rate=1e-3 train.lr_schedule=cosine train.lr_warmup_steps=50 \
  train.checkpoint_every=500 train.validate_every=500 train.log_every=10 validation.steps=10
animate train stage2 --config configs/train/stage2_tiny.yaml init.weights="$(latest "$OUT/stage1")/weights" \
  data.meta="$train_meta" train.output_dir="$OUT/stage2" train.max_steps="$S2_STEPS" data.n_sample_frames=8 \
  train.learning_rate=2e-4 train.lr_schedule=cosine \
  train.checkpoint_every=200 train.validate_every=200 train.log_every=10 validation.steps=10
weights="$(latest "$OUT/stage2")/weights"
echo "demo weights: $weights"
echo "wall time of the model: $(( $(date +%s) - start )) s"
scored=$(date +%s)
python scripts/eval_synth.py --data "$data" --weights "$weights" --steps "$EVAL_STEPS" --cfg 1 | tee "$OUT/eval.md"
echo "wall time of the scoring: $(( $(date +%s) - scored )) s"
