#!/usr/bin/env bash
# Distil the shipped demo model into a 4-step student on a CPU, in two progressive rounds (16 guided steps → 8 → 4):
#   round 1: the demo (teacher, CFG 3.5, 16 DDIM steps) → an 8-step student without CFG;
#   round 2: that student (8 steps) → a 4-step student.
# Usage: scripts/train_distill_demo.sh DATA [OUT]   DATA: a folder `animate synth` wrote (its meta_train.json);
# OUT defaults to runs/distill (refused if it exists). STEPS (per round, default 600), LR (default 2e-4) in the
# environment. Prints each round's wall time; the last round's student is OUT/round2/checkpoint-*/weights.
set -euo pipefail

DATA=${1:?usage: scripts/train_distill_demo.sh DATA [OUT]}
OUT=${2:-runs/distill}
STEPS=${STEPS:-600}
LR=${LR:-2e-4}
TEACHER=${TEACHER:-examples/weights}
if [ ! -f "$DATA/meta_train.json" ]; then
  echo "error: $DATA has no meta_train.json (give a folder \`animate synth\` wrote)" >&2
  exit 2
fi
if [ -e "$OUT" ]; then
  echo "error: $OUT already exists (remove it or name another folder)" >&2
  exit 2
fi
latest() { ls -d "$1"/checkpoint-* | sort | tail -n 1; }
round() {  # round NAME TEACHER STEPS GUIDANCE
  local start
  start=$(date +%s)
  animate train distill --config configs/train/distill_tiny.yaml init.weights="$2" distill.steps="$3" \
    distill.guidance="$4" data.meta="[$DATA/meta_train.json]" data.n_sample_frames=8 train.batch_size=2 \
    train.output_dir="$OUT/$1" train.max_steps="$STEPS" train.learning_rate="$LR" train.lr_schedule=cosine \
    train.lr_warmup_steps=20 train.checkpoint_every=200 train.validate_every=100000 train.log_every=10
  echo "wall time of $1: $(( $(date +%s) - start )) s"
}
round round1 "$TEACHER" 8 3.5
round round2 "$(latest "$OUT/round1")/weights" 4 1
echo "student: $(latest "$OUT/round2")/weights"
