# tests/suite.sh: the PASS/FAIL accounting of a test suite (tests/run.sh, tests/cuda/run.sh).
# Set `work` (a scratch directory) before sourcing; `suite_run NAME COMMAND...` runs one test
# program or script and prints its counts, `suite_end` prints "N passed, N failed" and returns
# non-zero on any failure. Each test prints "PASS name" / "FAIL name: why" lines; a test that exits
# non-zero without printing a FAIL line counts as one failure.
passed=0
failed=0

suite_run() { # suite_run NAME COMMAND...
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

suite_end() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

# 0 when nvidia-smi lists at least one GPU.
gpu_present() { nvidia-smi -L 2>/dev/null | grep -q '^GPU '; }
