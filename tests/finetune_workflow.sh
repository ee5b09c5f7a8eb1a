#!/usr/bin/env bash
# The DiT -> DyDiT fine-tuning path as a user walks it, through the dydit program: the FLOPs
# target's schedule as the log shows it; calibrating the routers so that sampling meets lambda. Usage, from the repository root:
# bash tests/finetune_workflow.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/finetune_workflow.sh WORKDIR [PYTHON]}/finetune_workflow
prefix=finetune_workflow
source tests/lib.sh
python=${2:-/usr/bin/python3}
mkdir -p "$work"
shape=(--device cpu --threads 1 --depth 2 --hidden 32 --heads 2 --patch 2 --in-channels 1 --input-size 8
    --num-classes 4 --batch 4 --synthetic-size 32 --dynamic --log-every 1)
tiny=(--quiet "${shape[@]}")

# --lambda-hold 3 --lambda-warmup 4 at lambda 0.5: 1 for steps 0-2, then 1 - 0.5 (step - 3) / 4, then 0.5.
if ./dydit train "${tiny[@]}" --steps 10 --lambda 0.5 --lambda-hold 3 --lambda-warmup 4 --out "$work/hold" \
    --log "$work/hold.jsonl" >"$work/out.txt" 2>&1; then
    got=$("$python" -c 'import json,sys; print(" ".join("%.4f" % r["target_ratio"] for r in map(json.loads, open(sys.argv[1])) if "loss" in r))' "$work/hold.jsonl")
    want="1.0000 1.0000 1.0000 1.0000 0.8750 0.7500 0.6250 0.5000 0.5000 0.5000"
    [ "$got" = "$want" ] && pass target_hold_then_ramp "$got" || fail target_hold_then_ramp "got $got, want $want"
else
    fail target_hold_then_ramp "$(tail -n 2 "$work/out.txt")"
fi
# The log: every line has the stage; "step" counts steps done (as the progress lines and the
# checkpoints do), once each; stage 2 resumed from a stage-1 run goes on from its step. At each
# checkpoint and at the end a line gives the realised sampling ratio of the EMA weights beside the
# training ratio.
./dydit train "${tiny[@]}" --stage 1 --steps 6 --log-every 4 --checkpoint-every 3 --probe-samples 4 --probe-steps 5 \
    --out "$work/logs" --log "$work/logs/log.jsonl" >"$work/out.txt" 2>&1 &&
    ./dydit train "${tiny[@]}" --stage 2 --steps 10 --log-every 4 --probe-samples 4 --probe-steps 5 \
        --resume latest --out "$work/logs" --log "$work/logs/log.jsonl" >>"$work/out.txt" 2>&1 ||
    fail log_setup "$(tail -n 2 "$work/out.txt")"
"$python" - "$work/logs/log.jsonl" >"$work/logs.txt" 2>&1 <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
steps = [(r["step"], r["stage"]) for r in rows if "loss" in r]
probes = [(r["step"], r["stage"]) for r in rows if "ema_sampling_ratio" in r]
assert steps == [(1, 1), (4, 1), (6, 1), (8, 2), (10, 2)], steps
assert probes == [(3, 1), (6, 1), (10, 2)], probes
assert all(0 < r["ema_sampling_ratio"] <= 1.1 and "flops_ratio" in r for r in rows if "ema_sampling_ratio" in r)
print("steps", steps, "probes", probes)
PY
[ $? -eq 0 ] && pass log_steps_stages_and_probes "$(cat "$work/logs.txt")" || fail log_steps_stages_and_probes "$(tail -n 2 "$work/logs.txt")"

# a configuration that is no preset is described as "custom DyDiT"
./dydit train "${shape[@]}" --steps 1 --out "$work/named" >"$work/named.txt" 2>&1
grep -q '^model: custom DyDiT depth 2' "$work/named.txt" && pass custom_model_name "$(grep -m1 '^model:' "$work/named.txt" | cut -c1-60)" ||
    fail custom_model_name "$(grep -m1 '^model:' "$work/named.txt")"
