#!/usr/bin/env bash
# Runs every test program and reference comparison; prints "N passed, N failed" last and exits
# non-zero on any failure. Each program prints "PASS name" / "FAIL name: why" lines; a program that
# exits non-zero without printing a FAIL line counts as one failure.
set -u
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# as dydit itself does (train/main.c): spinning OpenMP threads collapse under any other load
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
PYTHON=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/dydit-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
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
passed=0
failed=0
# Sanitizer reports of a sanitized build go to files, so that none hides behind a test that expects
# a failure; any such file fails the suite. Leaks are not checked: die() exits without freeing.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:log_path=$work/sanitizer}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1:log_path=$work/sanitizer}

run() { # run NAME COMMAND...
    local name=$1; shift
    local log="$work/$name.log"
    local start=$SECONDS
    "$@" >"$log" 2>&1
    local rc=$?
    local p f
    p=$(grep -c '^PASS ' "$log")
    f=$(grep -c '^FAIL ' "$log")
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        echo "FAIL $name: exited with status $rc" >>"$log"
        f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    printf '%-28s %3d passed %3d failed  (%ds)\n' "$name" "$p" "$f" $((SECONDS - start))
    if [ "$f" -ne 0 ]; then sed 's/^/    /' "$log" | grep -v '^    PASS ' | tail -n 40; fi
}

for t in build/tests/test_*; do
    [ -x "$t" ] || continue
    run "$(basename "$t")" "$t" "$work"
done
for t in tests/*.sh; do
    [ "$(basename "$t")" = run.sh ] && continue
    run "$(basename "$t" .sh)" bash "$t" "$work" "$PYTHON"
done

for report in "$work"/sanitizer.*; do
    [ -e "$report" ] || continue
    echo "FAIL sanitizer report $(basename "$report"):"
    head -n 40 "$report" | sed 's/^/    /'
    failed=$((failed + 1))
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
