#!/usr/bin/env bash
# Checkpoints and faults of `dydit train`, through the real program:
#  - exact resume: N steps in one run equal N/2 steps, a checkpoint, and N/2 more after --resume,
#    bitwise for the parameters, the EMA and AdamW's moments (a DiT, a DyDiT in stage 1 with router
#    noise, one in stage 2);
#  - SIGTERM and SIGINT finish the current step, write a checkpoint and exit 0; resuming from it
#    with `--resume latest` lands bitwise on the uninterrupted trajectory;
#  - state.json holds the step, the data cursor, the random streams' position and the schedule;
#  - a checkpoint that cannot be written (a file-size limit: writes fail with EFBIG) ends the run
#    with one line when it is the final one, is a warning when periodic; the previous checkpoint
#    and checkpoints/latest stay as they were, and no partial directory is left;
#  - a non-finite gradient (DYDIT_TEST_FAULT=nan) skips that update with a warning, also on 2
#    ranks, and every file written stays finite (checked by numpy);
#  - checkpoint files carry the official tensor names and shapes (checked against the independent
#    PyTorch reference's list); `dydit convert` exports a checkpoint's EMA or raw weights.
# Usage, from the repository root: bash tests/checkpoints.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/checkpoints.sh WORKDIR [PYTHON]}/checkpoints
prefix=checkpoints
source tests/lib.sh
python=${2:-/usr/bin/python3}
rm -rf "$work"
mkdir -p "$work"
export OMP_NUM_THREADS=1

shape="--depth 2 --hidden 32 --heads 4 --patch 2 --in-channels 4 --input-size 8 --num-classes 4 --class-dropout 0.1"
run="--synthetic-size 64 --batch 8 --lr 1e-3 --log-every 1 --quiet --seed 7"
# the options of a run; a new run adds the model's (a resumed one takes it from the checkpoint)
dit="$run"
dydit1="$run --stage 1 --lambda-warmup 0"
dydit2="$run --stage 2 --lambda-warmup 0"
new_dit="$shape"
new_dydit1="$shape --dynamic --router-bias 0.5 --token-router-bias 0.5"
new_dydit2=$new_dydit1

train() { # train NAME OPTIONS...: a run into $work/NAME; fails the check NAME when it fails
    local name=$1
    shift
    if ! ./dydit train "$@" --out "$work/$name" --log "$work/$name/log.jsonl" >"$work/$name.out" 2>&1; then
        fail "$name" "the run failed: $(tail -n 3 "$work/$name.out")"
        return 1
    fi
}

# ---- exact resume: 8 steps vs 4 + resume 4 ----
for kind in dit dydit1 dydit2; do
    opts=${!kind}
    new=new_$kind
    train "$kind-whole" $opts ${!new} --steps 8 --checkpoint-every 4 || continue
    train "$kind-resumed" $opts --steps 8 --resume "$work/$kind-whole/checkpoints/step-0000004" || continue
    same_checkpoints "resume_$kind" "$work/$kind-whole/checkpoints/step-0000008" "$work/$kind-resumed/checkpoints/step-0000008"
done

# ---- state.json ----
if "$python" - "$work/dydit1-whole/checkpoints/step-0000004/state.json" <<'EOF'; then
import json, sys
s = json.load(open(sys.argv[1]))
assert s["step"] == 4 and s["batch"] == 8 and s["seed"] == 7, s
assert s["data_cursor"]["samples_seen"] == 32, s["data_cursor"]
assert s["random_streams"] == {"seed": 7, "next_step": 4}, s["random_streams"]
assert 0 < s["schedule"]["target_ratio"] <= 1 and s["schedule"]["tau"] > 0, s["schedule"]
assert s["options"]["dynamic"] in (True, "true", 1), s["options"]
EOF
    pass state_json "step, batch, data cursor, random streams, schedule, options"
else
    fail state_json "unexpected state.json"
fi