# the effective options printed at the start are what runs: tau-end follows tau when unset
grep -q '^  tau-end = 5$' "$work/named.txt" && pass effective_tau_end "tau-end = 5" ||
    fail effective_tau_end "$(grep 'tau' "$work/named.txt" | tr '\n' ' ')"
expect_error lambda_hold_range "--lambda-hold must be in [-1," ./dydit train "${tiny[@]}" --steps 1 --lambda-hold -2 --out "$work/bad"

# dydit calibrate: the shipped Fashion-MNIST DiT with new routers (biases 1.5 and 3, as the
# quickstart starts them), calibrated to 0.5 on one probe; dydit sample then realises 0.5 within
# 0.03 on other noise and classes, and the file differs from the input only in the routers' output
# biases, each shifted by the one value the metadata records.
./dydit train --device cpu --threads 1 --quiet --init models/fmnist-dit.safetensors --dynamic --router-bias 1.5 \
    --token-router-bias 3 --synthetic-size 8 --batch 4 --steps 1 --out "$work/cal" >"$work/out.txt" 2>&1 ||
    fail calibrate_setup "$(tail -n 2 "$work/out.txt")"
if ./dydit calibrate --weights "$work/cal/model.safetensors" --lambda 0.5 --tolerance 0.01 --samples 8 --steps 10 \
    --seed 3 --out "$work/cal/calibrated.safetensors" --quiet >"$work/cal.txt" 2>&1; then
    realised() { ./dydit sample --weights "$1" --num 20 --steps 10 --seed 11 --batch 20 --latents "$work/cal/s.safetensors" \
        2>/dev/null | sed -n 's/.*ratio \([0-9.]*\)).*/\1/p'; }
    before=$(realised "$work/cal/model.safetensors") ratio=$(realised "$work/cal/calibrated.safetensors")
    awk -v r="$ratio" -v b="$before" 'BEGIN { exit !(r > 0.47 && r < 0.53 && b > 0.6) }' &&
        pass calibrate_meets_lambda "sampling ratio $before before, $ratio after, target 0.5" ||
        fail calibrate_meets_lambda "sampling ratio $before before, $ratio after, target 0.5"
    "$python" - "$work/cal/model.safetensors" "$work/cal/calibrated.safetensors" >"$work/diff.txt" 2>&1 <<'PY'
import json, struct, sys
import numpy as np
def read(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    meta = head.pop("__metadata__", {})
    return meta, {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
                  for k, v in head.items()}
_, a = read(sys.argv[1])
meta, b = read(sys.argv[2])
shift = float(meta["router_bias_shift"])
biases = lambda k: k.endswith(("attn_rate.router.bias", "mlp_rate.router.bias", "token_selection.mlp_head.2.bias"))
shifted = [k for k in a if biases(k)]
assert a.keys() == b.keys() and shifted, sorted(a)[:5]
for k in a:
    want = a[k] + np.float32(shift) if k in shifted else a[k]
    assert np.array_equal(b[k], want.astype(np.float32)), k
print("%d bias tensors shifted by %.4f, %d tensors unchanged" % (len(shifted), shift, len(a) - len(shifted)))
PY
    [ $? -eq 0 ] && pass calibrate_shifts_only_router_biases "$(cat "$work/diff.txt")" ||
        fail calibrate_shifts_only_router_biases "$(tail -n 2 "$work/diff.txt")"
else
    fail calibrate_meets_lambda "$(tail -n 2 "$work/cal.txt")"
fi
# Flags correct wrong metadata: a file whose metadata names DiT-XL/2 over tiny shapes is refused
# as it is and read with --model custom --heads 4.
"$python" - "$work/cal/model.safetensors" "$work/wrong_model.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
head = json.loads(raw[8:8 + n])
head["__metadata__"]["model"] = "DiT-XL/2"
text = json.dumps(head).encode()
text += b" " * (-len(text) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])
PY
expect_error wrong_metadata_refused "from metadata model 'DiT-XL/2' disagrees with" ./dydit convert \
    --in "$work/wrong_model.safetensors" --out "$work/fixed.safetensors"
