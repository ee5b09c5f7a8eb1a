#!/usr/bin/env bash
# Data-parallel training under mpirun, against one process with the same global batch:
#  - 2 and 3 ranks give the parameters of 1 process after K steps, for a DiT (synthetic data in
#    memory, and latent shards read by each rank's loader) and for a DyDiT in stage 1 with router
#    noise and label dropout, with the FLOPs loss over the whole batch (group sums all-reduced) and
#    over groups of 2 (local to each rank);
#  - ZeRO-1 gives the parameters of plain all-reduce; micro-batches (gradient accumulation, also
#    with FLOPs groups spanning the passes) give those of whole slices;
#  - the logged loss terms and metrics of 3 ranks are those of 1 process;
#  - a checkpoint written by 2 ranks resumes on 1 process, one of 1 process on 2 ranks with ZeRO,
#    one of 3 ZeRO ranks on 2, all on the uninterrupted trajectory;
#  - a batch the ranks cannot split, a micro-batch that does not divide a rank's share, and
#    disagreeing --batch/--global-batch end with one-line errors;
#  - a rank that dies (die() on one rank, kill -9 of one rank) or stops responding (the collective
#    timeout) ends mpirun with a non-zero status within 30 s;
#  - a build without MPI started as 2 processes refuses with one line on each.
# Tolerance: the ranks sum the same numbers in another order, so parameters agree to float32
# rounding, not bitwise. Measured after 6 steps at lr 1e-3: ||a - b|| / ||b|| = 3e-9 to 7e-8
# (0 for ZeRO on 2 ranks: a sum of two terms is order-free); asserted below 1e-6. Grouping the
# FLOPs loss differently moves the parameters by 5e-3 (dydit_groups_matter).
# Usage, from the repository root: bash tests/dist.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/dist.sh WORKDIR [PYTHON]}/dist
prefix=dist
source tests/lib.sh
python=${2:-/usr/bin/python3}
rm -rf "$work"
mkdir -p "$work"

if ! command -v mpirun >/dev/null; then
    echo "SKIP dist: mpirun is not installed (openmpi-bin)"
    exit 0
fi
# CI runs as root; OpenMPI refuses root without the flag and more ranks than cores without the other
mpi=(mpirun --allow-run-as-root --oversubscribe)
export OMP_NUM_THREADS=1
tol=1e-6

run="--synthetic-size 64 --batch 12 --lr 1e-3 --log-every 1 --quiet"
shape="--depth 2 --hidden 32 --heads 4 --patch 2 --in-channels 4 --input-size 8 --num-classes 4 --class-dropout 0.1"
dit="$run $shape"
# stage 1 with noisy routers whose small biases leave heads, groups and tokens switching on and off
dyrun="$run --stage 1 --lambda-warmup 0"
dydit="$dyrun $shape --dynamic --router-bias 0.5 --token-router-bias 0.5"

launch() { # launch NP COMMAND...: COMMAND as NP ranks of an mpirun job, or as a plain process for NP 1
    local np=$1
    shift
    if [ "$np" -eq 1 ]; then "$@"; else "${mpi[@]}" -np "$np" "$@"; fi
}

train() { # train NAME NP OPTIONS...: a run into $work/NAME; fails the check NAME when it fails
    local name=$1 np=$2
    shift 2
    if ! launch "$np" ./dydit train "$@" --out "$work/$name" --log "$work/$name/log.jsonl" >"$work/$name.out" 2>&1; then
        fail "$name" "the run failed: $(tail -n 3 "$work/$name.out")"
        return 1
    fi
}

same() { # same NAME RUN REFERENCE [FILE]: RUN's weights equal REFERENCE's within the tolerance
    local file=${4:-model.safetensors} out
    out=$("$python" tests/ref/weights_diff.py "$work/$2/$file" "$work/$3/$file" --tol "$tol" 2>&1)
    if [ $? -eq 0 ]; then pass "$1" "$out"; else fail "$1" "$out (tolerance $tol)"; fi
}

same_log() { # same_log NAME RUN REFERENCE KEY...: RUN's log lines carry REFERENCE's values (1e-5 relative)
    local name=$1 run=$2 ref=$3 out
    shift 3
    out=$("$python" - "$work/$run/log.jsonl" "$work/$ref/log.jsonl" "$@" <<'PY'
import json, sys
run, ref = ([r for r in map(json.loads, open(path)) if "loss" in r] for path in sys.argv[1:3])  # the steps' lines
worst = max(abs(a[k] - b[k]) / max(abs(b[k]), 1e-12) for a, b in zip(run, ref) for k in sys.argv[3:])
print(f"{len(run)} lines, worst relative difference {worst:.2g}")
sys.exit(0 if len(run) == len(ref) and worst < 1e-5 else 1)
PY
)
    if [ $? -eq 0 ]; then pass "$name" "$out"; else fail "$name" "$out"; fi
}

