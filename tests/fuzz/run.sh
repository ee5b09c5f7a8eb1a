#!/usr/bin/env bash
# Runs every libFuzzer target of BUILD for SECONDS each, starting from seeds made of valid files
# (tests/corrupt/make_corpus.py --fixtures, and a shard directory written by ./dydit encode).
# Prints the executions per target; exits non-zero when a target finds a fault (its reproducer is
# left in the printed work directory). Usage, from the repository root:
#   tests/fuzz/run.sh BUILD SECONDS
set -u
build=${1:?usage: tests/fuzz/run.sh BUILD SECONDS}
seconds=${2:?usage: tests/fuzz/run.sh BUILD SECONDS}
python=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/dydit-fuzz.XXXXXX")
fix="$work/fixtures"
"$python" tests/corrupt/make_corpus.py --fixtures "$fix" || exit 1
./dydit encode --source folder --input "$fix/images" --encoder identity --image-size 8 --dtype f16 --shard-size 4 \
    --workers 1 --out "$fix/shards" --quiet >/dev/null || exit 1
seed() { # seed TARGET FILE...
    local target=$1
    shift
    mkdir -p "$work/seeds/$target"
    cp "$@" "$work/seeds/$target/"
}
seed safetensors "$fix/latents.safetensors" "$fix/shards/shard-00000.safetensors"
seed shard "$fix"/shards/*.safetensors
seed idx "$fix"/idx/*.gz
gunzip -c "$fix/idx/t10k-labels-idx1-ubyte.gz" >"$work/seeds/idx/labels-plain"
seed json "$fix/shards/index.json"
head -c 4000 "$fix/shards/shard-00000.safetensors" | tail -c +9 | tr -d '\0' >"$work/seeds/json/header.json"
seed image "$fix"/images/a/*.png "$fix/good.jpg"
seed config configs/*.conf

status=0
for target in "$build"/fuzz_*; do
    name=${target##*/fuzz_}
    mkdir -p "$work/corpus/$name" "$work/crash/$name"
    "$target" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=65536 -timeout=10 \
        -artifact_prefix="$work/crash/$name/" "$work/corpus/$name" "$work/seeds/$name" >"$work/$name.log" 2>&1
    rc=$?
    runs=$(grep -o 'Done [0-9]* runs' "$work/$name.log" | grep -o '[0-9]*')
    if [ "$rc" -eq 0 ]; then
        printf '%-12s %10s executions in %s s, corpus %s inputs\n' "$name" "${runs:-?}" "$seconds" \
            "$(ls "$work/corpus/$name" | wc -l)"
    else
        echo "FAIL fuzz_$name (status $rc), reproducer in $work/crash/$name:"
        grep -m 1 -A 12 'ERROR' "$work/$name.log" | sed 's/^/    /'
        status=1
    fi
done
[ "$status" -eq 0 ] && rm -rf "$work"
exit $status