if ./dydit convert --in "$work/wrong_model.safetensors" --model custom --heads 4 --out "$work/fixed.safetensors" \
    >"$work/fixed.txt" 2>&1; then pass flags_override_metadata; else fail flags_override_metadata "$(tail -n 1 "$work/fixed.txt")"; fi

# A DiT file carries no router metadata, so any router kind can start from it, also from a DiT
# written with router_input in its metadata (the shipped one).
./dydit convert --in models/fmnist-dit.safetensors --out "$work/dit.safetensors" >/dev/null 2>&1
"$python" -c 'import json, struct, sys; raw = open(sys.argv[1], "rb").read(); n = struct.unpack("<Q", raw[:8])[0]
meta = json.loads(raw[8:8 + n])["__metadata__"]; sys.exit("router_input" in meta or meta.get("dynamic") != "0")' \
    "$work/dit.safetensors" && pass dit_file_without_router_metadata || fail dit_file_without_router_metadata "router_input in a DiT's metadata"
for from in models/fmnist-dit.safetensors "$work/dit.safetensors"; do
    if ./dydit train --device cpu --threads 1 --quiet --init "$from" --dynamic --router-input condition --synthetic-size 4 \
        --batch 4 --steps 1 --out "$work/cond_init" >"$work/cond_init.txt" 2>&1; then
        pass "condition_routers_from_$(basename "$(dirname "$from")")_dit"
    else
        fail "condition_routers_from_$(basename "$(dirname "$from")")_dit" "$(tail -n 1 "$work/cond_init.txt")"
    fi
    rm -rf "$work/cond_init"
done

# Routers reading the class: sampled by the dynamic engine (rows grouped by width pattern) and
# measured by flops --weights, both realising less than the static network.
./dydit train "${tiny[@]}" --steps 2 --router-input condition --router-bias 0 --token-router-bias 0 \
    --out "$work/cond" >"$work/out.txt" 2>&1 || fail condition_setup "$(tail -n 2 "$work/out.txt")"
if ./dydit sample --weights "$work/cond/model.safetensors" --num 8 --steps 5 --batch 8 \
    --latents "$work/cond/s.safetensors" >"$work/cond.txt" 2>&1; then
    ratio=$(sed -n 's/.*ratio \([0-9.]*\)).*/\1/p' "$work/cond.txt")
    awk -v r="$ratio" 'BEGIN { exit !(r > 0 && r < 0.95) }' && pass condition_router_samples_dynamically "ratio $ratio" ||
        fail condition_router_samples_dynamically "ratio '$ratio'"
else
    fail condition_router_samples_dynamically "$(tail -n 1 "$work/cond.txt")"
fi
# the grouped engine hands only backend buffers to the ops: the guarded backend writes the same bits
./dydit sample --device cpu-guarded --weights "$work/cond/model.safetensors" --num 8 --steps 5 --batch 8 \
    --latents "$work/cond/g.safetensors" >"$work/cond_guarded.txt" 2>&1 &&
    cmp -s "$work/cond/g.safetensors" "$work/cond/s.safetensors" && pass condition_router_guarded_same_bits ||
    fail condition_router_guarded_same_bits "$(tail -n 1 "$work/cond_guarded.txt")"
if ./dydit flops --weights "$work/cond/model.safetensors" --steps 5 --num 4 >"$work/cond_flops.txt" 2>&1; then
    pass condition_router_flops "$(tail -n 1 "$work/cond_flops.txt")"
else
    fail condition_router_flops "$(tail -n 1 "$work/cond_flops.txt")"
fi
expect_error calibrate_needs_lambda "--lambda is required" ./dydit calibrate --weights "$work/cal/model.safetensors" --out "$work/x.safetensors"
expect_error calibrate_refuses_a_dit "has no routers" ./dydit calibrate --weights models/fmnist-dit.safetensors --lambda 0.5 --out "$work/x.safetensors"
exit $status
