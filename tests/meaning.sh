#!/usr/bin/env bash
# Inputs that parse but mean nothing sensible: option values outside their documented ranges,
# sizes whose products overflow, a DyDiT file without its routers, a checkpoint state that
# contradicts its files, and non-finite values on their way into or out of a command. Each must
# end with one line `error: ...` naming the option, file or output, and write nothing.
# Usage, from the repository root: bash tests/meaning.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/meaning.sh WORKDIR [PYTHON]}/meaning
prefix=meaning
source tests/lib.sh
python=${2:-/usr/bin/python3}
mkdir -p "$work"

# --- option ranges: the parser names the option and its range -------------------------------------
while IFS='|' read -r name words args; do
    # shellcheck disable=SC2086 # args are whitespace-separated words by design
    expect_error "range.$name" "$words" ./dydit $args
done <<'EOF'
lr_negative|--lr must be in [0, 1]|train --lr -0.001
beta1_negative|--beta1 must be in [0, 1)|train --beta1 -5
beta1_one|--beta1 must be in [0, 1)|train --beta1 1
beta2_two|--beta2 must be in [0, 1)|train --beta2 2
adam_eps_negative|--adam-eps must be in (0, 1]|train --adam-eps -1
adam_eps_zero|--adam-eps must be in (0, 1]|train --adam-eps 0
ema_decay_two|--ema-decay must be in [0, 1]|train --ema-decay 2
ema_decay_negative|--ema-decay must be in [0, 1]|train --ema-decay -1
weight_decay_negative|--weight-decay must be in [0, 1]|train --weight-decay -100
learn_sigma_five|--learn-sigma must be in [0, 1]|train --learn-sigma 5
flops_weight_negative|--flops-weight must be in [0, 1000000]|train --flops-weight -1
flops_group_negative|--flops-group-size must be in [0,|train --flops-group-size -2
lambda_zero|--lambda must be in (0, 1]|train --lambda 0
tau_zero|--tau must be in (0, 1000000]|train --tau 0
tau_end_negative|--tau-end must be in (0, 1000000]|train --tau-end -1
stage_three|--stage must be in [1, 2]|train --stage 3
threads_huge|--threads must be in [0, 1024]|train --threads 100000
seed_negative|--seed must be in [0, 2147483647]|train --seed -1
steps_zero|--steps must be in [1, 2147483647]|train --steps 0
cfg_scale_huge|--cfg-scale must be in [0, 100]|sample --cfg-scale 1e38
eta_huge|--eta must be in [0, 1]|sample --sampler ddim --eta 1e30
sample_steps_zero|--steps must be in [1, 1000]|sample --steps 0
sample_scale_zero|--scale must be in (0, 1000]|sample --scale 0
flops_cfg_negative|--cfg-scale must be in [0, 100]|flops --cfg-scale -1
grad_target_two|--target must be in [0, 1]|grad --target 2
decode_threads|--threads must be in [0, 1024]|decode --threads 5000
encode_workers_zero|--workers must be in [1, 1024]|encode --workers 0
evaluate_lr_negative|--lr must be in (0, 1]|evaluate --lr -1
evaluate_epochs_zero|--epochs must be in [1, 1000]|evaluate --epochs 0
class_dropout_one|--class-dropout must be in [0, 1)|flops --class-dropout 1
hint_heads_zero|--heads must be in [1, 4096]|convert --heads 0
EOF
printf 'depth = 2\nbeta2 = 2\n' >"$work/beta2.conf"
expect_error range.config_file "beta2.conf:2: --beta2 must be in [0, 1), got 2" ./dydit train --config "$work/beta2.conf"
if ./dydit train --help | grep -q -- '--beta1 X .*AdamW first-moment decay, in \[0, 1)'; then
    pass range.in_help
else
    fail range.in_help "train --help does not show the range of --beta1"
fi

# --- sizes: refused before any product can overflow ------------------------------------------------
expect_error size.input_size "--input-size must be in [1, 65536], got 1000000" ./dydit flops --input-size 1000000 --patch 1
expect_error size.num_classes "--num-classes must be in [1, 10000000]" ./dydit flops --num-classes 2147483647
expect_error size.tokens "per-sample activations" ./dydit flops --input-size 65536 --patch 1
expect_error size.patch "--patch must be in [1, 4096]" ./dydit train --patch 1073741824 --input-size 1073741824
expect_error size.all_presets "invalid model DiT-S/8: input size 12 is not a multiple of patch 8" \
    ./dydit flops --all --input-size 12
[ -s "$work/out.txt" ] && fail size.all_presets_no_rows "rows printed before the error" || pass size.all_presets_no_rows
# the largest grid the limits allow is counted without wrapping: 181 x 181 tokens, hidden 2 (the
# parameters as test_sizes counts them by hand, plus 254 x 2 for the 256 timestep frequencies)
big=(--depth 1 --hidden 2 --heads 1 --patch 16 --in-channels 1 --input-size 2896 --num-classes 1 --learn-sigma 0
    --class-dropout 0 --mlp-ratio 1)
row=$(./dydit flops "${big[@]}" 2>&1 | awk 'NR==2{print $2, $7}')
[ "$row" = "67410 32761" ] && pass size.largest_grid "$row" || fail size.largest_grid "got '$row', want '67410 32761'"

# --- fixtures: a tiny DyDiT run with checkpoints, and a DiT ------------------------------------------
tiny=(--depth 2 --hidden 32 --heads 2 --patch 2 --in-channels 2 --input-size 8 --num-classes 3 --batch 4 --quiet
    --log /dev/null)
if ! ./dydit train "${tiny[@]}" --dynamic --steps 3 --checkpoint-every 2 --out "$work/dy" 2>"$work/dy.err" ||
    ! ./dydit train "${tiny[@]}" --steps 1 --out "$work/dit" 2>"$work/dit.err"; then
    fail fixtures "$(tail -n 3 "$work/dy.err" "$work/dit.err")"
    exit 1
fi
W=$work/dy/ema.safetensors
# inputs of forward (x, t, y) and grad (x0, noise, t, y) for the tiny model
"$python" - "$work/inputs.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/ref")
import numpy as np, safetensors_np
rng = np.random.default_rng(1)
x = rng.standard_normal((2, 2, 8, 8)).astype(np.float32)
t, y = np.array([10, 900], np.int64), np.array([0, 2], np.int64)
safetensors_np.save(sys.argv[1], {"x": x, "t": t, "y": y}, {})
safetensors_np.save(sys.argv[1].replace("inputs", "grad_inputs"), {"x0": x, "noise": x[::-1].copy(), "t": t, "y": y}, {})
PY

