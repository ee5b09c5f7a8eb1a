#!/usr/bin/env bash
# The dydit program as a user meets it: --help everywhere, one-line errors with a non-zero status
# for bad options, config files and inputs, and a train -> forward -> resume-from-weights round
# trip through files. Usage, from the repository root: bash tests/cli.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/cli.sh WORKDIR [PYTHON]}/cli
prefix=cli
source tests/lib.sh
python=${2:-/usr/bin/python3}
mkdir -p "$work"

expect_ok() { # expect_ok NAME COMMAND...
    local name=$1
    shift
    if "$@" >"$work/out.txt" 2>"$work/err.txt"; then pass "$name"; else fail "$name" "$(tail -n 3 "$work/err.txt")"; fi
}

expect_ok help ./dydit --help
for cmd in train forward grad convert flops encode decode plot evaluate; do
    if ./dydit $cmd --help | grep -q '^usage: dydit '"$cmd"; then pass "help.$cmd"; else fail "help.$cmd" "no usage line"; fi
done
./dydit >/dev/null 2>&1 && fail no_command "exited 0" || pass no_command
expect_error unknown_command "unknown command 'frobnicate'" ./dydit frobnicate
expect_error unknown_option "unknown option --lrr" ./dydit train --lrr 1
expect_error bad_integer "--steps wants an integer" ./dydit train --steps ten
expect_error missing_value "--lr needs a value" ./dydit train --lr
expect_error unknown_preset "unknown model 'DiT-M/2'" ./dydit flops --model DiT-M/2
expect_error invalid_shape "not divisible by heads" ./dydit flops --hidden 100 --heads 3
expect_error exclusive_policies "exclude each other" ./dydit train --clip-grad-norm 1 --skip-grad-norm 1

printf 'depth = 2\nhidden = 32\n# a comment\nheads = 2 # trailing comment\nbogus_key = 3\n' >"$work/bad.conf"
expect_error config_unknown_key "bad.conf:5: unknown key 'bogus_key'" ./dydit train --config "$work/bad.conf"
printf 'depth = 2\nhidden\n' >"$work/bad2.conf"
expect_error config_syntax "bad2.conf:2: expected 'key = value'" ./dydit train --config "$work/bad2.conf"
expect_error config_missing "cannot open config file" ./dydit train --config "$work/none.conf"
# command line over config file: depth 2 from the file, hidden 48 from the command line
printf 'depth = 2\nhidden = 32\nheads = 2\n' >"$work/small.conf"
if ./dydit flops --config "$work/small.conf" --hidden 48 --patch 4 --input-size 8 | grep -q custom &&
    [ "$(./dydit flops --config "$work/small.conf" --hidden 48 --patch 4 --input-size 8 | awk 'NR==2{print $2}')" = \
        "$(./dydit flops --depth 2 --hidden 48 --heads 2 --patch 4 --input-size 8 | awk 'NR==2{print $2}')" ]; then
    pass config_then_command_line
else
    fail config_then_command_line "parameter counts differ"
fi

# a latent set written by numpy: train on it, then use the weights
"$python" - "$work/latents.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/ref")
import numpy as np, safetensors_np
rng = np.random.default_rng(0)
safetensors_np.save(sys.argv[1], {"latents": rng.standard_normal((12, 2, 8, 8)).astype(np.float32),
                                  "labels": (np.arange(12) % 3).astype(np.int64)}, {"num_classes": "3"})
PY
small=(--depth 1 --hidden 32 --heads 2 --patch 2 --in-channels 2 --input-size 8 --num-classes 3)
expect_ok train_from_file ./dydit train "${small[@]}" --data "$work/latents.safetensors" --steps 3 --batch 4 \
    --log "$work/run/log.jsonl" --out "$work/run" --quiet
