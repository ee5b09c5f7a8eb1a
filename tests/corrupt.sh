#!/usr/bin/env bash
# Broken inputs through the real dydit commands: tests/corrupt/make_corpus.py derives every case
# from a valid fixture made here (a tiny model, a shard directory, a checkpoint, IDX files, an
# image tree, config files, output paths) by one defect. Each case must end within a time limit
# with a non-zero status below 128 (no signal, no sanitizer abort) and exactly one stderr line
# "error: ..." that contains the case's name, which every path of the case holds, so the message
# names the broken file; an undecodable image in a folder tree is skipped with one such warning
# line instead (dydit encode's policy). The fixtures themselves must go through the same commands without error.
# Usage, from the repository root: bash tests/corrupt.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/corrupt.sh WORKDIR [PYTHON]}/corrupt
prefix=corrupt
source tests/lib.sh
python=${2:-/usr/bin/python3}
fix="$work/fixtures"
mkdir -p "$fix"
limit=${CORRUPT_TIMEOUT:-60}

small=(--depth 1 --hidden 32 --heads 2 --patch 2 --in-channels 3 --input-size 8 --num-classes 2)
quiet=(--quiet --log /dev/null)
"$python" tests/corrupt/make_corpus.py --fixtures "$fix" || fail fixtures "make_corpus.py --fixtures failed"
./dydit encode --source folder --input "$fix/images" --encoder identity --image-size 8 --dtype f32 --shard-size 4 \
    --workers 1 --out "$fix/shards" --quiet >/dev/null 2>"$work/setup.err" &&
    ./dydit train "${small[@]}" --data "$fix/shards" --steps 2 --batch 2 --out "$fix/run" "${quiet[@]}" \
        >/dev/null 2>>"$work/setup.err" &&
    cp "$fix/run/model.safetensors" "$fix/model.safetensors" &&
    ./dydit train --depth 1 --hidden 64 --heads 2 --patch 2 --in-channels 3 --input-size 8 --num-classes 2 \
        --data "$fix/shards" --steps 1 --batch 2 --out "$fix/other" "${quiet[@]}" >/dev/null 2>>"$work/setup.err" &&
    cp "$fix/other/model.safetensors" "$fix/other_model.safetensors" ||
    fail fixtures "$(tail -n 3 "$work/setup.err")"

# ./dydit, killed when it runs past the limit (status 137)
dydit_limited() { timeout -s KILL "$limit" ./dydit "$@"; }

# run_kind KIND PATH: the dydit command that reads a file of this kind.
run_kind() {
    local kind=$1 path=$2 scratch="$work/scratch"
    rm -rf "$scratch" && mkdir -p "$scratch"
    case $kind in
    weights) dydit_limited sample --weights "$path" --num 1 --steps 2 --latents "$scratch/s.safetensors" --quiet ;;
    convert) dydit_limited convert --in "$path" --out "$scratch/c.safetensors" ;;
    shards | latents) dydit_limited train "${small[@]}" --data "$path" --steps 1 --batch 2 "${quiet[@]}" ;;
    checkpoint) dydit_limited train --resume "$path" --data "$fix/shards" --steps 3 --out "$scratch/run" "${quiet[@]}" ;;
    idx) dydit_limited encode --source fashion-mnist --split test --fashion-mnist-dir "$path" --image-size 28 --workers 1 \
        --out "$scratch/enc" --quiet ;;
    images) dydit_limited encode --source folder --input "$path" --encoder identity --image-size 8 --workers 1 \
        --out "$scratch/enc" --quiet ;;
    config) dydit_limited train --config "$path" ;;
    npz) dydit_limited sample --weights "$fix/model.safetensors" --num 1 --steps 2 --npz "$path" --quiet ;;
    grid) dydit_limited sample --weights "$fix/model.safetensors" --num 1 --steps 2 --grid "$path" --quiet ;;
    train_out) dydit_limited train "${small[@]}" --data "$fix/shards" --steps 1 --batch 2 --out "$path" "${quiet[@]}" ;;
    *) echo "unknown kind $kind" >&2 && return 2 ;;
    esac
}

# the valid fixtures pass through every command
for kind_path in "weights model.safetensors" "convert model.safetensors" "shards shards" "checkpoint run" "idx idx" "images images"; do
    set -- $kind_path
    if run_kind "$1" "$fix/$2" >"$work/ok.out" 2>"$work/ok.err"; then
        pass "valid_$1"
    else
        fail "valid_$1" "$(tail -n 3 "$work/ok.err")"
    fi
done

rm -rf "$work/corpus"
count=$("$python" tests/corrupt/make_corpus.py "$fix" "$work/corpus") || fail corpus "make_corpus.py failed"
pass corpus_size "$count broken inputs"
bad=0
checks=0
# check NAME KIND PATH
check() {
    local name=$1 kind=$2 path=$3 start=$SECONDS rc lines why
    checks=$((checks + 1))
    run_kind "$kind" "$path" </dev/null >"$work/case.out" 2>"$work/case.err"
    rc=$?
    lines=$(wc -l <"$work/case.err")
    if [ "$kind" = images ]; then
        # dydit encode skips an image it cannot decode with a one-line warning naming it (a large
        # tree may hold a few broken files); the six good images of the tree are encoded
        if [ "$rc" -ne 0 ] || [ "$lines" -ne 1 ] || ! grep -q '^warning: .*'"$name"'.*(skipped)$' "$work/case.err"; then
            why="status $rc, $lines stderr lines, want one 'warning: ... (skipped)' naming the file"
        elif ! grep -q '"count": 6,' "$work/scratch/enc/index.json"; then
            why="the index does not count the six good images"
        else
            why=""
        fi
    elif [ "$rc" -eq 0 ]; then
        why="accepted (status 0)"
    elif [ "$rc" -ge 124 ]; then
        why="status $rc (signal or timeout after $((SECONDS - start)) s)"
    elif [ "$lines" -ne 1 ] || ! grep -q '^error: ' "$work/case.err"; then
        why="status $rc, $lines stderr lines"
    elif ! grep -qF -- "$name" "$work/case.err"; then
        why="the message does not name the file"
    else
        why=""
    fi
    if [ -z "$why" ]; then
        pass "$kind.$name" "$(head -c 150 "$work/case.err")"
    else
        fail "$kind.$name" "$why: $(head -c 400 "$work/case.err" | tr '\n' '|')"
        bad=$((bad + 1))
    fi
}
while IFS=$'\t' read -r name kind path; do
    check "$name" "$kind" "$path"
    # the weights reader serves sample and convert alike; convert must refuse the same files
    [ "$kind" = weights ] && check "$name" convert "$path"
done <"$work/corpus/manifest.tsv"
echo "corpus: $count broken inputs, $checks dydit runs, $bad mishandled"
exit $status
