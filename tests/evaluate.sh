#!/usr/bin/env bash
# dydit evaluate end to end on the real Fashion-MNIST files: a one-epoch classifier, the held-out
# real set, the same images written as a samples file (the distance and accuracy must be the same
# numbers), the same images with wrong labels, and one-line errors.
# Usage, from the repository root: bash tests/evaluate.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/evaluate.sh WORKDIR [PYTHON]}/evaluate
python=${2:-/usr/bin/python3}
prefix=evaluate
mkdir -p "$work"
. tests/lib.sh
d=./dydit
c=$work/classifier.safetensors
field() { sed -n "s/.*\"$2\":\([-0-9.eE+]*\).*/\1/p" "$1"; }

if "$d" evaluate --train-classifier --epochs 1 --out "$c" >"$work/train.json" 2>"$work/train.log" &&
    awk -v a="$(field "$work/train.json" test_accuracy)" 'BEGIN { exit !(a > 0.8) }'; then
    pass train_classifier "one epoch, test accuracy $(field "$work/train.json" test_accuracy)"
else
    fail train_classifier "$(cat "$work/train.json" "$work/train.log" | tail -n 3)"
fi

"$d" evaluate --classifier "$c" --holdout 300 >"$work/real.json" 2>&1 || fail real "$(cat "$work/real.json")"
"$python" tests/ref/fmnist_as_samples.py "$work/same.safetensors" 300 &&
    "$python" tests/ref/fmnist_as_samples.py "$work/wrong.safetensors" 300 --label-shift 1 ||
    fail fixture "fmnist_as_samples.py failed"
"$d" evaluate --classifier "$c" --holdout 300 --samples "$work/same.safetensors" >"$work/same.json" 2>&1
"$d" evaluate --classifier "$c" --holdout 300 --samples "$work/wrong.safetensors" >"$work/wrong.json" 2>&1
fd_real=$(field "$work/real.json" fmnist_fd) acc_real=$(field "$work/real.json" class_accuracy)
fd_same=$(field "$work/same.json" fmnist_fd) acc_same=$(field "$work/same.json" class_accuracy)
acc_wrong=$(field "$work/wrong.json" class_accuracy)
if [ -n "$fd_real" ] && [ "$fd_real" = "$fd_same" ] && [ "$acc_real" = "$acc_same" ] &&
    grep -q '"count":300,"reference_count":9700' "$work/same.json"; then
    pass samples_equal_real "FD $fd_same, accuracy $acc_same on both paths"
else
    fail samples_equal_real "real: $(cat "$work/real.json"); as samples: $(cat "$work/same.json")"
fi
if awk -v r="$acc_real" -v w="$acc_wrong" 'BEGIN { exit !(r > 0.75 && w < 0.25) }'; then
    pass wrong_labels "accuracy $acc_real with the true labels, $acc_wrong with shifted ones"
else
    fail wrong_labels "accuracy $acc_real vs $acc_wrong"
fi
# a Gaussian fitted to 300 real images lies close to the reference; a set of a single repeated
# class does not
"$python" - "$work" <<'PY' || fail fixture "one-class fixture failed"
import sys; sys.path.insert(0, "tests/ref"); import numpy as np, safetensors_np
t, _ = safetensors_np.load(sys.argv[1] + "/same.safetensors")
keep = t["labels"] == 1
safetensors_np.save(sys.argv[1] + "/trousers.safetensors", {"latents": t["latents"][keep], "labels": t["labels"][keep]})
PY
"$d" evaluate --classifier "$c" --holdout 300 --samples "$work/trousers.safetensors" >"$work/trousers.json" 2>&1
fd_one=$(field "$work/trousers.json" fmnist_fd)
if awk -v a="$fd_real" -v b="$fd_one" 'BEGIN { exit !(a >= 0 && b > 5 * a) }'; then
    pass one_class_far "FD $fd_one for trousers only vs $fd_real for all classes"
else
    fail one_class_far "FD $fd_one vs $fd_real"
fi

expect_error no_mode "--train-classifier" "$d" evaluate
expect_error train_needs_out "--out" "$d" evaluate --train-classifier
expect_error holdout_range "--holdout" "$d" evaluate --classifier "$c" --holdout 9999
expect_error not_classifier "not a classifier" "$d" evaluate --classifier "$work/same.safetensors"
expect_error bad_samples "latents (N, 1, 32, 32)" "$d" evaluate --classifier "$c" --samples "$c"
exit $status