if [ "$(wc -l <"$work/run/log.jsonl")" -ge 2 ] && "$python" -c '
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
keys = {"step", "loss", "mse", "vb", "grad_norm", "lr", "updated", "images_per_s"}
sys.exit(0 if all(keys <= set(r) for r in rows) and rows[-1]["step"] == 3 else 1)' "$work/run/log.jsonl"; then
    pass json_log "one JSON object per logged step"
else
    fail json_log "$(head -c 300 "$work/run/log.jsonl")"
fi
expect_error train_wrong_shape "holds 2x8x8 latents but the model takes 4x8x8" ./dydit train "${small[@]}" \
    --in-channels 4 --data "$work/latents.safetensors" --steps 1 --quiet
expect_error train_init_conflict "--depth conflicts with --init" ./dydit train --init "$work/run/model.safetensors" \
    --depth 3 --steps 1 --quiet
expect_ok train_init ./dydit train --init "$work/run/ema.safetensors" --data "$work/latents.safetensors" --steps 2 \
    --batch 4 --log /dev/null --quiet

"$python" - "$work/forward_in.safetensors" "$work/forward_bad.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/ref")
import numpy as np, safetensors_np
x = np.zeros((2, 2, 8, 8), np.float32)
safetensors_np.save(sys.argv[1], {"x": x, "t": np.array([0, 999], np.int64), "y": np.array([0, 3], np.int64)})
safetensors_np.save(sys.argv[2], {"x": x[:, :1], "t": np.array([0, 5], np.int64), "y": np.array([0, 1], np.int64)})
PY
expect_ok forward_trained_weights ./dydit forward --weights "$work/run/model.safetensors" \
    --inputs "$work/forward_in.safetensors" --out "$work/forward_out.safetensors"
expect_error forward_wrong_shape "tensor 'x' has shape [2, 1, 8, 8], want [2, 2, 8, 8]" ./dydit forward \
    --weights "$work/run/model.safetensors" --inputs "$work/forward_bad.safetensors" --out "$work/o.safetensors"
expect_error forward_missing_weights "none.safetensors" ./dydit forward --weights "$work/none.safetensors" \
    --inputs "$work/forward_in.safetensors" --out "$work/o.safetensors"
expect_error forward_required "--weights, --inputs and --out are required" ./dydit forward --weights x
head -c 100 "$work/run/model.safetensors" >"$work/truncated.safetensors"
expect_error forward_truncated_weights "truncated.safetensors" ./dydit forward --weights "$work/truncated.safetensors" \
    --inputs "$work/forward_in.safetensors" --out "$work/o.safetensors"
expect_error grad_needs_x0 "no tensor 'x0'" ./dydit grad --weights "$work/run/model.safetensors" \
    --inputs "$work/forward_in.safetensors" --out "$work/o.safetensors"
[ -e "$work/o.safetensors" ] && fail no_partial_outputs "a failed command left an output file" || pass no_partial_outputs

# DyDiT: fine-tune the weights trained above, then use them
expect_error complete_needs_dydit "--complete is for DyDiT weights" ./dydit forward --weights "$work/run/model.safetensors" \
    --inputs "$work/forward_in.safetensors" --out "$work/o.safetensors" --complete
expect_error reorder_needs_init "--reorder-heads needs --init" ./dydit train "${small[@]}" --dynamic --reorder-heads --steps 1
expect_error resume_needs_out "--resume needs --out" ./dydit train --resume "$work/run" --steps 5
expect_error bad_router_input "--router-input must be 'timestep' or 'condition'" ./dydit train "${small[@]}" --dynamic \
    --router-input label --steps 1
expect_ok dydit_train ./dydit train --init "$work/run/model.safetensors" --dynamic --reorder-heads --router-bias 2 \
    --token-router-bias 3 --stage 1 --lambda 0.5 --data "$work/latents.safetensors" --steps 4 --batch 4 --log-every 1 \
    --log "$work/dydit/log.jsonl" --out "$work/dydit" --quiet
