#!/usr/bin/env bash
# The SD VAE (model/vae.c) against the independent PyTorch reference tests/ref/vae_ref.py.
# Usage, from the repository root: bash tests/vae_parity.sh WORKDIR [PYTHON]
# For tiny random VAEs in each naming (diffusers; the legacy diffusers attention names; CompVis,
# with 1x1-conv attention weights and decoder levels numbered from the top), the encoder runs on
# 32x32 images and the decoder on their latents, from the whole file and from encoder-only and
# decoder-only files; damaged files must fail with one line; the full SD VAE configuration, built
# from shapes alone, must have docs/algorithm.md 8.5's size.
# The reference runs in float64, so the norm-wise errors measure the C float32 arithmetic: about
# 1e-6 through the 30-odd layers of these VAEs, while a wrong index, padding, group or scale gives
# errors of 1e-3 and more. The tolerance is 1e-5, as for the DiT parity.
set -u
work=${1:?usage: bash tests/vae_parity.sh WORKDIR [PYTHON]}/vae_parity
prefix=vae
source tests/lib.sh
python=${2:-/usr/bin/python3}
driver=build/tests/parity_vae
tol=1e-5
status=0
mkdir -p "$work"

if [ ! -x "$driver" ]; then
    echo "FAIL vae.driver: $driver not found; build it with make"
    exit 1
fi

# run_and_compare NAME WHAT WEIGHTS INPUT REFERENCE
run_and_compare() {
    local name=$1 what=$2 weights=$3 input=$4 reference=$5 out=$work/$1.safetensors
    if ! "$driver" "$what" "$weights" "$input" "$out" 2>"$work/err.txt"; then
        fail "$name" "parity_vae $what failed: $(head -c 300 "$work/err.txt")"
        return
    fi
    "$python" tests/ref/compare.py "$out" "$reference" --tol "$tol" --case "vae.$name" | grep -v '^worst' || status=1
}

# parity_case NAME NAMES CHANNELS GROUPS LAYERS
parity_case() {
    local name=$1 dir=$work/$1
    if ! "$python" tests/ref/vae_case.py case --out "$dir" --names "$2" --channels "$3" --groups "$4" --layers "$5"; then
        fail "$name" "vae_case.py failed"
        return
    fi
    run_and_compare "$name.encode" encode "$dir/vae.safetensors" "$dir/images.safetensors" "$dir/encode_ref.safetensors"
    run_and_compare "$name.decode" decode "$dir/vae.safetensors" "$dir/latents.safetensors" "$dir/decode_ref.safetensors"
    run_and_compare "$name.encoder_only" encode "$dir/encoder.safetensors" "$dir/images.safetensors" \
        "$dir/encode_ref.safetensors"
    run_and_compare "$name.decoder_only" decode "$dir/decoder.safetensors" "$dir/latents.safetensors" \
        "$dir/decode_ref.safetensors"
}

parity_case diffusers diffusers 16,32,48 8 2
parity_case legacy legacy 32,64 32 1
parity_case compvis compvis 16,32,32 8 2

dir=$work/diffusers
expect_error no_decoder "holds no decoder" "$driver" decode "$dir/encoder.safetensors" "$dir/latents.safetensors" \
    "$work/x.safetensors"
expect_error no_encoder "holds no encoder" "$driver" encode "$dir/decoder.safetensors" "$dir/images.safetensors" \
    "$work/x.safetensors"
"$python" -c "import sys; sys.path.insert(0, 'tests/ref'); import numpy, safetensors_np
safetensors_np.save('$work/images30.safetensors', {'images': numpy.zeros((1, 3, 30, 30), numpy.float32)})"
expect_error image_size "sides that are multiples of 4" "$driver" encode "$dir/vae.safetensors" \
    "$work/images30.safetensors" "$work/x.safetensors"
while read -r fault words; do
    expect_error "broken_$fault" "$words" "$driver" info "$dir/broken-$fault.safetensors"
done <<'LIST'
missing missing tensor 'decoder.up_blocks.0.resnets.1.conv2.bias'
shape tensor 'encoder.conv_out.bias' has shape [7], expected [8]
unexpected unexpected tensor 'decoder.mid_block.resnets.0.extra.weight'
nan non-finite value
no_mid no mid block
not_vae not SD VAE
groups which 7 groups do not divide
LIST
# diffusers' up block 0 is CompVis' up.2 of three levels
expect_error compvis_missing "missing tensor 'decoder.up.2.block.1.conv2.bias'" "$driver" info \
    "$work/compvis/broken-missing.safetensors"

# docs/algorithm.md 8.5: 83,653,863 parameters in 248 tensors; the reference's shapes, and the C loader's
# inference from a file with those shapes (zero weights in a sparse file, F32, F16 and BF16).
spec="parameters 83653863 tensors 248 encoder 34163592 quant_conv 72 post_quant_conv 20 decoder 49490179"
for names in diffusers compvis; do
    file=$work/full-$names.safetensors
    got=$("$python" tests/ref/vae_case.py full-size --out "$file" --names "$names")
    [ "$got" = "$spec" ] && pass "full_size.reference.$names" "$got" || fail "full_size.reference.$names" "$got"
    got=$("$driver" info "$file" 2>&1)
    want="levels 4 channels 128,256,512,512 layers 2 latent 4 image 3 groups 32 encoder 1 decoder 1 parameters 83653863 tensors 248"
    [ "$got" = "$want" ] && pass "full_size.loader.$names" "$got" || fail "full_size.loader.$names" "$got"
    rm -f "$file"
done
exit $status
