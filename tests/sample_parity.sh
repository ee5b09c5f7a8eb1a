#!/usr/bin/env bash
# dydit sample against the independent PyTorch reference sampler (tests/ref/sample_ref.py): the same
# initial latents and step noise (recorded with --trace) must give the same final latents, for DDPM
# and DDIM, with and without guidance, guiding channels 0-2 or all; plus the npz and grid outputs.
# Usage, from the repository root: bash tests/sample_parity.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/sample_parity.sh WORKDIR [PYTHON]}/sample
prefix=sample
source tests/lib.sh
python=${2:-/usr/bin/python3}
mkdir -p "$work"
status=0
"$python" tests/ref/make_case.py --out "$work/model" --depth 2 --hidden 48 --heads 3 --patch 2 --input-size 8 \
    --in-channels 3 --num-classes 5 --learn-sigma 1 --batch 2 --seed 21 >/dev/null || { echo "FAIL sample.case"; exit 1; }
"$python" tests/ref/make_case.py --out "$work/fixed" --depth 1 --hidden 32 --heads 2 --patch 2 --input-size 8 \
    --in-channels 3 --num-classes 5 --learn-sigma 0 --batch 2 --seed 22 >/dev/null || { echo "FAIL sample.case"; exit 1; }

# case NAME WEIGHTS_DIR SAMPLE_FLAGS -- REFERENCE_FLAGS
case_() {
    local name=$1 dir=$2
    shift 2
    local flags=() ref=()
    while [ "$1" != "--" ]; do flags+=("$1"); shift; done
    shift
    ref=("$@")
    if ! ./dydit sample --weights "$dir/weights.safetensors" --num 3 --batch 3 --classes 0,1,4 --seed 5 --quiet \
        --latents "$work/$name.latents.safetensors" --trace "$work/$name.trace.safetensors" "${flags[@]}" \
        >"$work/$name.log" 2>&1; then
        echo "FAIL sample.$name: dydit sample failed: $(tail -n 2 "$work/$name.log")"
        status=1
        return
    fi
    # measured errors are ~1e-6 (float32 against float64 over the steps); formula errors are O(1e-2)
    "$python" tests/ref/sample_ref.py --weights "$dir/weights.safetensors" --trace "$work/$name.trace.safetensors" \
        --latents "$work/$name.latents.safetensors" --case "$name" "${ref[@]}" || status=1
}

case_ ddpm_guided "$work/model" --steps 10 --cfg-scale 2.5 --clip-denoised 0 -- --sampler ddpm --spacing 10 \
    --cfg-scale 2.5
case_ ddpm_clipped "$work/model" --steps 10 --cfg-scale 2.5 --clip-denoised 1 -- --sampler ddpm --spacing 10 \
    --cfg-scale 2.5 --clip
case_ ddpm_unguided "$work/model" --steps 8 --cfg-scale 1 --clip-denoised 0 -- --sampler ddpm --spacing 8 --cfg-scale 1
case_ ddpm_all_channels "$work/model" --steps 6 --cfg-scale 3 --cfg-all-channels --clip-denoised 0 -- --sampler ddpm --spacing 6 \
    --cfg-scale 3 --cfg-all-channels
case_ ddim "$work/model" --sampler ddim --steps 10 --cfg-scale 2 -- --sampler ddim --spacing 10 --cfg-scale 2 --clip
case_ ddim_eta "$work/model" --sampler ddim --spacing ddim20 --eta 0.7 --cfg-scale 1.5 --clip-denoised 0 -- \
    --sampler ddim --spacing ddim20 --eta 0.7 --cfg-scale 1.5
case_ ddpm_fixed_variance "$work/fixed" --steps 7 --cfg-scale 2 --clip-denoised 0 -- --sampler ddpm --spacing 7 \
    --cfg-scale 2

# outputs: npz readable by numpy with the right shape and dtype; grid readable by PIL
if ./dydit sample --weights "$work/model/weights.safetensors" --num 5 --batch 2 --steps 4 --npz "$work/s.npz" \
    --grid "$work/s.png" --nrow 3 --quiet >"$work/out.log" 2>&1 &&
    "$python" -c '
import sys, numpy as np
from PIL import Image
a = np.load(sys.argv[1])["arr_0"]
g = Image.open(sys.argv[2])
sys.exit(0 if a.shape == (5, 8, 8, 3) and a.dtype == np.uint8 and g.size == (3 * 10 + 2, 2 * 10 + 2) else 1)' \
        "$work/s.npz" "$work/s.png"; then
    echo "PASS sample.npz_and_grid (arr_0 uint8 (5, 8, 8, 3); grid 3 x 2 tiles)"
