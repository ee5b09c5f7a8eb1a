#!/usr/bin/env bash
# Every command on the guarded CPU backend (--device cpu-guarded: backend memory closed to the host
# outside the ops) must finish and write bitwise what it writes with --device cpu: the same
# arithmetic, so any difference or crash means host code reached backend memory directly or handed
# an op a host pointer, which a GPU backend would not survive. Covered, on tiny models: DiT
# training; DyDiT stage 1 (micro-batches, FLOPs groups over the passes) with a checkpoint and a
# resume from it; stage 2 with ZeRO-1 resumed from its run directory; DDPM and DDIM sampling with
# guidance, static and dynamic, to npz, grid, latents and mask pictures through a tiny VAE; dydit
# flops --weights, grad and forward; encode and decode through the VAE, and a run on the encoded
# shards (the loader thread); and, under mpirun, 2 ranks summing gradients through the host-staging
# path, with and without ZeRO-1. Also the one-line errors of --device and --precision.
# Usage, from the repository root: bash tests/device_guarded.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/device_guarded.sh WORKDIR [PYTHON]}/device_guarded
prefix=guarded
source tests/lib.sh
python=${2:-/usr/bin/python3}
rm -rf "$work"
mkdir -p "$work/cpu" "$work/cpu-guarded"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# both NAME FUNCTION: FUNCTION DEVICE DIR once per device, outputs under $work/DEVICE
both() {
    local name=$1 fn=$2 dev
    for dev in cpu cpu-guarded; do
        if ! "$fn" "$dev" "$work/$dev" >"$work/$dev/$name.log" 2>&1; then
            fail "$name" "--device $dev failed: $(tail -n 2 "$work/$dev/$name.log" | tr '\n' ' ')"
            return 1
        fi
    done
    pass "$name.runs"
}

# same_tensors NAME FILE...: each FILE (relative to the device directories) holds the same tensors
same_tensors() {
    local name=$1 f args=()
    shift
    for f in "$@"; do args+=("$name.$(echo "${f%.safetensors}" | tr / _)" "$work/cpu/$f" "$work/cpu-guarded/$f"); done
    "$python" tests/ref/same_tensors.py guarded "${args[@]}" || status=1
}

# same_bytes NAME FILE...: each FILE is byte for byte the same
same_bytes() {
    local name=$1 f ok=1
    shift
    for f in "$@"; do cmp -s "$work/cpu/$f" "$work/cpu-guarded/$f" || { ok=0; fail "$name" "$f differs"; }; done
    [ $ok -eq 1 ] && pass "$name" "$*"
}

# the logged loss terms, without the timing fields
same_log() {
    local name=$1 f=$2
    if [ -s "$work/cpu/$f" ] && diff <(sed 's/,"images_per_s".*//' "$work/cpu/$f") \
        <(sed 's/,"images_per_s".*//' "$work/cpu-guarded/$f") >/dev/null; then
        pass "$name" "$(wc -l <"$work/cpu/$f") lines"
    else
        fail "$name" "the logs differ"
    fi
}

# --- fixtures: a tiny VAE (4 latent channels, 2x down-sampling) and a folder of images -----------
vc=$work/vae
"$python" tests/ref/vae_case.py case --out "$vc" --names compvis --channels 16,32 --groups 8 --layers 1 --size 16 \
    --batch 3 >"$work/vae_case.log" 2>&1 || { fail vae_case "$(tail -n 2 "$work/vae_case.log")"; exit 1; }
"$python" tests/ref/encode_check.py make-folder "$work/images" >"$work/images.log" 2>&1 ||
    { fail images "$(tail -n 2 "$work/images.log")"; exit 1; }

shape="--depth 2 --hidden 32 --heads 4 --patch 2 --in-channels 4 --input-size 8 --num-classes 4"
common="--synthetic-size 32 --batch 8 --lr 1e-3 --log-every 1 --quiet"

# --- training ----------------------------------------------------------------------------------------
dit() { ./dydit train $shape $common --steps 3 --ema-decay 0.9 --device "$1" --out "$2/dit" --log "$2/dit/log.jsonl"; }
both dit_train dit && same_tensors dit_train dit/model.safetensors dit/ema.safetensors && same_log dit_train.log dit/log.jsonl

