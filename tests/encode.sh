#!/usr/bin/env bash
# dydit encode end to end: Fashion-MNIST against an independent gzip + numpy reading, resuming an
# interrupted or damaged run, a generated folder of awkward JPEG/PNG files against PIL's ADM center
# crop (corrupt files reported and skipped), flip storage, grayscale, the SD VAE path against the
# PyTorch reference, and one-line errors.
# Usage, from the repository root: bash tests/encode.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/encode.sh WORKDIR [PYTHON]}/encode
prefix=encode
source tests/lib.sh
python=${2:-/usr/bin/python3}
fmdir=/usr/share/datasets/fashion-mnist
check=tests/ref/encode_check.py
rm -rf "$work"
mkdir -p "$work"

# run_check NAME COMMAND...: a reference check printing one line, ok or error
run_check() {
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then pass "$name" "$(echo "$out" | tail -n 1)"; else fail "$name" "$(echo "$out" | tail -n 3)"; fi
}

inode() { stat -c %i "$1"; }

if ./dydit encode --help | grep -q '^usage: dydit encode'; then pass help; else fail help "no usage line"; fi

# --- Fashion-MNIST test split, F32 and F16 --------------------------------------------------------
fm=$work/fm
if ./dydit encode --source fashion-mnist --split test --out "$fm" --shard-size 3000 --dtype f32 \
    >"$work/fm.out" 2>"$work/fm.err" && grep -q '10000 samples (1x32x32 F32, storage sample, encoder identity) in 4 shards' "$work/fm.out"; then
    pass fashion_mnist_test "$(tail -n 1 "$work/fm.out")"
else
    fail fashion_mnist_test "$(tail -n 3 "$work/fm.err" "$work/fm.out")"
fi
run_check fashion_mnist_f32_pixels "$python" $check mnist "$fm" $fmdir test
./dydit encode --source fashion-mnist --split test --out "$work/fm16" --quiet >/dev/null 2>"$work/fm16.err" ||
    fail fashion_mnist_f16 "$(cat "$work/fm16.err")"
run_check fashion_mnist_f16_pixels "$python" $check mnist "$work/fm16" $fmdir test

