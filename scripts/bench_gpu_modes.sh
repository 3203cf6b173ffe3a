#!/usr/bin/env bash
# The GPU rows of docs/benchmarks.md's speed-mode section: sd15 at 512x768, s/frame and peak CUDA memory for 24 and
# 240 frames, equal output (DDIM 30, CFG 3.5) beside the fast modes, on random sd15 weights (time and memory depend
# on shapes, not on the weights' values). Not yet run on a GPU: its length there is an estimate (about 6 minutes on
# one H100, fp16, each of the 8 runs building random sd15 weights in a fresh process); the cap is 8 minutes.
# Usage: scripts/bench_gpu_modes.sh [OUT.md]   (the tables are printed, and appended to OUT.md when given)
set -euo pipefail
out=${1:-}
run() { python scripts/bench_infer.py --size sd15 --frames 24,240 --device cuda --dtype fp16 ${out:+--out "$out"} "$@"; }
run --steps 30                                                       # equal output, the reference
run --steps 30 --window-batch 2                                      # equal output, two windows a call
run --sampler unipc --steps 10 --cfg-steps 0.5 --cache-interval 2 --decoder tiny   # --fast on a plain weight set
run --steps 4 --cfg 1 --decoder tiny                                 # --fast on a 4-step student (its algorithm)