# ---- SIGTERM / SIGINT: finish the step, checkpoint, exit 0, resume on the trajectory ----
for sig in TERM INT; do
    name=signal_$sig
    d="$work/$name"
    mkdir -p "$d"
    ./dydit train $dydit1 $new_dydit1 --steps 1000000 --out "$d" --log "$d/log.jsonl" >"$d.out" 2>&1 &
    pid=$!
    for _ in $(seq 300); do # wait until a few steps are logged
        [ "$({ wc -l <"$d/log.jsonl"; } 2>/dev/null || echo 0)" -ge 3 ] && break
        sleep 0.1
    done
    kill -"$sig" "$pid"
    wait "$pid"
    rc=$?
    step=$(sed -n 's/^step-0*\([0-9]*\)$/\1/p' "$d/checkpoints/latest" 2>/dev/null)
    if [ "$rc" -ne 0 ] || [ -z "$step" ] || ! grep -q "stopped by SIG$sig after step $step/" "$d.out"; then
        fail "$name" "status $rc, checkpoint '${step}': $(tail -n 2 "$d.out")"
        continue
    fi
    pass "$name" "exit 0 with a checkpoint at step $step"
    # the same run uninterrupted to step+2, and the stopped one resumed to step+2
    train "$name-whole" $dydit1 $new_dydit1 --steps $((step + 2)) || continue
    train "$name" $dydit1 --steps $((step + 2)) --resume latest || continue
    same_checkpoints "${name}_resume" "$work/$name-whole/checkpoints/step-$(printf %07d $((step + 2)))" \
        "$d/checkpoints/step-$(printf %07d $((step + 2)))"
done

# ---- a checkpoint the disk refuses ----
src="$work/dit-whole"
cp -r "$src" "$work/full"
before=$(cd "$work/full/checkpoints" && cat latest && sha256sum step-*/*)
limited() { # COMMAND... under a 16 KiB file-size limit, SIGXFSZ ignored so that writes fail with EFBIG
    (ulimit -f 16 && trap '' XFSZ && exec "$@")
}
expect_error final_checkpoint_fails "File too large" \
    limited ./dydit train $dit --steps 10 --resume latest --out "$work/full" --log "$work/full/log2.jsonl"
limited ./dydit train $dit --steps 11 --checkpoint-every 1 --resume latest --out "$work/full" \
    --log "$work/full/log3.jsonl" >"$work/periodic.out" 2>&1
rc=$?
warnings=$(grep -c "^warning: .*previous checkpoint is intact" "$work/periodic.out")
if [ "$rc" -ne 0 ] && [ "$warnings" -eq 2 ] && [ "$(grep -c '^error: ' "$work/periodic.out")" -eq 1 ]; then
    pass periodic_checkpoint_fails "2 warnings, then the final one fails"
else
    fail periodic_checkpoint_fails "status $rc, $warnings warnings: $(tail -n 3 "$work/periodic.out")"
fi
after=$(cd "$work/full/checkpoints" && cat latest && sha256sum step-*/*)
leftovers=$(find "$work/full/checkpoints" -name '*.tmp*' -o -name '*.old' | wc -l)
if [ "$before" = "$after" ] && [ "$leftovers" -eq 0 ]; then
    pass previous_checkpoint_intact "latest and every file unchanged, nothing partial left"
else
    fail previous_checkpoint_intact "$leftovers partial entries; checkpoints changed: $(diff <(echo "$before") <(echo "$after") | head -c 300)"
fi

# ---- non-finite gradients ----
check_finite() { # check_finite NAME FILES...: numpy finds every tensor finite
    local name=$1
    shift
    if "$python" - "$@" <<'EOF'; then
import sys
import numpy as np
sys.path.insert(0, "tests/ref")
import safetensors_np
for path in sys.argv[1:]:
    tensors = safetensors_np.load(path)[0]
    bad = [k for k, v in tensors.items() if not np.all(np.isfinite(v))]
    assert not bad, f"{path}: {bad[:3]}"
EOF
        pass "$name" "every tensor finite"
    else
        fail "$name" "non-finite tensors written"
    fi
}
DYDIT_TEST_FAULT=nan:0:2 ./dydit train $dit $new_dit --steps 5 --out "$work/nan" --log "$work/nan/log.jsonl" \
    >"$work/nan.out" 2>&1
