#!/usr/bin/env bash
# The whole GPU check in one command, for a machine with an NVIDIA GPU: what the machine has, a
# build, the GPU suite (make test-cuda: every CUDA op, a DyDiT training step, the loss curve, the
# samplers and the VAE against the CPU), then the GPU benchmarks (bench/gpu.sh). Each stage has a
# time limit (SUITE_LIMIT, 300 s; BENCH_LIMIT, 240 s with QUICK=1, else 540 s) so that the whole
# fits 10 minutes on an H100/H200 with QUICK=1. Logs are written as the stages go, so a run cut
# short keeps what it did.
#
# Usage: [OUT=DIR] [SUITE=1] [BENCH=1] [QUICK=1] [DEBS=DIR] [PYTHON=python3] scripts/gpu_check.sh
#   OUT     folder for the logs and the benchmarks' raw output (default runs/gpu-check)
#   SUITE   0 skips the GPU suite; BENCH 0 skips the benchmarks
#   QUICK   1 (default): the short benchmark pass; 0: the full one (about 5 minutes)
#   DEBS    Debian packages from `scripts/offline_deps.sh download`, unpacked and built against
#           when the machine lacks the OpenBLAS, libjpeg, libpng or zlib headers (default
#           .offline-deps)
# Exits non-zero when the build, a GPU test or a benchmark failed; the last lines say which.
set -u
cd "$(dirname "$0")/.." || exit 1
out=${OUT:-runs/gpu-check}
mkdir -p "$out" || exit 1
out=$(cd "$out" && pwd)
exec > >(tee "$out/gpu_check.log") 2>&1
export PYTHON=${PYTHON:-python3}
jobs=$(nproc)
status=()

echo "== machine ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
command -v nvidia-smi >/dev/null || { echo "error: nvidia-smi not found: this check needs an NVIDIA GPU"; exit 1; }
nvidia-smi -L
nvidia-smi --query-gpu=driver_version,memory.total,clocks.max.sm --format=csv,noheader
# the toolkit: /usr/local/cuda, or wherever the nvcc on the PATH lives
if [ -z "${CUDA_HOME:-}" ] && [ ! -x /usr/local/cuda/bin/nvcc ] && command -v nvcc >/dev/null; then
    CUDA_HOME=$(dirname "$(dirname "$(command -v nvcc)")")
    export CUDA_HOME
fi
cuda_home=${CUDA_HOME:-/usr/local/cuda}
echo "nvcc: $("$cuda_home/bin/nvcc" --version 2>/dev/null | tail -n 1) ($cuda_home)"
echo "cuBLASLt: $(ls "$cuda_home"/lib*/libcublasLt.so* 2>/dev/null | head -n 1)"
echo "gcc: $(gcc --version | head -n 1); $jobs cores"
echo "python: $("$PYTHON" -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__)' 2>&1 | tail -n 1)"

echo "== libraries"
have_headers() {
    printf '#include <stdio.h>\n#include <jpeglib.h>\n#include <png.h>\n#include <zlib.h>\n#include <cblas.h>\n' |
        gcc -fsyntax-only -x c - ${DEPS:+-I$DEPS/usr/include -I$DEPS/usr/include/x86_64-linux-gnu} \
            -I"${DEPS:-}/usr/include/x86_64-linux-gnu/openblas-openmp" 2>/dev/null
}
if have_headers; then
    echo "the system's OpenBLAS, libjpeg, libpng and zlib headers are there"
else
    debs=${DEBS:-.offline-deps}
    echo "headers missing; unpacking the packages in $debs"
    export DEPS=${TMPDIR:-/tmp}/dydit-deps
    scripts/offline_deps.sh unpack "$debs" "$DEPS" && have_headers || {
        echo "error: no OpenBLAS/libjpeg/libpng/zlib headers: bring them with scripts/offline_deps.sh download $debs"
        exit 1
    }
fi

echo "== build"
SECONDS=0
if make -j"$jobs" >"$out/build.log" 2>&1; then
    status+=("build: ok (${SECONDS}s)")
else
    tail -n 30 "$out/build.log"
    echo "error: the build failed (log: $out/build.log)"
    exit 1
fi
echo "${status[-1]}"

failed=
if [ "${SUITE:-1}" != 0 ]; then
    echo "== GPU suite"
    SECONDS=0
    TEST_TIMEOUT=${TEST_TIMEOUT:-150} timeout "${SUITE_LIMIT:-300}" make -j"$jobs" test-cuda PYTHON="$PYTHON" 2>&1 |
        tee "$out/test-cuda.log"
    rc=${PIPESTATUS[0]}
    summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$out/test-cuda.log" | tail -n 1)
    status+=("GPU suite: ${summary:-no summary}, status $rc (${SECONDS}s)")
    [ "$rc" = 0 ] || failed=1
fi

if [ "${BENCH:-1}" != 0 ]; then
    echo "== benchmarks"
    SECONDS=0
    quick=${QUICK:-1}
    QUICK=$quick RESULTS="$out" timeout "${BENCH_LIMIT:-$([ "$quick" = 1 ] && echo 240 || echo 540)}" bench/gpu.sh
    rc=$?
    status+=("benchmarks: status $rc (${SECONDS}s), raw output in $out")
    [ "$rc" = 0 ] || failed=1
fi

echo "== summary"
printf '%s\n' "${status[@]}"
[ -z "$failed" ]