stage1() {
    ./dydit train $common --init "$2/dit/model.safetensors" --dynamic --stage 1 --steps 4 --micro-batch 4 \
        --router-bias 0.5 --token-router-bias 0.5 --lambda 0.6 --checkpoint-every 2 --device "$1" --out "$2/s1" \
        --log "$2/s1/log.jsonl" &&
        ./dydit train $common --stage 1 --steps 4 --micro-batch 4 --lambda 0.6 --device "$1" \
            --resume "$2/s1/checkpoints/step-0000002" --out "$2/s1r" --log "$2/s1r/log.jsonl"
}
both dydit_stage1 stage1 && same_tensors dydit_stage1 s1/model.safetensors s1/ema.safetensors \
    s1r/model.safetensors s1/checkpoints/step-0000002/optimizer.safetensors && same_log dydit_stage1.log s1/log.jsonl

stage2() {
    ./dydit train $common --init "$2/s1/ema.safetensors" --stage 2 --steps 2 --zero 1 --lambda 0.6 \
        --flops-group-size 2 --device "$1" --out "$2/s2" --log "$2/s2/log.jsonl" &&
        ./dydit train $common --stage 2 --steps 4 --zero 1 --lambda 0.6 --flops-group-size 2 --device "$1" \
            --resume "$2/s2" --out "$2/s2" --log "$2/s2/log.jsonl"
}
both dydit_stage2 stage2 && same_tensors dydit_stage2 s2/model.safetensors s2/ema.safetensors &&
    same_log dydit_stage2.log s2/log.jsonl

# --- sampling ----------------------------------------------------------------------------------------
sample_dit() {
    ./dydit sample --weights "$2/dit/ema.safetensors" --vae "$vc/vae.safetensors" --sampler ddpm --steps 4 \
        --cfg-scale 2 --num 3 --batch 2 --seed 1 --npz "$2/dit.npz" --grid "$2/dit.png" --latents "$2/dit_lat.safetensors" \
        --quiet --device "$1"
}
both sample_dit_ddpm sample_dit && same_bytes sample_dit_ddpm.outputs dit.npz dit.png dit_lat.safetensors

sample_dynamic() {
    ./dydit sample --weights "$2/s2/ema.safetensors" --vae "$vc/vae.safetensors" --sampler ddim --steps 4 --eta 0.5 \
        --cfg-scale 3 --num 3 --batch 3 --seed 2 --npz "$2/dy.npz" --grid "$2/dy.png" --save-masks "$2/masks" \
        --trace "$2/trace.safetensors" --quiet --device "$1" >"$2/dy.out" &&
        ./dydit sample --weights "$2/s2/ema.safetensors" --vae "$vc/vae.safetensors" --sampler ddpm --complete \
            --steps 3 --cfg-scale 1.5 --cfg-all-channels --clip-denoised 1 --num 2 --seed 3 --npz "$2/dyc.npz" \
            --quiet --device "$1" &&
        ./dydit flops --weights "$2/s2/ema.safetensors" --steps 3 --num 2 --device "$1" >"$2/flops.txt"
}
both sample_dydit sample_dynamic &&
    same_bytes sample_dydit.outputs dy.npz dy.png masks/token_masks.png masks/flops.csv trace.safetensors dyc.npz \
        flops.txt

# --- grad and forward on given tensors -----------------------------------------------------------------
"$python" - "$work/inputs.safetensors" <<'PY' || fail inputs "could not write the inputs"
import sys
import numpy as np
sys.path.insert(0, "tests/ref")
import safetensors_np

