#!/usr/bin/env bash
# Runs every test program and reference comparison of the CPU suite; prints "N passed, N failed"
# last and exits non-zero on any failure (accounting: tests/suite.sh). The GPU tests
# (build/tests/cuda, tests/cuda) are built by make test and run on a GPU by make test-cuda; here
# they run on the emulated CUDA device (tests/cuda_emulated.sh, build-emu).
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# as dydit itself does (train/main.c): spinning OpenMP threads collapse under any other load
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
PYTHON=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/dydit-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
. tests/suite.sh
# BUILD=DIR and DYDIT=PROGRAM test another build (make test SANITIZE=1: build-san, build-san/dydit).
# The scripts call ./dydit and build/tests/... from the repository root, so they then run from a
# tree of links to the repository's entries in which ./dydit and build name that build's files.
BUILD=${BUILD:-build}
DYDIT=${DYDIT:-./dydit}
if [ "$BUILD" != build ] || [ "$DYDIT" != ./dydit ]; then
    root="$work/root"
    mkdir -p "$root"
    for entry in * .[!.]*; do
        [ -e "$entry" ] && [ "$entry" != dydit ] && [ "$entry" != build ] && ln -s "$PWD/$entry" "$root/$entry"
    done
    ln -s "$(realpath "$BUILD")" "$root/build"
    ln -s "$(realpath "$DYDIT")" "$root/dydit"
    cd "$root"
fi
# Sanitizer reports of a sanitized build go to files, so that none hides behind a test that expects
# a failure; any such file fails the suite. Leaks are not checked: die() exits without freeing.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:log_path=$work/sanitizer}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:log_path=$work/sanitizer}

# TESTS="NAME ..." runs only the named tests: programs as build/tests names them (test_ops), scripts
# without .sh (cli); make test-sanitize runs a subset this way. A name that matches no test fails.
TESTS=${TESTS:-}
ran=""
chosen() {
    [ -z "$TESTS" ] && return 0
    [[ " $TESTS " == *" $1 "* ]] || return 1
    ran="$ran $1"
}

if gpu_present; then
    echo "GPU tests are not part of this suite: make test-cuda runs them"
else
    echo "no GPU found (nvidia-smi -L): the GPU tests run on the emulated device only (make test-cuda on a GPU)"
fi
for t in build/tests/test_*; do
    [ -x "$t" ] && chosen "$(basename "$t")" || continue
    suite_run "$(basename "$t")" "$t" "$work"
done
for t in tests/*.sh; do
    case "$(basename "$t")" in run.sh | lib.sh | suite.sh) continue ;; esac
    chosen "$(basename "$t" .sh)" || continue
    suite_run "$(basename "$t" .sh)" bash "$t" "$work" "$PYTHON"
done
for name in $TESTS; do
    [[ " $ran " == *" $name "* ]] || { echo "FAIL $name: no such test (TESTS names it)"; failed=$((failed + 1)); }
done

for report in "$work"/sanitizer.*; do
    [ -e "$report" ] || continue
    echo "FAIL sanitizer report $(basename "$report"):"
    head -n 40 "$report" | sed 's/^/    /'
    failed=$((failed + 1))
done
suite_end
