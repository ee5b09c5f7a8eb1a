#!/usr/bin/env bash
# The GPU suite (make test-cuda): every build/tests/cuda/test_* program (ops_cuda against its CPU
# twin) and tests/cuda/*.sh script (called with a scratch directory and the Python interpreter, as
# the CPU suite's scripts are), then build/tests/cuda_nccl with one MPI rank per GPU when the build
# has NCCL. Prints "N passed, N failed" last and exits non-zero on any failure, also when no test
# program was built; refuses to start without a GPU. Each program or script may run TEST_TIMEOUT
# seconds (default 240; a hung kernel then fails its program with status 124 instead of stalling the
# suite). MPIRUN names the launcher (default mpirun, given --allow-run-as-root when run as root).
# EMULATED=1 runs the same programs of the emulated device's build instead (make
# test-cuda-emulated: build-emu, no GPU needed; NCCL over two MPI ranks).
set -u
cd "$(dirname "$0")/../.."
. tests/suite.sh
EMULATED=${EMULATED:-0}
if [ "$EMULATED" = 1 ]; then
    BUILD=build-emu
    export DYDIT=build-emu/dydit
    gpus() { echo 2; }
else
    BUILD=build
    export DYDIT=./dydit
    if ! gpu_present; then
        echo "error: no GPU found (nvidia-smi -L lists none); the CUDA tests need one" >&2
        exit 1
    fi
    gpus() { nvidia-smi -L | grep -c '^GPU '; }
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
PYTHON=${PYTHON:-/usr/bin/python3}
command -v "$PYTHON" >/dev/null || PYTHON=python3
MPIRUN=${MPIRUN:-mpirun}
# OpenMPI refuses to start as root without the flag (make test-cuda passes a plain mpirun)
if [ "$MPIRUN" = mpirun ] && [ "$(id -u)" -eq 0 ]; then MPIRUN="mpirun --allow-run-as-root"; fi
limit=${TEST_TIMEOUT:-240}
work=$(mktemp -d "${TMPDIR:-/tmp}/dydit-cuda-test.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [ "$EMULATED" = 1 ]; then echo "the emulated CUDA device ($BUILD)"; else nvidia-smi -L | head -n 1; fi
programs=0
for t in "$BUILD"/tests/cuda/test_*; do
    [ -x "$t" ] || continue
    suite_run "$(basename "$t")" timeout "$limit" "$t" "$work"
    programs=$((programs + 1))
done
if [ "$programs" -eq 0 ]; then
    echo "FAIL cuda suite: no test program in $BUILD/tests/cuda (make test-cuda builds them)"
    failed=$((failed + 1))
fi
for t in tests/cuda/*.sh; do
    [ "$(basename "$t")" = run.sh ] && continue
    suite_run "$(basename "$t" .sh)" timeout "$limit" bash "$t" "$work" "$PYTHON"
done
if [ -x "$BUILD"/tests/cuda_nccl ]; then
    # shellcheck disable=SC2086 # MPIRUN may carry options
    suite_run cuda_nccl timeout "$limit" $MPIRUN -np "$(gpus)" "$BUILD"/tests/cuda_nccl
fi
echo "GPU suite: ${SECONDS}s"
suite_end
