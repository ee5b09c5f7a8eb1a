#!/usr/bin/env bash
# Graceful stops of a 2-rank job, each way a cluster delivers them:
#  - SIGTERM and SIGINT to mpirun (OpenMPI sends the ranks SIGCONT, SIGTERM after odls_base_sigkill_timeout
#    seconds, SIGKILL after as many again, and exits 1 itself), SIGUSR1 to mpirun (forwarded);
#  - SIGTERM to every rank (srun, Kubernetes, pre-emption), to one rank only, and repeated every
#    few milliseconds until the job ends (so also during the checkpoint write);
#  - --stop-after, a wall-clock limit;
#  - SIGTERM and SIGINT to scripts/train_multinode.sh, which hands them to mpirun as SIGUSR1.
# Each way: every rank exits 0 (and mpirun or the script, but for a signal to mpirun itself), the
# ranks stopped after the same step with its checkpoint as `latest`, and resuming from it with
# `--resume latest` lands bitwise on a 2-rank run that was never interrupted.
# Then the same config resumes: a stage-1 DyDiT config with --init and router biases, stopped by
# SIGTERM and rerun as printed (the same config plus --resume latest), equals the uninterrupted run;
# model options that name the checkpoint's model are accepted on resume, others refused.
# Usage, from the repository root: bash tests/stop.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/stop.sh WORKDIR [PYTHON]}/stop
prefix=stop
source tests/lib.sh
rm -rf "$work"
mkdir -p "$work"

expect_error stop_after_malformed "--stop-after must be a positive duration" ./dydit train --stop-after 1h30 --steps 1
expect_error stop_after_negative "--stop-after must be a positive duration" ./dydit train --stop-after -5m --steps 1

if ! command -v mpirun >/dev/null; then
    echo "SKIP stop: mpirun is not installed (openmpi-bin)"
    exit 0
fi
mpi=(mpirun --allow-run-as-root --oversubscribe)
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
model="--depth 2 --hidden 32 --heads 2 --patch 2 --in-channels 1 --input-size 8 --num-classes 4"
run="--batch 4 --synthetic-size 64 --threads 1 --log-every 1 --quiet --seed 3"

# One rank: dydit with its pid and exit status recorded, since mpirun's status alone cannot tell
# a rank's 0 from a SIGKILL once mpirun itself was signalled. The wrapper lives through the
# signals to write the status: it traps them (trapped, not ignored, so that dydit starts with the
# default actions) and waits again when one interrupts the wait.
cat >"$work/rank.sh" <<'EOF'
dir=$1
shift
trap : TERM INT USR1
./dydit "$@" &
pid=$!
echo "$pid" >"$dir/pid.$OMPI_COMM_WORLD_RANK"
while :; do
    wait "$pid"
    status=$?
    kill -0 "$pid" 2>/dev/null || break
done
echo "$status" >"$dir/status.$OMPI_COMM_WORLD_RANK"
EOF

wait_for_steps() { # wait_for_steps DIR: until the run in DIR has logged a few steps (30 s at most)
    for _ in $(seq 300); do
        [ "$({ wc -l <"$1/log.jsonl"; } 2>/dev/null || echo 0)" -ge 3 ] && return 0
        sleep 0.1
    done
    return 1
}

start() { # start NAME MPIRUN_OPTIONS... -- TRAIN_OPTIONS...: a long 2-rank run into $work/NAME; $job: mpirun
    local name=$1 d=$work/$1
    shift
    local launcher=()
    while [ "$1" != -- ]; do
        launcher+=("$1")
        shift
    done
    shift
    mkdir -p "$d"
    "${mpi[@]}" "${launcher[@]}" -np 2 bash "$work/rank.sh" "$d" train $model $run --steps 1000000 "$@" \
        --out "$d" --log "$d/log.jsonl" >"$work/$name.out" 2>&1 &
    job=$!
}

declare -A stopped_at # NAME -> the step of the stop checkpoint, for the runs that stopped well

