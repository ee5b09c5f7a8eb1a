#!/usr/bin/env bash
# The DiT -> DyDiT fine-tuning path as a user walks it, through the dydit program: the FLOPs
# target's schedule as the log shows it. Usage, from the repository root:
# bash tests/finetune_workflow.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/finetune_workflow.sh WORKDIR [PYTHON]}/finetune_workflow
prefix=finetune_workflow
source tests/lib.sh
python=${2:-/usr/bin/python3}
mkdir -p "$work"
tiny=(--device cpu --threads 1 --quiet --depth 2 --hidden 32 --heads 2 --patch 2 --in-channels 1 --input-size 8
    --num-classes 4 --batch 4 --synthetic-size 32 --dynamic --log-every 1)

# --lambda-hold 3 --lambda-warmup 4 at lambda 0.5: 1 for steps 0-2, then 1 - 0.5 (step - 3) / 4, then 0.5.
if ./dydit train "${tiny[@]}" --steps 10 --lambda 0.5 --lambda-hold 3 --lambda-warmup 4 --out "$work/hold" \
    --log "$work/hold.jsonl" >"$work/out.txt" 2>&1; then
    got=$("$python" -c 'import json,sys; print(" ".join("%.4f" % json.loads(l)["target_ratio"] for l in open(sys.argv[1])))' "$work/hold.jsonl")
    want="1.0000 1.0000 1.0000 1.0000 0.8750 0.7500 0.6250 0.5000 0.5000 0.5000"
    [ "$got" = "$want" ] && pass target_hold_then_ramp "$got" || fail target_hold_then_ramp "got $got, want $want"
else
    fail target_hold_then_ramp "$(tail -n 2 "$work/out.txt")"
fi
expect_error lambda_hold_range "--lambda-hold must be -1" ./dydit train "${tiny[@]}" --steps 1 --lambda-hold -2 --out "$work/bad"
exit $status
