#!/usr/bin/env bash
# The CUDA backend on the emulated device (kernels/cuda/emu; make builds it into build-emu), in the
# CPU suite:
#  - the device itself (tests/emu/test_emu_device.cu): shuffles, barriers, shared memory, launch
#    limits, runtime and cuBLAS(Lt) semantics and refusals; and kernel bugs it must report in one
#    line: shared-memory races (read after write, write after read), two blocks of one launch
#    updating one global word, a read of unwritten shared memory, a write past an allocation, a
#    host pointer in a kernel, a full-warp shuffle in a partial warp or with an exited lane, a
#    barrier that part of the block never reaches;
#  - the GPU suite (tests/cuda/run.sh EMULATED=1: every op against its CPU twin, a DyDiT stage-1
#    step, the dynamic sampler, the VAE, the loss curve, NCCL over two ranks), one line per program;
#  - the commands: a tiny DyDiT stage-1 run of 20 steps with --device cuda-emulated in fp32 ends
#    (routers biased so that heads, groups and tokens switch on and off) ends
#    with the parameters of --device cpu (norm-wise 1e-4: the same draws and ops, float sums in
#    another order, 20 Adam steps), and runs in bf16; a second emulated run writes the same bits
#    (no float atomics); under mpirun, 2 ranks summing gradients over the emulated NCCL end with
#    the parameters of 1 process (1e-6, as tests/dist.sh), with ZeRO-1 too (NCCL's reduce-scatter
#    and all-gather), and 2 ranks on one GPU are refused by the
#    NCCL route; sampling the run's weights gives the CPU's latents (1e-4);
#  - --device cuda-emulated in the regular build ends with one line.
# Usage, from the repository root: bash tests/cuda_emulated.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/cuda_emulated.sh WORKDIR [PYTHON]}/cuda_emulated
prefix=cuda_emulated
source tests/lib.sh
python=${2:-/usr/bin/python3}
rm -rf "$work"
mkdir -p "$work"
emu=build-emu/dydit
if [ ! -x "$emu" ]; then
    fail built "$emu is missing (make test builds it: make emulated-build)"
    exit 1
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

build-emu/tests/emu/test_emu_device || status=1
bug() { # bug CASE WORDS: the device's kernel bug CASE ends the program with one error line holding WORDS
    expect_error "device_reports.$1" "$2" build-emu/tests/emu/test_emu_device "$1"
}
bug race "shared memory race: reads offset"
bug write_after_read "shared memory race: writes offset"
bug uninitialised "reads shared memory at offset 0 that no thread of the block wrote"
bug past_end "past its end"
bug host_pointer "which is not device memory"
bug blocks_race "reads offset 0 of a device allocation of 256 bytes, which block 0 wrote in the same launch"
bug partial_warp "names lane 16 of a warp of 16 threads"
bug exited_lane "names lane 5, which has exited"
bug divergent_barrier "waits for lanes that wait at __syncthreads"

# The GPU suite: its per-program summary lines become this script's PASS / FAIL lines.
EMULATED=1 PYTHON="$python" TMPDIR="$work" tests/cuda/run.sh >"$work/suite.log" 2>&1
suite_status=$?
while read -r name passed _ failed _; do
    if [ "$failed" = 0 ]; then pass "suite.$name" "$passed checks"; else fail "suite.$name" "$failed of its checks failed"; fi
done < <(grep -E '^[a-z_0-9]+ +[0-9]+ passed +[0-9]+ failed' "$work/suite.log")
if [ $suite_status -ne 0 ]; then fail suite "$(grep -v '^ *PASS ' "$work/suite.log" | tail -n 20 | tr '\n' ' ')"; fi

run="--depth 2 --hidden 64 --heads 4 --patch 2 --in-channels 4 --input-size 8 --num-classes 4 --dynamic --stage 1
     --lambda 0.7 --lambda-warmup 0 --router-bias 0.5 --token-router-bias 0.5 --synthetic-size 64 --batch 8 --lr 1e-3
     --steps 20 --seed 5 --log-every 1 --probe-samples 0 --quiet"
train() { # train NAME LAUNCHER... -- OPTIONS...: a run into $work/NAME
    local name=$1
    shift
    local launcher=()
    while [ "$1" != -- ]; do launcher+=("$1"); shift; done
    shift
    # shellcheck disable=SC2086 # run holds options
    if "${launcher[@]}" train $run "$@" --out "$work/$name" --log "$work/$name/log.jsonl" >"$work/$name.out" 2>&1; then
        return 0
    fi
    fail "$name" "the run failed: $(tail -n 3 "$work/$name.out" | tr '\n' ' ')"
    return 1
}
same() { # same NAME TOLERANCE A B: the weights files A and B agree norm-wise within TOLERANCE
    local out
    out=$("$python" tests/ref/weights_diff.py "$3" "$4" --tol "$2" 2>&1)
    if [ $? -eq 0 ]; then pass "$1" "$out"; else fail "$1" "$out (tolerance $2)"; fi
}

