#!/usr/bin/env bash
# The way back to PyTorch: a dydit weights file -> tools/export_checkpoint.py -> .pt ->
# load_state_dict(strict=True) into modules with the official DiT/DyDiT layout -> the PyTorch
# reference forward on the loaded tensors, which must equal `dydit forward` on the dydit file
# (1e-5 relative, DyDiT masks exactly), for a DiT and a DyDiT. Also: `dydit convert` refuses an
# output it would write in the wrong format and creates missing folders; the exporter refuses
# what is not a dydit weights file, with one error line each.
# Usage, from the repository root: bash tests/export.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/export.sh WORKDIR [PYTHON]}/export
python=${2:-/usr/bin/python3}
prefix=export
mkdir -p "$work"
. tests/lib.sh
small=(--depth 2 --hidden 48 --heads 3 --patch 2 --input-size 8 --in-channels 3 --num-classes 5 --batch 3)

# round_trip NAME MAKE_CASE_FLAGS...: random weights made by the reference, written by dydit,
# exported, loaded strictly, run by the reference and compared with dydit's forward.
round_trip() {
    local name=$1 dir=$work/$1
    shift
    if ! "$python" tests/ref/make_case.py --out "$dir" "$@" >"$dir.log" 2>&1 ||
        ! ./dydit convert --in "$dir/weights.safetensors" --out "$dir/dydit.safetensors" >>"$dir.log" 2>&1 ||
        ! ./dydit forward --weights "$dir/dydit.safetensors" --inputs "$dir/forward_in.safetensors" \
            --out "$dir/dydit_out.safetensors" >>"$dir.log" 2>&1; then
        fail "$name" "making the case: $(tail -n 2 "$dir.log" | tr '\n' ' ')"
        return
    fi
    if ! "$python" tools/export_checkpoint.py "$dir/dydit.safetensors" "$dir/pt/$name.pt" >>"$dir.log" 2>&1 ||
        ! "$python" tests/ref/official_load.py "$dir/pt/$name.pt" "$dir/dydit.safetensors" \
            "$dir/forward_in.safetensors" "$dir/torch_out.safetensors" >"$dir/load.txt" 2>&1; then
        fail "$name" "export or strict load: $(tail -n 2 "$dir.log" "$dir/load.txt" | tr '\n' ' ')"
        return
    fi
    if "$python" tests/ref/compare.py "$dir/dydit_out.safetensors" "$dir/torch_out.safetensors" --tol 1e-5 \
        --case "$name" >"$dir/compare.txt" 2>&1; then
        pass "$name" "$(cat "$dir/load.txt"); $(tail -n 1 "$dir/compare.txt")"
    else
        fail "$name" "$(cat "$dir/compare.txt" | tr '\n' ' ')"
    fi
}
round_trip dit "${small[@]}" --seed 21
round_trip dydit "${small[@]}" --seed 22 --dydit

# dydit convert: safetensors under a .pt name would only fail later in torch.load.
dit=$work/dit/weights.safetensors
expect_error convert_pt "tools/export_checkpoint.py" ./dydit convert --in "$dit" --out "$work/x.pt"
[ -e "$work/x.pt" ] && fail convert_pt_no_file "$work/x.pt was written"
rm -rf "$work/new"
if ./dydit convert --in "$dit" --out "$work/new/dir/x.safetensors" >"$work/out.txt" 2>&1 &&
    cmp -s "$work/new/dir/x.safetensors" "$work/dit/dydit.safetensors"; then
    pass convert_new_dir "the folders made, the same bytes as into an existing folder"
else
    fail convert_new_dir "$(cat "$work/out.txt")"
fi

# The exporter reads dydit's own files only, and never leaves a partial output.
expect_error export_missing "cannot read" "$python" tools/export_checkpoint.py "$work/none.safetensors" "$work/y.pt"
"$python" tests/ref/make_case.py --out "$work/bare" "${small[@]}" --seed 23 --no-metadata >/dev/null 2>&1
expect_error export_not_dydit "dydit convert" "$python" tools/export_checkpoint.py \
    "$work/bare/weights.safetensors" "$work/y.pt"
head -c 100 "$work/dit/dydit.safetensors" >"$work/truncated.safetensors"
expect_error export_truncated "does not fit" "$python" tools/export_checkpoint.py "$work/truncated.safetensors" \
    "$work/y.pt"
expect_error export_onto_input "overwrite" "$python" tools/export_checkpoint.py "$work/dit/dydit.safetensors" \
    "$work/dit/dydit.safetensors"
[ -e "$work/y.pt" ] && fail export_no_file "$work/y.pt was written"
exit $status
