#!/usr/bin/env bash
# The accelerator benchmark, ready to run on one lent GPU (9-10 minutes on one H200; --budget_s):
#   bash benchmarks/gpu.sh
# Full-size gan_city, fm_city, flow_terrain, vae_terrain and fm_city_hier: train images/s, model FLOP utilisation
# against the card's peaks, compile time, float32 vs bfloat16 (where the family offers it) and
# sampling samples/s. Writes the table to stdout and, when $OUT is set, to $OUT/gpu_benchmark.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv 2>/dev/null || true
PY="${PYTHON:-$(command -v python3 || command -v python)}"
"$PY" -c "import jax; print('jax', jax.__version__, jax.devices())"
"$PY" benchmarks/gpu.py "$@" 2>&1 | tee "${OUT:-/tmp}/gpu_benchmark.txt"