# finish NAME WANT_STATUS REASON: mpirun ends with WANT_STATUS, both ranks exit 0, and rank 0
# reports the stop by REASON at the step of checkpoints/latest.
finish() {
    local name=$1 want=$2 reason=$3 d=$work/$1 rc step ranks
    for _ in $(seq 600); do # 60 s at most: a stop that is not honoured must fail, not hang
        kill -0 "$job" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$job" 2>/dev/null && kill -KILL "$job" $(cat "$d"/pid.* 2>/dev/null)
    wait "$job"
    rc=$?
    ranks=$(cat "$d"/status.* 2>/dev/null | tr '\n' ' ')
    step=$(sed -n 's/^step-0*\([0-9]*\)$/\1/p' "$d/checkpoints/latest" 2>/dev/null)
    if [ "$rc" -ne "$want" ] || [ "$ranks" != "0 0 " ] || [ -z "$step" ] ||
        ! grep -q "^stopped by $reason after step $step/" "$work/$name.out"; then
        fail "$name" "status $rc (want $want), ranks' '$ranks', checkpoint '$step': $(tail -n 2 "$work/$name.out")"
        return
    fi
    pass "$name" "stopped by $reason after step $step, ranks exit 0, status $rc"
    stopped_at[$name]=$step
}

# ---- signals to mpirun ----
for sig in TERM INT; do # OpenMPI's mpirun exits 1 whenever it is signalled itself
    start "mpirun_${sig,,}" --mca odls_base_sigkill_timeout 5 --
    wait_for_steps "$work/mpirun_${sig,,}" && kill -"$sig" "$job"
    finish "mpirun_${sig,,}" 1 SIGTERM # the ranks see mpirun's SIGTERM
done

start mpirun_usr1 --
wait_for_steps "$work/mpirun_usr1" && kill -USR1 "$job"
finish mpirun_usr1 0 SIGUSR1

# ---- signals to the ranks ----
start ranks_term --
wait_for_steps "$work/ranks_term" && kill -TERM "$(cat "$work/ranks_term/pid.0")" "$(cat "$work/ranks_term/pid.1")"
finish ranks_term 0 SIGTERM

start rank1_term --
wait_for_steps "$work/rank1_term" && kill -TERM "$(cat "$work/rank1_term/pid.1")"
finish rank1_term 0 SIGTERM

start repeated_term --
if wait_for_steps "$work/repeated_term"; then
    pids=$(cat "$work/repeated_term/pid.0" "$work/repeated_term/pid.1")
    while kill -TERM $pids 2>/dev/null; do sleep 0.005; done
fi
finish repeated_term 0 SIGTERM

# ---- a wall-clock limit ----
start stop_after -- --stop-after 2s
finish stop_after 0 "the time limit (--stop-after)"

# ---- the launch script ----
printf 'localhost slots=2\n' >"$work/hostfile"
for sig in TERM INT; do
    name=script_${sig,,}
    d=$work/$name
    mkdir -p "$d"
    # a background job starts with SIGINT ignored, which bash could not trap: restore the default
    DYDIT_STOP_GRACE=5 env --default-signal=INT bash scripts/train_multinode.sh "$work/hostfile" 2 1 -- \
        $model $run --steps 1000000 --out "$d" --log "$d/log.jsonl" >"$work/$name.out" 2>&1 &
    job=$!
    echo 0 >"$d/status.0" # the ranks run without the wrapper: the script's 0 is theirs (mpirun's
    echo 0 >"$d/status.1" # status is non-zero when one of them is)
    wait_for_steps "$d" && kill -"$sig" "$job"
    finish "$name" 0 SIGUSR1
done

# ---- every stop resumes onto the uninterrupted trajectory ----
# Each stopped run resumes to the next multiple of $every after its stop, where one uninterrupted
# run keeps a checkpoint: short resumes however far apart the stops are.
every=25
last=0
for name in "${!stopped_at[@]}"; do
    [ "${stopped_at[$name]}" -gt "$last" ] && last=${stopped_at[$name]}