if ! "${mpi[@]}" -np 2 ./dydit train $dit --steps 1 --log /dev/null >"$work/probe.out" 2>&1; then
    fail mpi_build "mpirun -np 2 ./dydit failed (built without MPI? install libopenmpi-dev): $(head -n 1 "$work/probe.out")"
    exit 0
fi

# DiT: 1, 2 and 3 ranks, micro-batches
train dit1 1 $dit --steps 6
train dit2 2 $dit --steps 6 && same dit_2_ranks dit2 dit1
train dit3 3 $dit --steps 6 && same dit_3_ranks dit3 dit1 && same dit_3_ranks_ema dit3 dit1 ema.safetensors
train ditmicro 1 $dit --steps 6 --micro-batch 3 && same dit_micro_batches ditmicro dit1
same_log dit_3_ranks_log dit3 dit1 loss mse vb grad_norm

# latent shards: each rank's loader reads only its slice of every global batch
if [ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] &&
    ./dydit encode --source fashion-mnist --split test --out "$work/fm" --quiet >"$work/fm.out" 2>&1; then
    shards="--data $work/fm --depth 1 --hidden 32 --heads 2 --patch 4 --in-channels 1 --input-size 32 --num-classes 10
        --batch 8 --steps 3 --lr 1e-3 --log-every 1 --quiet"
    train shards1 1 $shards && train shards2 2 $shards && same shards_2_ranks shards2 shards1
else
    fail shards "cannot encode Fashion-MNIST (dataset-fashion-mnist): $(tail -n 1 "$work/fm.out" 2>/dev/null)"
fi

# DyDiT stage 1: FLOPs loss over the global batch (group sums all-reduced during the pass, or by a
# forward-only pass ahead of the micro-batches), and over groups of 2 (local)
train dy1 1 $dydit --steps 6
train dy2 2 $dydit --steps 6 && same dydit_2_ranks dy2 dy1
train dy3 3 $dydit --steps 6 && same dydit_3_ranks dy3 dy1 &&
    same_log dydit_3_ranks_log dy3 dy1 loss flops_loss flops_ratio complete_loss head_keep group_keep token_keep
train dymicro 2 $dydit --steps 6 --micro-batch 2 && same dydit_micro_batches dymicro dy1
train dyzero 2 $dydit --steps 6 --zero 1 && same dydit_zero1_2_ranks dyzero dy2
train dyzero3 3 $dydit --steps 6 --zero 1 --micro-batch 2 --bucket-mb 0.01 &&
    same dydit_zero1_3_ranks_micro dyzero3 dy1
train dygroup1 1 $dydit --steps 6 --flops-group-size 2
train dygroup3 3 $dydit --steps 6 --flops-group-size 2 && same dydit_groups_3_ranks dygroup3 dygroup1
out=$("$python" tests/ref/weights_diff.py "$work/dygroup1/model.safetensors" "$work/dy1/model.safetensors")
if "$python" -c 'import sys; sys.exit(0 if float(sys.argv[1].split()[1]) > 1e-3 else 1)' "$out"; then
    pass dydit_groups_matter "groups of 2 vs the whole batch: $out"
else
    fail dydit_groups_matter "the FLOPs grouping changed nothing: $out"
fi

# resume across rank counts: 2 ranks -> 1 process, 1 process -> 2 ZeRO ranks, 3 ZeRO ranks -> 2
resumed() { # resumed NAME NP1 OPTIONS1 NP2 OPTIONS2: 3 steps, then 3 more from the checkpoint
    local name=$1 np1=$2 opts1=$3 np2=$4 opts2=$5
    train "$name" "$np1" $dydit $opts1 --steps 3 || return 1
    if ! launch "$np2" ./dydit train $dyrun $opts2 --resume "$work/$name" --steps 6 --out "$work/$name" \
        --log "$work/$name/log.jsonl" >"$work/$name.resume.out" 2>&1; then
        fail "$name" "the resumed run failed: $(tail -n 3 "$work/$name.resume.out")"
        return 1
    fi
    same "$name" "$name" dy1 && same "${name}_ema" "$name" dy1 ema.safetensors
}
resumed resume_2_ranks_on_1 2 "" 1 ""
resumed resume_1_on_2_zero1 1 "" 2 "--zero 1"
resumed resume_3_zero1_on_2_zero1 3 "--zero 1" 2 "--zero 1"