# rewrite IN to OUT without the tensors whose names contain any of the given words
drop_tensors() {
    "$python" - "$@" <<'PY'
import sys
sys.path.insert(0, "tests/ref")
import safetensors_np
src, dst, *words = sys.argv[1:]
tensors, meta = safetensors_np.load(src)
safetensors_np.save(dst, {k: v for k, v in tensors.items() if not any(w in k for w in words)}, meta)
PY
}

# --- a file that declares a DyDiT must hold every router tensor -----------------------------------
drop_tensors "$W" "$work/no_routers.safetensors" attn_rate mlp_rate token_selection
drop_tensors "$W" "$work/no_width_routers.safetensors" attn_rate mlp_rate
drop_tensors "$W" "$work/no_token_routers.safetensors" token_selection
missing_attn="missing tensor 'blocks.0.attn_rate.router.weight'"
expect_error routers.sample "$missing_attn" ./dydit sample --weights "$work/no_routers.safetensors" --num 1 --steps 2 \
    --latents "$work/never.safetensors"
expect_error routers.convert "$missing_attn" ./dydit convert --in "$work/no_routers.safetensors" \
    --out "$work/never.safetensors"
expect_error routers.flops "$missing_attn" ./dydit flops --weights "$work/no_routers.safetensors" --steps 2
expect_error routers.train_init "$missing_attn" ./dydit train --init "$work/no_routers.safetensors" --steps 1 \
    --batch 4 --quiet --log /dev/null --out "$work/never_run"
expect_error routers.width_only "$missing_attn" ./dydit convert --in "$work/no_width_routers.safetensors" \
    --out "$work/never.safetensors"
