#!/usr/bin/env bash
# The main job on Fashion-MNIST, from the raw images to a measured DyDiT (run by `make quickstart`,
# after the build): encode the images, train the small classifier of the quality metric, take the
# pretrained class-conditional DiT that ships in models/ (or train it anew), fine-tune it into a
# DyDiT at lambda 0.5 (stage 1, then stage 2), calibrate its routers so that sampling realises 0.5,
# sample both, score them, and write a report.
# Everything lands in runs/quickstart/ (removed first).
#
# Usage, from anywhere: scripts/quickstart.sh
# Sizes: QUICKSTART_SAMPLES (samples per model, default 400), QUICKSTART_SAMPLE_STEPS (DDPM steps,
# default 25); the fine-tuning lengths are in configs/dydit-quickstart-*.conf, and
# QUICKSTART_TRAIN_STEPS="STAGE1 STAGE2" overrides them (the last step of each run; e.g. "10 30" for
# a smoke run of the whole chain). QUICKSTART_PRETRAIN=1 trains the DiT with configs/fmnist-dit.conf
# first (about an hour on 2 cores) instead of taking models/fmnist-dit.safetensors.
set -euo pipefail
cd "$(dirname "$0")/.."

run=runs/quickstart
samples=${QUICKSTART_SAMPLES:-400}
sample_steps=${QUICKSTART_SAMPLE_STEPS:-25}
classes=0,1,2,3,4,5,6,7,8,9
stage1_steps=() stage2_steps=()
if [ -n "${QUICKSTART_TRAIN_STEPS:-}" ]; then
    read -r a b <<<"$QUICKSTART_TRAIN_STEPS"
    stage1_steps=(--steps "$a") stage2_steps=(--steps "$b")
fi
dydit=./dydit
[ -x "$dydit" ] || { echo "error: $dydit is missing: run make first" >&2; exit 1; }

start=$SECONDS
stage() { printf '\n== %s  [%dm%02ds]\n' "$*" $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60)); }
# json_number FILE KEY: the number after "KEY": on the first line of FILE that has one
json_number() { sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" "$1" | head -n 1; }

rm -rf "$run"
mkdir -p "$run/samples"
echo "dydit quickstart: Fashion-MNIST -> DiT -> DyDiT (lambda 0.5) -> samples -> FMNIST-FD; output in $run/"
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) at the start"

stage "1/9 encode Fashion-MNIST (Debian's dataset-fashion-mnist) into latent shards"
"$dydit" encode --source fashion-mnist --out "$run/shards" --quiet 2>&1 | tail -n 1

stage "2/9 train the classifier of the quality metric (MLP 784-256-128-10)"
"$dydit" evaluate --train-classifier --epochs 5 --out "$run/classifier.safetensors" >"$run/classifier.json"
cat "$run/classifier.json"

if [ "${QUICKSTART_PRETRAIN:-0}" = 1 ]; then
    stage "3/9 train the class-conditional DiT (configs/fmnist-dit.conf; about an hour on 2 cores)"
    "$dydit" train --config configs/fmnist-dit.conf --data "$run/shards" --out "$run/dit" --log "$run/dit/log.jsonl" 2>&1 |
        tee "$run/dit.txt" | grep --line-buffered -E '^(step|parameters|wrote)'
    dit=$run/dit/ema.safetensors dit_log=$run/dit/log.jsonl
else
    stage "3/9 the pretrained class-conditional DiT: models/fmnist-dit.safetensors (see models/README.md)"
    dit=models/fmnist-dit.safetensors dit_log=models/fmnist-dit.log.jsonl
    [ -r "$dit" ] || { echo "error: $dit is missing (a partial checkout?); QUICKSTART_PRETRAIN=1 trains it" >&2; exit 1; }
fi
"$dydit" flops --weights "$dit" | tee "$run/dit-flops.txt"

stage "4/9 DyDiT fine-tune, stage 1: dynamic + complete model, lambda 0.5 (configs/dydit-quickstart-stage1.conf)"
"$dydit" train --config configs/dydit-quickstart-stage1.conf --init "$dit" "${stage1_steps[@]}" 2>&1 |
    tee "$run/dydit-stage1.txt" | grep --line-buffered -E '^(step|parameters|wrote)'