# options of data parallelism: one-line errors
errors() { # errors NAME WORDS NP OPTIONS...: fails with WORDS in its error
    local name=$1 words=$2 np=$3
    shift 3
    if ! launch "$np" ./dydit train $dit --steps 1 --log /dev/null "$@" >"$work/$name.out" 2>&1 &&
        grep -q "^error: .*$words" "$work/$name.out"; then
        pass "$name" "$(grep -m 1 '^error' "$work/$name.out" | head -c 100)"
    else
        fail "$name" "$(head -n 2 "$work/$name.out")"
    fi
}
errors batch_not_split "multiple of the number of ranks (3)" 3 --batch 8
errors micro_batch_not_dividing "micro-batch (4) must divide" 2 --batch 12 --micro-batch 4
errors batch_disagrees "disagree" 1 --batch 12 --global-batch 16

# failures end the job: mpirun exits non-zero within 30 s
ms() { echo $(($(date +%s%N) / 1000000)); }
ends_promptly() { # ends_promptly NAME WORDS COMMAND...: non-zero within 30 s, WORDS in the output
    local name=$1 words=$2 start rc elapsed
    shift 2
    start=$(ms)
    timeout 60 "$@" >"$work/$name.out" 2>&1
    rc=$?
    elapsed=$(($(ms) - start))
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$elapsed" -lt 30000 ] && grep -qF -- "$words" "$work/$name.out"; then
        pass "$name" "status $rc after $elapsed ms"
    else
        fail "$name" "status $rc after $elapsed ms: $(grep -m 2 error "$work/$name.out")"
    fi
}
long=($dit --steps 1000000 --log /dev/null)
ends_promptly rank_dies "rank 1 of 2 (" env DYDIT_TEST_FAULT=die:1:3 "${mpi[@]}" -np 2 ./dydit train "${long[@]}"
ends_promptly rank_hangs "waited more than 2 s for the other ranks" env DYDIT_TEST_FAULT=hang:1:3 "${mpi[@]}" -np 3 \
    ./dydit train "${long[@]}" --collective-timeout 2

# kill -9 of rank 1 once the run is under way; the tag finds this job's ranks among all processes
tag=dist-test-$$
tagged() { # tagged [RANK]: pids of this job's processes (of one rank)
    local p env
    for p in /proc/[0-9]*; do
        env=$({ tr '\0' '\n' <"$p/environ"; } 2>/dev/null) || continue
        grep -qx "DYDIT_TEST_TAG=$tag" <<<"$env" || continue
        if [ -z "${1:-}" ] || grep -qx "OMPI_COMM_WORLD_RANK=$1" <<<"$env"; then echo "${p#/proc/}"; fi
    done
}
DYDIT_TEST_TAG=$tag "${mpi[@]}" -np 2 ./dydit train $dit --steps 1000000 --log "$work/kill.jsonl" \
    >"$work/kill.out" 2>&1 &
launcher=$!
victim=
for _ in $(seq 200); do
    [ -s "$work/kill.jsonl" ] && victim=$(tagged 1 | head -n 1)
    [ -n "$victim" ] && break
    sleep 0.1
done
if [ -z "$victim" ]; then
    fail rank_killed "rank 1 of the job was not found"
    kill "$launcher"
    wait "$launcher"
else
    kill -9 "$victim"
    killed=$(ms)
    for _ in $(seq 600); do
        kill -0 "$launcher" 2>/dev/null || break
        sleep 0.1
    done
    elapsed=$(($(ms) - killed))
    kill -9 "$launcher" 2>/dev/null
    wait "$launcher"
    rc=$?
    if [ "$rc" -ne 0 ] && [ "$elapsed" -lt 30000 ]; then
        pass rank_killed "mpirun status $rc $elapsed ms after kill -9 of rank 1"
    else
        fail rank_killed "mpirun status $rc after $elapsed ms"
    fi
fi
# whatever happened above, leave no rank of it running
tagged | xargs -r kill -9 2>/dev/null

# a build without MPI, started as 2 processes: the one-line refusal and a non-zero status. Each rank
# says it, but mpirun may kill the second before it prints once the first has failed, so one line
# is the most that can be required.
"${mpi[@]}" -np 2 build/tests/dist_probe_nompi >"$work/nompi.out" 2>&1
rc=$?
if [ "$rc" -ne 0 ] && grep -q '^error: rank [01] of 2: .*built without MPI' "$work/nompi.out"; then
    pass no_mpi_build_refuses "$(grep -m 1 '^error' "$work/nompi.out" | head -c 90)"
else
    fail no_mpi_build_refuses "status $rc: $(head -n 3 "$work/nompi.out")"
fi
if [ "$(build/tests/dist_probe_nompi)" = "rank 0 of 1" ]; then
    pass no_mpi_build_single "runs as one process without a launcher"
else
    fail no_mpi_build_single "$(build/tests/dist_probe_nompi 2>&1)"
fi