expect_error routers.token_only "missing tensor 'blocks.0.token_selection" ./dydit convert \
    --in "$work/no_token_routers.safetensors" --out "$work/never.safetensors"
expect_error routers.forward "$missing_attn" ./dydit forward --weights "$work/no_routers.safetensors" \
    --inputs "$work/inputs.safetensors" --out "$work/never.safetensors"
[ -e "$work/never.safetensors" ] || [ -e "$work/never_run" ] && fail routers.nothing_written "an output exists" ||
    pass routers.nothing_written
# a DiT still becomes a DyDiT with new routers when asked to
if ./dydit train --init "$work/dit/ema.safetensors" --dynamic --steps 1 --batch 4 --quiet --log /dev/null \
    --out "$work/dit_to_dy" 2>"$work/dit_to_dy.err"; then
    pass routers.dit_gets_new_routers
else
    fail routers.dit_gets_new_routers "$(tail -n 2 "$work/dit_to_dy.err")"
fi

# --- a checkpoint's state.json must agree with its files -------------------------------------------
ck=$work/dy/checkpoints/step-0000002
# edit_state CHECKPOINT KEY VALUE: a copy of the checkpoint whose state.json has KEY = VALUE
edit_state() {
    local copy=$work/ck-$2-$3
    rm -rf "$copy" && cp -r "$1" "$copy"
    "$python" - "$copy/state.json" "$2" "$3" <<'PY'
import json, sys
path, key, value = sys.argv[1], sys.argv[2], int(sys.argv[3])
state = json.load(open(path))
state[key] = value
json.dump(state, open(path, "w"))
PY
    echo "$copy"
}
resume() { ./dydit train --resume "$1" --out "$work/resumed" --steps 4 --batch 4 --quiet --log /dev/null; }
expect_error state.step_ahead "metadata step 2 disagrees with state.json's step 5" resume "$(edit_state "$ck" step 5)"
expect_error state.optimizer_step_huge "optimizer_step 1000000000000000 exceeds step 2" \
    resume "$(edit_state "$ck" optimizer_step 1000000000000000)"
expect_error state.optimizer_step_behind "metadata adam_step 2 disagrees with state.json's optimizer_step 1" \
    resume "$(edit_state "$ck" optimizer_step 1)"
expect_error state.step_huge "step 3000000000 is beyond any run" resume "$(edit_state "$ck" step 3000000000)"
expect_error state.seed_negative "seed -4 is not in [0, 2147483647]" resume "$(edit_state "$ck" seed -4)"
expect_error state.batch_zero "batch is not an integer in [1, 1048576]" resume "$(edit_state "$ck" batch 0)"
[ -e "$work/resumed" ] && fail state.nothing_written "$work/resumed exists" || pass state.nothing_written
if resume "$ck" 2>"$work/resume.err"; then pass state.consistent_resumes; else
    fail state.consistent_resumes "$(tail -n 2 "$work/resume.err")"
fi

# --- non-finite values: refused on the way in, never written on the way out ------------------------
# finite but huge weights: every output of the final layer overflows
"$python" - "$W" "$work/huge.safetensors" <<'PY'
import sys
sys.path.insert(0, "tests/ref")
import numpy as np, safetensors_np
tensors, meta = safetensors_np.load(sys.argv[1])
for name in ("final_layer.linear.weight", "final_layer.linear.bias"):
    tensors[name] = np.full_like(tensors[name], 3e38)
safetensors_np.save(sys.argv[2], tensors, meta)
PY
expect_error nonfinite.sample_huge_weight "sampling produced a non-finite value in sample 0; nothing written" \
    ./dydit sample --weights "$work/huge.safetensors" --num 2 --steps 3 --latents "$work/huge_latents.safetensors" --quiet
[ -e "$work/huge_latents.safetensors" ] && fail nonfinite.sample_nothing_written "latents written" ||
    pass nonfinite.sample_nothing_written
if ./dydit sample --weights "$W" --num 2 --steps 3 --cfg-scale 100 --latents "$work/fine.safetensors" \
    >/dev/null 2>"$work/fine.err"; then
    pass nonfinite.sample_largest_guidance
else
    fail nonfinite.sample_largest_guidance "$(tail -n 1 "$work/fine.err")"
