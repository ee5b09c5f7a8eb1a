#!/usr/bin/env bash
# Parity of `./dydit forward` and `./dydit grad` with the independent PyTorch reference in tests/ref/.
# Usage, from the repository root: bash tests/parity.sh WORKDIR [PYTHON]
# First checks the reference itself (no C needed), then for each case writes random weights and
# inputs with float64 references, runs the binary and compares every output tensor norm-wise.
# The reference runs in float64 except where the model itself is defined in float32 (the timestep
# features, the per-sample diffusion coefficients), so its own rounding is negligible and the
# norm-wise errors measure the C float32 arithmetic (about 1e-6 forward, a few 1e-6 for gradients).
# The tolerance is 1e-5 relative; indexing or formula mistakes give errors of order 1e-3 and more.
# DyDiT cases (make_case.py --dydit) also compare the eval-mode masks, exactly: make_case keeps every
# router decision of a case clear of its threshold, so float32 and float64 must decide alike. make_case
# also refuses a case whose outputs float32 rounding alone moves by more than 2e-6 (try another seed).
set -u
work=${1:?usage: bash tests/parity.sh WORKDIR [PYTHON]}/parity
python=${2:-/usr/bin/python3}
ref=tests/ref
forward_tol=1e-5
grad_tol=1e-5
status=0
mkdir -p "$work"

"$python" "$ref/selfcheck.py" || status=1

if [ ! -x ./dydit ]; then
    echo "FAIL parity.binary: ./dydit not found in $(pwd); build it with make"
    exit 1
fi

# run_dydit NAME COMMAND DIR FLAGS...: one ./dydit call; prints a FAIL line when it fails.
run_dydit() {
    local name=$1 cmd=$2 dir=$3
    shift 3
    timeout 60 ./dydit "$cmd" --weights "$dir/weights.safetensors" --inputs "$dir/${cmd}_in.safetensors" \
        --out "$dir/${cmd}_out.safetensors" "$@" >"$dir/$cmd.log" 2>&1
    local rc=$?
    [ "$rc" -eq 0 ] && return 0
    if [ "$rc" -eq 124 ]; then
        echo "FAIL parity.$name.$cmd: ./dydit $cmd timed out after 60 s"
    else
        echo "FAIL parity.$name.$cmd: ./dydit $cmd exited with status $rc"
    fi
    tail -n 5 "$dir/$cmd.log" | sed 's/^/    /'
    return 1
}

# parity_case NAME "LOAD_FLAGS" "FORWARD_FLAGS" "GRAD_FLAGS" MAKE_CASE_FLAGS...
# LOAD_FLAGS go to both commands; FORWARD_FLAGS / GRAD_FLAGS to one command each, and to make_case.py,
# which computes the references with the same options.
parity_case() {
    local name=$1 load_flags=$2 forward_flags=$3 grad_flags=$4
    shift 4
    local dir=$work/$name
    if ! "$python" "$ref/make_case.py" --out "$dir" --forward-flags="$forward_flags" --grad-flags="$grad_flags" "$@"
    then
        echo "FAIL parity.$name: make_case.py failed"
        status=1
        return
    fi
    local cmd tol flags
    for cmd in forward grad; do
        tol=$forward_tol
        flags=$forward_flags
        if [ "$cmd" = grad ]; then
            tol=$grad_tol
            flags=$grad_flags
        fi
        # shellcheck disable=SC2086 # the flags are lists of words
        if run_dydit "$name" "$cmd" "$dir" $load_flags $flags; then
            "$python" "$ref/compare.py" "$dir/${cmd}_out.safetensors" "$dir/${cmd}_ref.safetensors" \
                --tol "$tol" --case "$name" || status=1
        else
            status=1
        fi
    done
}

small=(--depth 2 --hidden 48 --heads 3 --patch 2 --input-size 8 --in-channels 3 --num-classes 5 --learn-sigma 1
    --batch 4)
parity_case learn_sigma "" "" "" "${small[@]}" --seed 1
parity_case head_dim72 "" "" "" --depth 1 --hidden 144 --heads 2 --patch 4 --input-size 8 --in-channels 4 \
    --num-classes 7 --learn-sigma 0 --class-dropout 0 --batch 3 --seed 2
parity_case odd_shapes "" "" "" --depth 2 --hidden 40 --heads 5 --patch 1 --input-size 5 --in-channels 2 \
    --mlp-ratio 2.5 --num-classes 3 --learn-sigma 1 --batch 3 --seed 3 --no-pos-embed --float-timesteps
parity_case no_metadata "--heads 3" "" "" "${small[@]}" --seed 4 --no-metadata

# DyDiT (docs/algorithm.md 3, 4.1, 4.3). forward: eval-mode masks (exact) and out of the dynamic or, with
# --complete, the complete path. grad: stage 2 or 1, with or without the logistic router noise.
parity_case dydit "" "" "" "${small[@]}" --seed 5 --dydit
parity_case dydit_noise "" "--complete" "--target 0.3 --tau 3 --flops-weight 1.5" "${small[@]}" --seed 6 \
    --dydit --gumbel
parity_case dydit_stage1 "" "" "--stage 1 --target 0.8" "${small[@]}" --seed 7 --dydit --gumbel --y-complete
parity_case dydit_condition "" "--complete" "--stage 1 --tau 2 --flops-weight 3" --depth 3 --hidden 32 \
    --heads 4 --patch 2 --input-size 6 --in-channels 2 --num-classes 4 --learn-sigma 0 --class-dropout 0 \
    --batch 4 --seed 8 --dydit --router-input condition --gumbel --y-complete
parity_case dydit_odd_shapes "" "" "--stage 1 --target 0.2 --tau 4" --depth 2 --hidden 40 --heads 5 --patch 1 \
    --input-size 5 --in-channels 2 --mlp-ratio 2.5 --num-classes 3 --learn-sigma 1 --batch 3 --seed 13 \
    --no-pos-embed --float-timesteps --dydit --router-input timestep --gumbel --y-complete
parity_case dydit_no_metadata "" "" "--target 0.3" "${small[@]}" --seed 10 --no-metadata --dydit --gumbel

exit $status