# --- resuming: what a killed run leaves (no index, a missing shard, a half-written shard, a temp file)
keep0=$(inode "$fm/shard-00000.safetensors")
keep3=$(inode "$fm/shard-00003.safetensors")
rm "$fm/index.json" "$fm/shard-00002.safetensors"
head -c 5000 "$fm/shard-00001.safetensors" >"$work/cut" && mv "$work/cut" "$fm/shard-00001.safetensors"
echo partial >"$fm/shard-00002.safetensors.tmp.Ab12Cd"
./dydit encode --source fashion-mnist --split test --out "$fm" --shard-size 3000 --dtype f32 >"$work/re.out" 2>"$work/re.err"
rc=$?
if [ $rc -eq 0 ] && grep -q 'encoded 6000 images' "$work/re.out" && grep -q 'reused 2 shards (4000 images)' "$work/re.out" &&
    [ "$(inode "$fm/shard-00000.safetensors")" = "$keep0" ] && [ "$(inode "$fm/shard-00003.safetensors")" = "$keep3" ] &&
    [ -f "$fm/index.json" ] && ! ls "$fm"/*.tmp.* >/dev/null 2>&1 &&
    grep -q 'warning: .*shard-00001.safetensors: .*encoding it again' "$work/re.err"; then
    pass resume_keeps_finished_shards "$(tail -n 1 "$work/re.out")"
else
    fail resume_keeps_finished_shards "status $rc: $(cat "$work/re.out") $(tail -n 3 "$work/re.err")"
fi
run_check resume_result_pixels "$python" $check mnist "$fm" $fmdir test
# a finished set: everything reused
if ./dydit encode --source fashion-mnist --split test --out "$fm" --shard-size 3000 --dtype f32 2>/dev/null |
    grep -q 'encoded 0 images.*reused 4 shards'; then pass rerun_finished_set; else fail rerun_finished_set "not all reused"; fi
expect_error other_settings "was written with other settings (item_count 3000 vs 2000)" \
    ./dydit encode --source fashion-mnist --split test --out "$fm" --shard-size 2000 --dtype f32
# a real kill, wherever it lands, then a re-run finishes the train split
fmt=$work/fm-train
(timeout --foreground -s KILL 0.4 ./dydit encode --source fashion-mnist --split train --out "$fmt" --shard-size 4000 --workers 1) \
    >/dev/null 2>&1
before=$(ls "$fmt" 2>/dev/null | grep -c '^shard-.*safetensors$')
if ./dydit encode --source fashion-mnist --split train --out "$fmt" --shard-size 4000 >"$work/kill.out" 2>"$work/kill.err"; then
    pass resume_after_kill "$before of 15 shards existed after the kill; $(tail -n 1 "$work/kill.out")"
else
    fail resume_after_kill "$(tail -n 3 "$work/kill.err")"
fi
run_check resume_after_kill_pixels "$python" $check mnist "$fmt" $fmdir train
rm -rf "$fmt" # 120 MB

# --- a folder of JPEG/PNG files --------------------------------------------------------------------
img=$work/images
run_check make_folder "$python" $check make-folder "$img"
./dydit encode --source folder --input "$img" --out "$work/f64" --encoder identity --image-size 64 --dtype f32 \
    --shard-size 4 >"$work/folder.out" 2>"$work/folder.err"
rc=$?
warnings=$(grep -c '^warning: ' "$work/folder.err")
# the two broken files are skipped; the 20x30 one is upscaled (one warning for the run)
if [ $rc -eq 0 ] && [ "$warnings" -eq 3 ] && grep -q 'zebra/corrupt.jpg: bad JPEG' "$work/folder.err" &&
    grep -q 'zebra/notimage.jpg: neither a JPEG nor a PNG' "$work/folder.err" &&
    grep -q 'zebra/upscale.png: 20x30 image upscaled to --image-size 64' "$work/folder.err" &&
    grep -q 'skipped 2 unreadable images; ignored 1 non-image files; upscaled 1 images' "$work/folder.out" &&
    grep -q '10 samples (3x64x64 F32' "$work/folder.out"; then
    pass folder_corrupt_files_skipped "$(grep '^warning' "$work/folder.err" | tr '\n' ' ' | head -c 200)"
else
    fail folder_corrupt_files_skipped "status $rc, $warnings warnings: $(tail -n 4 "$work/folder.err") $(cat "$work/folder.out")"
fi
run_check folder_center_crop_vs_pil "$python" $check folder "$work/f64" "$img" 64
./dydit encode --source folder --input "$img" --out "$work/f40" --encoder identity --image-size 40 --dtype f32 \
    --flip-storage --quiet >/dev/null 2>&1
run_check folder_flip_storage_vs_pil "$python" $check folder "$work/f40" "$img" 40 --flip
./dydit encode --source folder --input "$img" --out "$work/fgray" --encoder identity --image-size 48 --dtype f32 \
    --grayscale --quiet >/dev/null 2>&1
run_check folder_grayscale_vs_pil "$python" $check folder "$work/fgray" "$img" 48 --grayscale

# --- the SD VAE encoder: a small random VAE against the PyTorch reference ------------------------
vc=$work/vae
if "$python" tests/ref/vae_case.py case --out "$vc" --channels 16,32 --groups 8 --layers 1 --size 16 --batch 1 \
    >"$work/vae_case.out" 2>&1; then
    ./dydit encode --source folder --input "$img" --out "$work/vae-posterior" --vae "$vc/vae.safetensors" \
        --image-size 16 --flip-storage --dtype f32 --batch 3 --quiet >/dev/null 2>&1
    ./dydit encode --source folder --input "$img" --out "$work/vae-sample" --vae "$vc/vae.safetensors" \
        --image-size 16 --dtype f32 --seed 3 --quiet >/dev/null 2>&1
    run_check sd_vae_vs_reference "$python" $check vae "$work/vae-posterior" "$work/vae-sample" "$img" 16 \
        "$vc/vae.safetensors" 16,32 1 8
    expect_error vae_without_encoder "holds no encoder" ./dydit encode --source folder --input "$img" \
        --out "$work/x" --vae "$vc/decoder.safetensors" --image-size 16
    expect_error vae_image_size "side is a multiple of 2; --image-size is 15" ./dydit encode --source folder \
        --input "$img" --out "$work/x" --vae "$vc/vae.safetensors" --image-size 15
else
    fail sd_vae_case "vae_case.py failed: $(tail -n 2 "$work/vae_case.out")"
fi

# --- errors ------------------------------------------------------------------------------------------
expect_error no_out "--out is required" ./dydit encode --source fashion-mnist
expect_error bad_source "--source must be fashion-mnist or folder" ./dydit encode --source cifar --out "$work/x"
expect_error folder_needs_input "--source folder needs --input" ./dydit encode --source folder --out "$work/x"
expect_error missing_folder "cannot open folder" ./dydit encode --source folder --input "$work/none" --out "$work/x"
expect_error missing_dataset "apt-get install dataset-fashion-mnist" \
    ./dydit encode --source fashion-mnist --fashion-mnist-dir "$work/none" --out "$work/x"
expect_error bad_dtype "--dtype must be f16 or f32" ./dydit encode --out "$work/x" --dtype f8
expect_error vae_needs_weights "--encoder sd-vae needs --vae" \
    ./dydit encode --source folder --input "$img" --out "$work/x"
expect_error unknown_encoder "unknown --encoder 'clip'" ./dydit encode --out "$work/x" --encoder clip