fi

expect_error nonfinite.forward_huge_weight "the forward pass produced a non-finite value in sample 0; nothing written" \
    ./dydit forward --weights "$work/huge.safetensors" --inputs "$work/inputs.safetensors" --out "$work/never.safetensors"
expect_error nonfinite.grad_huge_weight "came out non-finite; nothing written" ./dydit grad \
    --weights "$work/huge.safetensors" --inputs "$work/grad_inputs.safetensors" --out "$work/never.safetensors"
[ -e "$work/never.safetensors" ] && fail nonfinite.forward_grad_nothing_written "an output exists" ||
    pass nonfinite.forward_grad_nothing_written

# decode: a tiny random VAE; NaN latents in, and latents that overflow the decoder
vae=$work/vae
"$python" tests/ref/vae_case.py case --out "$vae" --names compvis --channels 16,32 --groups 8 --layers 1 --size 16 \
    --batch 2 >/dev/null 2>&1 || fail decode_fixture "vae_case.py failed"
"$python" - "$vae/stored.safetensors" "$work" <<'PY'
import sys
sys.path.insert(0, "tests/ref")
import numpy as np, safetensors_np
tensors, meta = safetensors_np.load(sys.argv[1])
z = tensors["latents"].astype(np.float32)
nan = z.copy(); nan[1, 0, 0, 0] = np.nan
safetensors_np.save(sys.argv[2] + "/nan_latents.safetensors", {"latents": nan}, {})
huge = z.copy(); huge[1] = 3e38
safetensors_np.save(sys.argv[2] + "/huge_latents.safetensors", {"latents": huge}, {})
PY
expect_error nonfinite.decode_nan_input "nan_latents.safetensors: latent 1 is not finite" ./dydit decode \
    --vae "$vae/vae.safetensors" --latents "$work/nan_latents.safetensors" --npz "$work/never.npz" --out "$work/never.png" \
    --quiet
expect_error nonfinite.decode_overflow "decoding produced a non-finite value in image 1; nothing written" ./dydit decode \
    --vae "$vae/vae.safetensors" --latents "$work/huge_latents.safetensors" --npz "$work/never.npz" \
    --out "$work/never.png" --scale 1 --quiet
[ -e "$work/never.npz" ] || [ -e "$work/never.png" ] && fail nonfinite.decode_nothing_written "an output exists" ||
    pass nonfinite.decode_nothing_written

# evaluate: a classifier file with a NaN weight, and samples that are all NaN
"$python" - "$work" <<'PY'
import sys
sys.path.insert(0, "tests/ref")
import numpy as np, safetensors_np
rng = np.random.default_rng(2)
shapes = {"fc1.weight": (256, 784), "fc1.bias": (256,), "fc2.weight": (128, 256), "fc2.bias": (128,),
          "fc3.weight": (10, 128), "fc3.bias": (10,)}
c = {k: (0.05 * rng.standard_normal(s)).astype(np.float32) for k, s in shapes.items()}
meta = {"format": "dydit-fmnist-classifier"}
safetensors_np.save(sys.argv[1] + "/classifier.safetensors", c, meta)
c["fc2.weight"][3, 7] = np.nan
safetensors_np.save(sys.argv[1] + "/nan_classifier.safetensors", c, meta)
safetensors_np.save(sys.argv[1] + "/nan_samples.safetensors",
                    {"latents": np.full((20, 1, 32, 32), np.nan, np.float32), "labels": np.arange(20) % 10}, {})
PY
expect_error nonfinite.classifier_weight "nan_classifier.safetensors: tensor fc2.weight holds a non-finite value" \
    ./dydit evaluate --classifier "$work/nan_classifier.safetensors" --holdout 300
if [ -d /usr/share/datasets/fashion-mnist ]; then
    expect_error nonfinite.evaluate_samples "nan_samples.safetensors: sample 0 holds a non-finite value" \
        ./dydit evaluate --classifier "$work/classifier.safetensors" --holdout 300 \
        --samples "$work/nan_samples.safetensors"
else
    pass nonfinite.evaluate_samples "skipped: no Fashion-MNIST files"
fi

exit $status