if "$python" -c '
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if "loss" in r]  # steps, not the EMA probe
keys = {"diffusion_loss", "complete_loss", "flops_loss", "target_ratio", "flops_ratio", "head_keep", "group_keep",
        "token_keep", "updated", "stage"}
sys.exit(0 if len(rows) == 4 and all(keys <= set(r) for r in rows) and rows[0]["target_ratio"] == 1.0 else 1)' \
    "$work/dydit/log.jsonl"; then
    pass dydit_json_log "diffusion, complete and FLOPs losses, target and realised ratio, keep rates"
else
    fail dydit_json_log "$(head -c 300 "$work/dydit/log.jsonl")"
fi
expect_error router_bias_on_dydit "set the biases of new routers" ./dydit train --init "$work/dydit/model.safetensors" \
    --router-bias 1 --steps 1 --data "$work/latents.safetensors" --quiet
expect_error reorder_trained_routers "already has trained routers" ./dydit train --init "$work/dydit/model.safetensors" \
    --reorder-heads --steps 1 --data "$work/latents.safetensors" --quiet
expect_ok dydit_resume ./dydit train --resume "$work/dydit" --stage 2 --data "$work/latents.safetensors" --steps 6 --log-every 1 \
    --batch 4 --log "$work/dydit/log.jsonl" --out "$work/dydit" --quiet
if [ "$(grep -c '"loss"' "$work/dydit/log.jsonl")" -eq 6 ] && [ -f "$work/dydit/checkpoints/step-0000006/state.json" ]; then
    pass dydit_resume_continues "steps 4 and 5 appended, checkpoint at 6"
else
    fail dydit_resume_continues "$(grep -c '"loss"' "$work/dydit/log.jsonl") step lines"
fi
expect_ok dydit_forward ./dydit forward --weights "$work/dydit/ema.safetensors" --inputs "$work/forward_in.safetensors" \
    --out "$work/dydit_forward.safetensors"
if "$python" -c '
import sys
sys.path.insert(0, "tests/ref")
import safetensors_np
t, _ = safetensors_np.load(sys.argv[1])
ok = t["attn_mask"].shape == (2, 1, 2) and t["token_mask"].shape == (2, 1, 16) and (t["attn_mask"][:, :, 0] == 1).all()
sys.exit(0 if ok else 1)' "$work/dydit_forward.safetensors"; then
    pass dydit_forward_masks "attn_mask (B,L,H), token_mask (B,L,N), head 0 on"
else
    fail dydit_forward_masks "unexpected mask tensors"
fi
if ./dydit flops --model DiT-XL/2 --dynamic | grep -q " 3295012 "; then pass flops_dynamic; else fail flops_dynamic "no router count"; fi
# a DiT file's counts equal those of its shape given by hand
if [ "$(./dydit flops --weights "$work/run/ema.safetensors" | awk 'NR==2{print $2, $4}')" = \
    "$(./dydit flops "${small[@]}" | awk 'NR==2{print $2, $4}')" ]; then
    pass flops_dit_weights
else
    fail flops_dit_weights "$(./dydit flops --weights "$work/run/ema.safetensors" 2>&1 | head -n 3)"
fi

# real data: Fashion-MNIST test split -> shards -> two training steps
if [ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ]; then
    expect_ok encode_fashion_mnist ./dydit encode --source fashion-mnist --split test --out "$work/fm" --quiet
    expect_ok train_from_shards ./dydit train --data "$work/fm" --depth 1 --hidden 32 --heads 2 --patch 4 \
        --in-channels 1 --input-size 32 --num-classes 10 --steps 2 --batch 8 --log /dev/null --quiet
    expect_error shards_shape_mismatch "holds 1x32x32 latents but the model takes 4x32x32" ./dydit train --data "$work/fm" \
        --depth 1 --hidden 32 --heads 2 --patch 4 --in-channels 4 --input-size 32 --num-classes 10 --steps 1 --quiet
else
    fail fashion_mnist "dataset-fashion-mnist is not installed"
fi
