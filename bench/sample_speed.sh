#!/usr/bin/env bash
# Sampling speed of the DyDiT dynamic engine against the static engine on the CPU, same model,
# noise and schedule, back to back (bench/sample_speed.c). Routers reproduce a keep pattern: half
# the heads and every channel group in every block, token biases calibrated to keep a share of the
# tokens (about half of them during sampling), which lands near the paper's realised ratio of 0.49.
# Usage: bench/sample_speed.sh [MODEL] [INPUT_SIZE] [BATCH] [STEPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-DiT-S/2}
size=${2:-32}
batch=${3:-8}
steps=${4:-10}
threads=${5:-$(nproc)}
export OMP_NUM_THREADS=$threads
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -m), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "# command: bench/sample_speed.sh $model $size $batch $steps $threads (DDPM, guidance 1.5: $((2 * batch)) rows)"
build/bench/sample_speed "$model" "$size" "$batch" "$steps" 0.5 1.0 0.7