stage "5/9 DyDiT fine-tune, stage 2: dynamic model only (configs/dydit-quickstart-stage2.conf)"
"$dydit" train --config configs/dydit-quickstart-stage2.conf "${stage2_steps[@]}" 2>&1 | tee "$run/dydit-stage2.txt" |
    grep --line-buffered -E '^(step|resuming|wrote)'

stage "6/9 calibrate the DyDiT's routers so that sampling realises lambda 0.5 (dydit calibrate)"
# The probe samples as step 7 does, but other noise (seed 2): step 7 checks it on unseen samples.
"$dydit" calibrate --weights "$run/dydit/ema.safetensors" --lambda 0.5 --samples 40 --steps "$sample_steps" --seed 2 \
    --out "$run/dydit/ema-calibrated.safetensors" 2>&1 | tee "$run/calibration.txt" | grep --line-buffered '^calibrated'

stage "7/9 sample $samples images of each model ($sample_steps DDPM steps, guidance 1.5, classes 0-9 in turn)"
for model in static dynamic; do
    weights=$dit
    [ "$model" = dynamic ] && weights=$run/dydit/ema-calibrated.safetensors
    "$dydit" sample --weights "$weights" --num "$samples" --classes "$classes" --steps "$sample_steps" --batch 50 \
        --seed 1 --nrow 20 --grid "$run/samples/$model.png" --latents "$run/samples/$model.safetensors" \
        2>"$run/samples/$model.log" | tee "$run/samples/$model.txt"
done

# The floor: as many real test images as samples per model, scored against the same reference (the
# rest of the test set), since the distance of a finite set grows as the set shrinks.
reference=$((10000 - samples))
stage "8/9 FMNIST-FD against $reference real test images: static, dynamic, $samples held-out real images"
for set in static dynamic; do
    "$dydit" evaluate --classifier "$run/classifier.safetensors" --holdout "$samples" \
        --samples "$run/samples/$set.safetensors" | tee "$run/fd-$set.json"
done
"$dydit" evaluate --classifier "$run/classifier.safetensors" --holdout "$samples" | tee "$run/fd-real.json"

stage "9/9 plot and report"
"$dydit" plot --out "$run/curves.png" \
    --panels "$dit_log:loss,$run/dydit/log.jsonl:loss,$run/dydit/log.jsonl:flops_ratio:0.5"

# `dydit sample` ends with: sampled N images in T s (R images/s); G GMACs per image-forward
# (static S, ratio F)[; ...]
summary_field() { grep '^sampled ' "$1" | sed -n "s/$2/\1/p"; }
static_ips=$(summary_field "$run/samples/static.txt" '.*(\([0-9.e+]*\) images\/s).*')
dynamic_ips=$(summary_field "$run/samples/dynamic.txt" '.*(\([0-9.e+]*\) images\/s).*')
static_gmacs=$(summary_field "$run/samples/static.txt" '.*; \([0-9.e+]*\) GMACs per image-forward.*')
dynamic_gmacs=$(summary_field "$run/samples/dynamic.txt" '.*; \([0-9.e+]*\) GMACs per image-forward.*')
flops_ratio=$(summary_field "$run/samples/dynamic.txt" '.*ratio \([0-9.e+]*\)).*')
dit_params=$(awk 'NR == 2 { print $2 }' "$run/dit-flops.txt")
dydit_params=$(sed -n 's/^parameters: \([0-9]*\).*/\1/p' "$run/dydit-stage1.txt")
speedup=$(awk -v a="$dynamic_ips" -v b="$static_ips" 'BEGIN { printf "%.2f", a / b }')
classifier_acc=$(json_number "$run/classifier.json" test_accuracy)
fd_static=$(json_number "$run/fd-static.json" fmnist_fd)
fd_dynamic=$(json_number "$run/fd-dynamic.json" fmnist_fd)
fd_real=$(json_number "$run/fd-real.json" fmnist_fd)
acc_static=$(json_number "$run/fd-static.json" class_accuracy)
acc_dynamic=$(json_number "$run/fd-dynamic.json" class_accuracy)
acc_real=$(json_number "$run/fd-real.json" class_accuracy)
uncalibrated_ratio=$(sed -n 's/.*realised FLOPs ratio \([0-9.]*\) ->.*/\1/p' "$run/calibration.txt")
bias_shift=$(sed -n 's/.*router bias shift \([-+0-9.]*\),.*/\1/p' "$run/calibration.txt")
final_ratio=$(grep '"flops_ratio"' "$run/dydit/log.jsonl" | tail -n 1 | sed 's/.*"flops_ratio":\([-0-9.e]*\).*/\1/')
wall=$((SECONDS - start))
load=$(cut -d' ' -f1-3 /proc/loadavg)

