#!/usr/bin/env bash
# Runs every test program and reference comparison of the CPU suite; prints "N passed, N failed"
# last and exits non-zero on any failure (accounting: tests/suite.sh). The GPU tests
# (build/tests/cuda, tests/cuda) are built by make test but run only by make test-cuda.
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# as dydit itself does (train/main.c): spinning OpenMP threads collapse under any other load
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
PYTHON=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/dydit-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
. tests/suite.sh

if gpu_present; then
    echo "GPU tests are not part of this suite: make test-cuda runs them"
else
    echo "GPU tests skipped: no GPU found (nvidia-smi -L); make test-cuda runs them on a GPU machine"
fi
for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    suite_run "$(basename "$t")" "$t" "$work"
done
for t in tests/*.sh; do
    case "$(basename "$t")" in run.sh | lib.sh | suite.sh) continue ;; esac
    suite_run "$(basename "$t" .sh)" bash "$t" "$work" "$PYTHON"
done
suite_end