train cpu "$emu" -- --device cpu &&
    train fp32 "$emu" -- --device cuda-emulated --precision fp32 &&
    same train.fp32_equals_cpu 1e-4 "$work/fp32/model.safetensors" "$work/cpu/model.safetensors"
if train fp32_again "$emu" -- --device cuda-emulated --precision fp32; then
    out=$("$python" tests/ref/weights_diff.py "$work/fp32_again/model.safetensors" "$work/fp32/model.safetensors")
    case "$out" in
    *"bitwise 1"*) pass train.repeats_bitwise "$out" ;;
    *) fail train.repeats_bitwise "two runs wrote different parameters: $out" ;;
    esac
fi
train bf16 "$emu" -- --device cuda-emulated --precision bf16 &&
    same train.bf16_near_cpu 5e-2 "$work/bf16/model.safetensors" "$work/cpu/model.safetensors"

if command -v mpirun >/dev/null; then
    mpi=(mpirun --allow-run-as-root --oversubscribe -np 2 env OMP_NUM_THREADS=1)
    train two_ranks "${mpi[@]}" "$emu" -- --device cuda-emulated --precision fp32 &&
        same mpirun.two_ranks_equal_one 1e-6 "$work/two_ranks/model.safetensors" "$work/fp32/model.safetensors"
    # ZeRO-1: gradients reduce-scattered, parameters all-gathered, over uneven pieces
    train two_ranks_zero "${mpi[@]}" "$emu" -- --device cuda-emulated --precision fp32 --zero 1 --bucket-mb 0.01 &&
        same mpirun.two_ranks_zero1_equal_one 1e-6 "$work/two_ranks_zero/model.safetensors" \
            "$work/fp32/model.safetensors"
    # The NCCL route (train/device_collectives.c) checks the GPUs' UUIDs: two ranks on one GPU are refused.
    # shellcheck disable=SC2086 # run holds options
    if "${mpi[@]}" "$emu" train $run --steps 1 --device cuda:0 --out "$work/pinned" >"$work/pinned.out" 2>&1; then
        fail mpirun.nccl_route "2 ranks on one GPU were not refused"
    elif grep -q "ranks 0 and 1 on .* use the same GPU" "$work/pinned.out"; then
        pass mpirun.nccl_route "2 ranks on one GPU refused by the NCCL route"
    else
        fail mpirun.nccl_route "$(tail -n 2 "$work/pinned.out" | tr '\n' ' ')"
    fi
    # As under Slurm's --gpus-per-task=1: each rank sees only its own GPU (CUDA_VISIBLE_DEVICES), as
    # device 0, and trains as the run where every rank sees all of them.
    own_gpu=(mpirun --allow-run-as-root --oversubscribe -np 2 env OMP_NUM_THREADS=1
        sh -c 'CUDA_VISIBLE_DEVICES=$OMPI_COMM_WORLD_LOCAL_RANK exec "$@"' rank)
    train one_gpu_each "${own_gpu[@]}" "$emu" -- --device cuda-emulated --precision fp32 &&
        same mpirun.one_visible_gpu_per_rank 1e-6 "$work/one_gpu_each/model.safetensors" "$work/two_ranks/model.safetensors"
fi

sample() { # sample NAME OPTIONS...: 4 latents of the fp32 run's weights into $work/NAME.safetensors
    local name=$1
    shift
    "$emu" sample --weights "$work/fp32/model.safetensors" --num 4 --steps 5 --seed 3 --quiet \
        --latents "$work/$name.safetensors" "$@" >"$work/$name.out" 2>&1 ||
        fail "sample.$name" "$(tail -n 2 "$work/$name.out" | tr '\n' ' ')"
}
if [ -f "$work/fp32/model.safetensors" ]; then
    sample sample_cpu --device cpu && sample sample_fp32 --device cuda-emulated --precision fp32 &&
        same sample.fp32_equals_cpu 1e-4 "$work/sample_fp32.safetensors" "$work/sample_cpu.safetensors"
fi

expect_error regular_build_refuses "needs the emulated build" ./dydit train --depth 1 --hidden 32 --heads 2 \
    --patch 2 --in-channels 4 --input-size 4 --steps 1 --device cuda-emulated
exit $status
