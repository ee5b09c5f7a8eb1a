#!/usr/bin/env bash
# CPU training-step throughput of dydit against PyTorch on the same machine, same model, batch and
# thread count, measured back to back in one run (median step time after a warm-up).
# Usage: bench/cpu_train_step.sh [MODEL] [INPUT_SIZE] [BATCH] [STEPS] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-DiT-S/4}
size=${2:-32}
batch=${3:-16}
steps=${4:-10}
threads=${5:-$(nproc)}
python=${PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=$threads
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} # for both sides, as dydit runs by default
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(uname -m), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
echo "# command: bench/cpu_train_step.sh $model $size $batch $steps $threads"
ours=$(build/bench/train_step "$model" "$size" "$batch" "$steps")
theirs=$("$python" bench/torch_train_step.py "$model" "$size" "$batch" "$steps" 2 "$threads")
echo "$ours"
echo "$theirs"
"$python" - "$ours" "$theirs" <<'PY'
import json, sys
ours, theirs = json.loads(sys.argv[1]), json.loads(sys.argv[2])
ratio = ours["images_per_s"] / theirs["images_per_s"]
print(f"dydit / PyTorch images/s: {ours['images_per_s']:.2f} / {theirs['images_per_s']:.2f} = {ratio:.2f}x")
PY