cat >"$run/report.json" <<EOF
{"parameters":{"dit":$dit_params,"dydit":$dydit_params},
 "gmacs_per_forward":{"static":$static_gmacs,"dynamic":$dynamic_gmacs},
 "realised_flops_ratio":$flops_ratio,"training_flops_ratio_last_log":$final_ratio,
 "calibration":{"uncalibrated_realised_ratio":$uncalibrated_ratio,"router_bias_shift":$bias_shift},
 "sampling_images_per_s":{"static":$static_ips,"dynamic":$dynamic_ips},"speedup":$speedup,
 "sampling":{"samples_per_model":$samples,"ddpm_steps":$sample_steps,"cfg_scale":1.5},
 "fmnist_fd":{"static":$fd_static,"dynamic":$fd_dynamic,"real_holdout":$fd_real},
 "class_accuracy":{"static":$acc_static,"dynamic":$acc_dynamic,"real_holdout":$acc_real,"classifier_test":$classifier_acc},
 "wall_seconds":$wall,"cores":$(nproc),"load_average_at_end":"$load"}
EOF

cat >"$run/report.md" <<EOF
# dydit quickstart report

Fashion-MNIST (32x32x1 pixels, 10 classes): the class-conditional DiT $dit (depth 4, width 128,
4 heads, patch 4), fine-tuned into a DyDiT at lambda 0.5 (stage 1, then stage 2).
Samples: $samples per model, DDPM $sample_steps steps, guidance 1.5, classes 0-9 in turn, same noise.

| | static DiT | DyDiT | real test images |
|---|---|---|---|
| parameters | $dit_params | $dydit_params (with routers) | |
| GMACs per forward (per image) | $static_gmacs | $dynamic_gmacs (realised ratio $flops_ratio) | |
| sampling images/s | $static_ips | $dynamic_ips (speed-up ${speedup}x) | |
| FMNIST-FD (lower is better) | $fd_static | $fd_dynamic | $fd_real (the floor) |
| class accuracy under the classifier | $acc_static | $acc_dynamic | $acc_real |

- FMNIST-FD: the Frechet distance between Gaussians fitted to the 128 penultimate features of a
  small MLP classifier (test accuracy $classifier_acc), for the scored set and for $reference real
  test images; the real column scores the other $samples test images, which is about what a perfect
  model would get with as many samples. It is not FID and not comparable with any paper's FID.
- The DyDiT's FLOPs ratio at the last training log: $final_ratio (target 0.5). Its EMA weights
  sampled at a realised ratio of $uncalibrated_ratio; \`dydit calibrate\` shifted every router's
  output bias by $bias_shift so that sampling realises 0.5 (calibration.txt), and the DyDiT column
  is that calibrated model, sampled with other noise than the calibration's.
- Grids: samples/static.png, samples/dynamic.png (each column one class: T-shirt/top, Trouser,
  Pullover, Dress, Coat, Sandal, Shirt, Sneaker, Bag, Ankle boot, twice per row).
- curves.png, top to bottom: the DiT's training loss, the DyDiT's loss, the DyDiT's realised FLOPs
  ratio against the target 0.5 (dashed), each against the training step.
- Wall time ${wall} s on $(nproc) cores (load average $load at the end).
EOF

stage "done in ${wall} s"
cat "$run/report.md"