else
    echo "FAIL sample.npz_and_grid: $(tail -n 2 "$work/out.log")"
    status=1
fi

W="$work/model/weights.safetensors"
expect_error needs_output "nothing to write" ./dydit sample --weights "$W"
expect_error bad_class "--classes: '9' is not a class in [0, 5)" ./dydit sample --weights "$W" --classes 1,9 \
    --npz "$work/x.npz"
if ls "$work"/x.npz* >/dev/null 2>&1; then echo "FAIL sample.no_output_after_error"; status=1; else
    echo "PASS sample.no_output_after_error"; fi
expect_error dynamic_needs_dydit "need DyDiT weights" ./dydit sample --weights "$W" --dynamic --npz "$work/x.npz"
expect_error trace_one_batch "--trace records one batch" ./dydit sample --weights "$W" --num 4 --batch 2 \
    --latents "$work/l.st" --trace "$work/t.st"
expect_error bad_spacing "sampling steps 'ddim7x'" ./dydit sample --weights "$W" --spacing ddim7x --npz "$work/x.npz"
"$python" tests/ref/make_case.py --out "$work/latent" --depth 1 --hidden 32 --heads 2 --patch 2 --input-size 4 \
    --in-channels 4 --num-classes 3 --batch 1 --seed 23 >/dev/null
expect_error latent_needs_vae "needs --vae" ./dydit sample --weights "$work/latent/weights.safetensors" \
    --grid "$work/x.png"

# a DyDiT samples with its dynamic engine and draws its masks and compute per timestep
"$python" tests/ref/make_case.py --out "$work/dydit" --dydit --depth 2 --hidden 48 --heads 3 --patch 2 --input-size 8 \
    --in-channels 3 --num-classes 5 --batch 2 --seed 24 >/dev/null
if ./dydit sample --weights "$work/dydit/weights.safetensors" --num 3 --steps 6 --grid "$work/d.png" \
    --save-masks "$work/masks" --quiet >"$work/d.log" 2>&1 && grep -q "ratio" "$work/d.log" &&
    [ "$(wc -l <"$work/masks/flops.csv")" -eq 7 ] && [ -s "$work/masks/flops.png" ] &&
    [ -s "$work/masks/token_masks.png" ]; then
    echo "PASS sample.dydit_masks_and_flops ($(tail -n 1 "$work/d.log" | cut -c1-100))"
else
    echo "FAIL sample.dydit_masks_and_flops: $(tail -n 2 "$work/d.log")"
    status=1
fi
# token_masks.png is labelled: dark text in the title band, the two legend swatches in their colours,
# a label left of each recorded step's row, and the grid's tiles below the legend
if "$python" - "$work/masks/token_masks.png" "$work/masks/token_masks.txt" >"$work/masks.log" 2>&1 <<'PY'; then
import sys
import numpy as np
from PIL import Image
img = np.asarray(Image.open(sys.argv[1]).convert("RGB")).astype(int)
rows = len(open(sys.argv[2]).read().split("\n")[2:-1])  # recorded steps, after the two header lines
dark = (img.sum(axis=2) < 200)
assert dark[8:16].any(), "no title text"
assert (img[20:28, 8:16] == [255, 40, 0]).all() and (img[32:40, 8:16] == [0, 40, 255]).all(), "legend swatches"
labels = dark[44:, :40].any(axis=1)  # the row labels' column
runs = np.flatnonzero(np.diff(np.concatenate([[0], labels.astype(int), [0]])) == 1)
assert len(runs) == rows, (len(runs), rows)
print(f"{img.shape[1]}x{img.shape[0]}, {rows} labelled rows")
PY
    echo "PASS sample.token_masks_labelled ($(cat "$work/masks.log"))"
else
    echo "FAIL sample.token_masks_labelled: $(tail -n 1 "$work/masks.log")"
    status=1
fi
if ./dydit flops --weights "$work/dydit/weights.safetensors" --steps 5 --num 2 >"$work/f.log" 2>&1 &&
    grep -q "^average" "$work/f.log" && [ "$(grep -c '^ *[0-9]' "$work/f.log")" -eq 5 ]; then
    echo "PASS sample.flops_per_timestep ($(grep '^average' "$work/f.log" | cut -c1-90))"
else
    echo "FAIL sample.flops_per_timestep: $(tail -n 2 "$work/f.log")"
    status=1
fi
exit $status
