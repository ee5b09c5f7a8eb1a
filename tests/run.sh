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
passed=0
failed=0

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

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
