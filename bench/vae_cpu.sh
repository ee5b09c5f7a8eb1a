#!/usr/bin/env bash
# CPU speed of the SD VAE: SGEMM and conv2d GFLOP/s, encoder and decoder images/s of the full SD
# VAE configuration with random weights (the speed does not depend on the values), and the same
# encoder and decoder in PyTorch (float32, same thread count), back to back.
# Usage: bench/vae_cpu.sh [BATCH] [SIZE] [REPEATS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-1}
size=${2:-256}
repeats=${3:-2}
cores=$(nproc --all) # before OMP_NUM_THREADS is set: nproc honours it
threads=${4:-$cores}
python=${PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=$threads
weights=$(mktemp "${TMPDIR:-/tmp}/sd-vae-random.XXXXXX.safetensors")
trap 'rm -f "$weights"' EXIT
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -m), $cores cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "# command: bench/vae_cpu.sh $batch $size $repeats $threads"
"$python" tests/ref/vae_case.py full-size --out "$weights" --random 0
build/bench/vae_cpu "$weights" "$batch" "$size" "$repeats"
"$python" bench/torch_vae.py "$batch" "$size" "$repeats" "$threads"
