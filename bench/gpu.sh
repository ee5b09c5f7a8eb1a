#!/usr/bin/env bash
# The GPU benchmarks, dydit (CUDA backend, bf16 dense products) and PyTorch (bf16 autocast, SDPA,
# fused AdamW) side by side on the same GPU in one run, raw output in
# bench/results/<date>-<gpu>-gpu.txt with the date, the GPU, the commit and every command:
#  1. bf16 GEMM peak through cuBLASLt (the MFU denominator);
#  2. DiT-XL/2 training steps at 256x256 (latents 32x32x4), batch 32 and 64, and a DyDiT-XL/2
#     stage-1 step (lambda 0.5, router noise, both losses), images/s and MFU;
#  3. 250-step DDPM sampling with guidance 1.5 (32 images, 64 rows): DyDiT static vs dynamic engine
#     at a realised FLOPs ratio near 0.49, and the static DiT in PyTorch;
#  4. SD VAE encoder at 256x256, batch 16.
# About 5 minutes on an H200; QUICK=1 takes fewer steps (about 2 minutes). SAMPLE_STEPS overrides
# the sampling steps; RESULTS names the folder of the raw output (default bench/results); LIMIT the
# seconds any one program may take (default 120, or 300 without QUICK). Every program prints one
# JSON line per measurement; a summary table ends it. Exits non-zero when any program failed.
# Usage: [QUICK=1] [SAMPLE_STEPS=N] [RESULTS=DIR] [LIMIT=S] [PYTHON=python3] bench/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
python=${PYTHON:-python3}
model=DiT-XL/2
latent=32
if [ "${QUICK:-0}" = 1 ]; then
    train_steps=4 warmup=2 sample_steps=${SAMPLE_STEPS:-25} vae_repeats=2 batches="32" limit=${LIMIT:-120}
else
    train_steps=10 warmup=3 sample_steps=${SAMPLE_STEPS:-250} vae_repeats=3 batches="32 64" limit=${LIMIT:-300}
fi

command -v nvidia-smi >/dev/null || { echo "error: nvidia-smi not found: the GPU benchmarks need an NVIDIA GPU" >&2; exit 1; }
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr 'A-Z ' 'a-z-' | tr -cd 'a-z0-9-')
results=${RESULTS:-bench/results}
mkdir -p "$results" || exit 1
out=$results/$(date -u +%Y-%m-%d)-${gpu:-gpu}-gpu.txt
programs=(build/bench/gpu_gemm_peak build/bench/gpu_train_step build/bench/gpu_sample_speed build/bench/gpu_vae)
make -s -j"$(nproc)" "${programs[@]}" || { echo "error: building the GPU benchmarks failed" >&2; exit 1; }
weights=$(mktemp "${TMPDIR:-/tmp}/sd-vae-random.XXXXXX.safetensors")
log=$(mktemp "${TMPDIR:-/tmp}/gpu-bench.XXXXXX.txt") # the programs' output, for the summary
trap 'rm -f "$weights" "$log"' EXIT

exec > >(tee "$out") 2>&1
echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) bench/gpu.sh QUICK=${QUICK:-0} SAMPLE_STEPS=$sample_steps"
nvidia-smi -L | sed 's/^/# /'
echo "# driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1); host $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
if commit=$(git rev-parse HEAD 2>/dev/null); then
    git diff --quiet HEAD 2>/dev/null || commit+=" (with uncommitted changes)"
else
    commit="unknown (not a git checkout)"
fi
echo "# commit $commit"
echo "# $("$python" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda)' 2>&1 | tail -1)"

# Prints the command, then runs it under the time limit; a failure is reported and counted, and the
# run goes on.
failures=0
run() {
    echo "\$ $*"
    timeout "$limit" "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] && return
    echo "# exit status $rc$([ "$rc" = 124 ] && echo " (over $limit s)"): $1 failed"
    failures=$((failures + 1))
}

run build/bench/gpu_gemm_peak 20
peak=$(grep '"gemm_peak"' "$log" | "$python" -c 'import json, sys; print(json.loads(sys.stdin.read())["peak_tflops"])' 2>/dev/null || echo 0)
echo "# MFU denominator: $peak TFLOP/s"

for batch in $batches; do
    run build/bench/gpu_train_step --peak-tflops "$peak" "$model" "$latent" "$batch" "$train_steps" "$warmup"
    run "$python" bench/torch_gpu_train.py --peak-tflops "$peak" "$model" "$latent" "$batch" "$train_steps" "$warmup"
done
run build/bench/gpu_train_step --dynamic --lambda 0.5 --peak-tflops "$peak" "$model" "$latent" 32 "$train_steps" "$warmup"
run "$python" bench/torch_gpu_train.py --dynamic --lambda 0.5 --peak-tflops "$peak" "$model" "$latent" 32 "$train_steps" "$warmup"

run build/bench/gpu_sample_speed --target 0.49 --peak-tflops "$peak" "$model" "$latent" 32 "$sample_steps"
run "$python" bench/torch_gpu_sample.py --peak-tflops "$peak" "$model" "$latent" 32 "$sample_steps"

run "$python" tests/ref/vae_case.py full-size --out "$weights" --random 0
run build/bench/gpu_vae "$weights" 16 256 "$vae_repeats"
run "$python" bench/torch_gpu_vae.py 16 256 "$vae_repeats"

echo
"$python" bench/gpu_summary.py "$log" || failures=$((failures + 1))
echo "# raw output: $out"
[ "$failures" = 0 ] || { echo "# $failures program(s) failed"; exit 1; }