r = np.random.default_rng(4)
B, L, H, T = 3, 2, 4, 16
safetensors_np.save(sys.argv[1], {
    "x0": r.standard_normal((B, 4, 8, 8)).astype(np.float32),
    "x": r.standard_normal((B, 4, 8, 8)).astype(np.float32),
    "noise": r.standard_normal((B, 4, 8, 8)).astype(np.float32),
    "t": np.array([0, 500, 999], dtype=np.int64),
    "y": np.array([0, 3, 4], dtype=np.int64),
    "y_complete": np.array([1, 4, 2], dtype=np.int64),
    "gumbel_attn": r.logistic(size=(B, L, H - 1)).astype(np.float32),
    "gumbel_mlp": r.logistic(size=(B, L, H - 1)).astype(np.float32),
    "gumbel_token": r.logistic(size=(B, L, T)).astype(np.float32),
})
PY
grad_forward() {
    local w=$2/s1/model.safetensors in=$work/inputs.safetensors
    ./dydit grad --weights "$w" --inputs "$in" --stage 1 --target 0.7 --out "$2/grad.safetensors" --device "$1" &&
        ./dydit forward --weights "$w" --inputs "$in" --out "$2/forward.safetensors" --device "$1" &&
        ./dydit forward --weights "$w" --inputs "$in" --complete --out "$2/forward_c.safetensors" --device "$1" &&
        ./dydit grad --weights "$2/dit/model.safetensors" --inputs "$in" --out "$2/grad_dit.safetensors" --device "$1"
}
both grad_forward grad_forward && same_tensors grad_forward grad.safetensors forward.safetensors \
    forward_c.safetensors grad_dit.safetensors

# --- encode and decode through the VAE -----------------------------------------------------------------
vae_io() {
    ./dydit encode --source folder --input "$work/images" --out "$2/enc_post" --vae "$vc/vae.safetensors" \
        --image-size 16 --flip-storage --dtype f32 --batch 3 --quiet --device "$1" &&
        ./dydit encode --source folder --input "$work/images" --out "$2/enc_sample" --vae "$vc/vae.safetensors" \
            --image-size 16 --dtype f32 --seed 3 --quiet --device "$1" &&
        ./dydit decode --vae "$vc/vae.safetensors" --latents "$vc/stored.safetensors" --out "$2/decoded.png" \
            --npz "$2/decoded.npz" --batch 2 --quiet --device "$1"
}
if both vae_encode_decode vae_io; then
    same_bytes vae_decode.outputs decoded.png decoded.npz
    shards=$(cd "$work/cpu" && ls enc_post/shard-*.safetensors enc_sample/shard-*.safetensors)
    same_tensors vae_encode $shards
    # the sharded loader (its own thread) feeding a run on the VAE's latents
    shard_train() { ./dydit train $shape $common --data "$2/enc_post" --steps 2 --device "$1" --out "$2/shard_run"; }
    both shard_train shard_train && same_tensors shard_train shard_run/model.safetensors
fi

# --- two ranks: the gradients go through the host staging path ------------------------------------------
if command -v mpirun >/dev/null; then
    ranks() {
        OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe -np 2 ./dydit train $shape $common --steps 2 \
            --zero "$3" --device "$1" --out "$2/mpi$3" --log "$2/mpi$3/log.jsonl"
    }
    ranks_allreduce() { ranks "$1" "$2" 0; }
    ranks_zero() { ranks "$1" "$2" 1; }
    both mpi_allreduce ranks_allreduce && same_tensors mpi_allreduce mpi0/model.safetensors mpi0/ema.safetensors
    both mpi_zero ranks_zero && same_tensors mpi_zero mpi1/model.safetensors
fi

# --- choosing a device -------------------------------------------------------------------------------------
expect_error cpu_bf16 "--precision bf16 needs a CUDA device" ./dydit train $shape --device cpu --precision bf16
expect_error bad_precision "--precision must be bf16 or fp32" ./dydit sample --weights x --npz y --device cpu --precision fp16
expect_error bad_device "unknown --device 'tpu'" ./dydit forward --device tpu --weights x --inputs y --out z
if ./dydit grad --help | grep -q -- '--device S'; then pass help_lists_device; else fail help_lists_device "no --device"; fi
# this machine has no GPU: a build with CUDA finds none, one without says so
expect_error cuda_unavailable "CUDA" ./dydit train $shape --steps 1 --device cuda:0

exit $status
