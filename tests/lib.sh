# tests/lib.sh: helpers shared by the test scripts. Set `prefix` (the name before every PASS/FAIL
# line) and `work` (a scratch directory) before sourcing; `status` becomes 1 on any failure.
status=${status:-0}

pass() { echo "PASS $prefix.$1${2:+ ($2)}"; }
fail() {
    echo "FAIL $prefix.$1: $2"
    status=1
}

# expect_error NAME WORDS COMMAND...: the command must exit non-zero with exactly one stderr line,
# starting with "error: " and containing WORDS.
expect_error() {
    local name=$1 words=$2
    shift 2
    "$@" >"$work/out.txt" 2>"$work/err.txt"
    local rc=$? lines
    lines=$(wc -l <"$work/err.txt")
    if [ "$rc" -ne 0 ] && [ "$lines" -eq 1 ] && grep -q '^error: ' "$work/err.txt" && grep -qF -- "$words" "$work/err.txt"; then
        pass "$name" "$(head -c 120 "$work/err.txt")"
    else
        fail "$name" "status $rc, $lines stderr lines: $(head -c 300 "$work/err.txt")"
    fi
}

# same_checkpoints NAME DIR_A DIR_B: the tensor files of two checkpoints (model, EMA, AdamW moments)
# are bitwise equal.
same_checkpoints() {
    local name=$1 a=$2 b=$3 f
    for f in model ema optimizer; do
        if ! cmp -s "$a/$f.safetensors" "$b/$f.safetensors"; then
            fail "$name" "$f.safetensors differs between $a and $b"
            return
        fi
    done
    pass "$name" "model, EMA and AdamW moments bitwise equal"
}