rc=$?
if [ "$rc" -eq 0 ] && grep -q '"step":3,.*"updated":0,.*"nonfinite":1' "$work/nan/log.jsonl" &&
    grep -q '^warning: step 3: non-finite gradient norm; the update was skipped' "$work/nan.out" &&
    [ "$(grep -c '"updated":1' "$work/nan/log.jsonl")" -eq 4 ]; then
    pass nan_gradient_skipped "step 2 skipped with a warning, the 4 others updated"
else
    fail nan_gradient_skipped "status $rc: $(grep -m1 '"step":3' "$work/nan/log.jsonl") $(tail -n 2 "$work/nan.out")"
fi
check_finite nan_files_finite "$work/nan/model.safetensors" "$work/nan/ema.safetensors" \
    "$work/nan/checkpoints/step-0000005/"{model,ema,optimizer}.safetensors
if command -v mpirun >/dev/null; then
    DYDIT_TEST_FAULT=nan:1:1 mpirun --allow-run-as-root --oversubscribe -np 2 ./dydit train $dit $new_dit --steps 3 \
        --out "$work/nan2" --log "$work/nan2/log.jsonl" >"$work/nan2.out" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && grep -q '"step":2,.*"updated":0,.*"nonfinite":1' "$work/nan2/log.jsonl"; then
        pass nan_gradient_two_ranks "one rank's NaN cancels the update on both"
    else
        fail nan_gradient_two_ranks "status $rc: $(tail -n 2 "$work/nan2.out")"
    fi
fi

# ---- official names; convert exports the EMA or the raw weights ----
ck="$work/dydit1-whole/checkpoints/step-0000008"
./dydit convert --in "$work/dydit1-whole" --out "$work/export-ema.safetensors" >/dev/null 2>"$work/convert.err" &&
    ./dydit convert --in "$ck" --weights raw --out "$work/export-raw.safetensors" >/dev/null 2>>"$work/convert.err"
rc=$?
if [ "$rc" -eq 0 ] && "$python" - "$ck" "$work/export-ema.safetensors" "$work/export-raw.safetensors" <<'EOF'; then
import sys
import numpy as np
sys.path.insert(0, "tests/ref")
import safetensors_np
from dit_ref import DitConfig, param_shapes
ck, ema_out, raw_out = sys.argv[1:]
for name in ("model", "ema"):
    tensors, meta = safetensors_np.load(f"{ck}/{name}.safetensors")
    cfg = DitConfig.from_metadata(meta)
    cfg.dynamic = True  # the reference reads this from the tensors; the run trained a DyDiT
    want = param_shapes(cfg)
    assert set(tensors) == set(want), (name, sorted(set(tensors) ^ set(want))[:4])
    assert all(tuple(tensors[k].shape) == tuple(s) for k, s in want.items()), name
for exported, source in ((ema_out, "ema"), (raw_out, "model")):
    a, b = safetensors_np.load(exported)[0], safetensors_np.load(f"{ck}/{source}.safetensors")[0]
    assert set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a), exported
EOF
    pass official_names_and_convert "model and EMA have the reference's names and shapes; exports equal them"
else
    fail official_names_and_convert "status $rc: $(head -c 300 "$work/convert.err")"
fi
expect_error convert_not_a_checkpoint "neither a checkpoint" ./dydit convert --in "$work" --out "$work/x.safetensors"
expect_error convert_weights_on_file "is a file" \
    ./dydit convert --in "$work/export-ema.safetensors" --weights raw --out "$work/x.safetensors"

exit $status