done
if "${mpi[@]}" -np 2 ./dydit train $model $run --steps $(((last / every + 1) * every)) --checkpoint-every $every \
    --keep-checkpoints 1000000 --out "$work/whole" --log "$work/whole/log.jsonl" >"$work/whole.out" 2>&1; then
    for name in $(printf '%s\n' "${!stopped_at[@]}" | sort); do
        end=$(((stopped_at[$name] / every + 1) * every))
        final=checkpoints/step-$(printf %07d "$end")
        if "${mpi[@]}" -np 2 ./dydit train $run --steps "$end" --resume latest --out "$work/$name" \
            --log "$work/$name/log.jsonl" >"$work/$name-resume.out" 2>&1; then
            same_checkpoints "${name}_resume" "$work/whole/$final" "$work/$name/$final"
        else
            fail "${name}_resume" "the resumed run failed: $(tail -n 2 "$work/$name-resume.out")"
        fi
    done
else
    fail uninterrupted "the reference run failed: $(tail -n 2 "$work/whole.out")"
fi

# ---- the config that started a run continues it ----
dit="--depth 2 --hidden 32 --heads 4 --patch 2 --in-channels 4 --input-size 8 --num-classes 4"
./dydit train $dit --synthetic-size 64 --batch 8 --steps 2 --quiet --out "$work/dit" --log "$work/dit/log.jsonl"
cat >"$work/stage1.conf" <<EOF
init = $work/dit/model.safetensors
dynamic = true
stage = 1
lambda_warmup = 0
router_bias = 0.5
token_router_bias = 0.5
synthetic_size = 64
batch = 8
lr = 1e-3
log_every = 1
quiet = true
EOF
d=$work/config
mkdir -p "$d"
./dydit train --config "$work/stage1.conf" --steps 1000000 --out "$d" --log "$d/log.jsonl" >"$d.out" 2>&1 &
job=$!
wait_for_steps "$d" && kill -TERM "$job"
wait "$job"
rc=$?
step=$(sed -n 's/^step-0*\([0-9]*\)$/\1/p' "$d/checkpoints/latest" 2>/dev/null)
resume=$(grep -o -- '--resume latest' "$d.out")
if [ "$rc" -eq 0 ] && [ -n "$step" ] && [ "$resume" = "--resume latest" ] &&
    ./dydit train --config "$work/stage1.conf" --steps $((step + 2)) --out "$d" --log "$d/log.jsonl" \
        --resume latest >"$d-resume.out" 2>&1 &&
    [ "$(grep -c '^note: resuming, so --init, --router-bias, --token-router-bias ignored' "$d-resume.out")" -eq 1 ]; then
    pass config_resumes "stopped at step $step, resumed with the same config and a one-line note"
    ./dydit train --config "$work/stage1.conf" --steps $((step + 2)) --out "$work/config-whole" \
        --log "$work/config-whole/log.jsonl"
    final=checkpoints/step-$(printf %07d $((step + 2)))
    same_checkpoints config_resume_exact "$work/config-whole/$final" "$d/$final"
else
    fail config_resumes "status $rc, checkpoint '$step': $(tail -n 2 "$d.out") $(tail -n 2 "$d-resume.out" 2>/dev/null)"
fi

# ---- model options may repeat the checkpoint's model on resume (a pretraining config), not change it ----
if ./dydit train $dit --synthetic-size 64 --batch 8 --steps 3 --quiet --out "$work/dit" --log "$work/dit/log.jsonl" \
    --resume latest >"$work/dit-resume.out" 2>&1 && [ -d "$work/dit/checkpoints/step-0000003" ]; then
    pass resume_same_model "the options of the model resume it"
else
    fail resume_same_model "$(tail -n 2 "$work/dit-resume.out")"
fi
expect_error resume_other_model "--hidden 64 differs from the checkpoint's 32" \
    ./dydit train --hidden 64 --heads 4 --steps 4 --out "$work/dit" --resume latest
expect_error resume_other_preset "--model DiT-S/2 is not the checkpoint's model" \
    ./dydit train --model DiT-S/2 --steps 4 --out "$work/dit" --resume latest

exit $status
