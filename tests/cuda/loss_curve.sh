#!/usr/bin/env bash
# A GPU check (needs the CUDA build and a GPU; not part of make test): the same tiny DyDiT stage-1
# run of 50 steps (new routers, FLOPs loss, complete-path loss, router noise) on the CPU and on the
# GPU in fp32 and bf16, compared through the logged loss curves (log.jsonl):
#   fp32  each of the first 10 steps' loss within 1e-4 relative of the CPU's (the same draws and
#         ops; only the order of float sums differs), and the mean loss over the 50 steps within 1%
#         (later steps may part where a router decision sits on its threshold);
#   bf16  the mean loss within 5% of the CPU's, and the loss falls on both devices (mean of the
#         last 10 steps below the mean of the first 10).
# Usage, from the repository root: bash tests/cuda/loss_curve.sh WORKDIR [PYTHON]
# (DYDIT names the program, ./dydit by default: tests/cuda/run.sh sets it.)
set -u
dydit=${DYDIT:-./dydit}
work=${1:?usage: bash tests/cuda/loss_curve.sh WORKDIR [PYTHON]}/loss_curve
python=${2:-python3}
rm -rf "$work"
mkdir -p "$work"
status=0

run="--depth 2 --hidden 64 --heads 4 --patch 2 --in-channels 4 --input-size 8 --num-classes 4 --dynamic --stage 1
     --lambda 0.7 --lambda-warmup 0 --synthetic-size 256 --batch 16 --lr 1e-3 --steps 50 --seed 3 --log-every 1 --probe-samples 0 --quiet"
for dev in "cpu" "cuda fp32" "cuda bf16"; do
    set -- $dev
    name=$1${2:+-$2}
    if "$dydit" train $run --device "$1" ${2:+--precision $2} --log "$work/$name.jsonl" >"$work/$name.log" 2>&1; then
        echo "PASS loss_curve.$name.runs"
    else
        echo "FAIL loss_curve.$name.runs: $(tail -n 2 "$work/$name.log" | tr '\n' ' ')"
        status=1
    fi
done
[ $status -eq 0 ] || exit 1

"$python" - "$work" <<'PY' || status=1
import json
import sys

work = sys.argv[1]


def losses(name):
    with open(f"{work}/{name}.jsonl") as f:
        return [r["loss"] for r in map(json.loads, filter(str.strip, f)) if "loss" in r]


def report(ok, name, detail):
    print(f"PASS loss_curve.{name} ({detail})" if ok else f"FAIL loss_curve.{name}: {detail}")
    return ok


def mean(x):
    return sum(x) / len(x)


cpu, fp32, bf16 = losses("cpu"), losses("cuda-fp32"), losses("cuda-bf16")
ok = report(len(cpu) == len(fp32) == len(bf16) == 50, "steps", f"{len(cpu)}, {len(fp32)}, {len(bf16)} logged steps")
if ok:
    first = [abs(g - c) / abs(c) for g, c in zip(fp32[:10], cpu[:10])]
    ok &= report(max(first) <= 1e-4, "fp32.first_10_steps", f"largest relative difference {max(first):.2e} (<= 1e-4)")
    d = abs(mean(fp32) - mean(cpu)) / mean(cpu)
    ok &= report(d <= 0.01, "fp32.mean", f"mean {mean(fp32):.5f} vs CPU {mean(cpu):.5f}: {d:.2%} (<= 1%)")
    d = abs(mean(bf16) - mean(cpu)) / mean(cpu)
    ok &= report(d <= 0.05, "bf16.mean", f"mean {mean(bf16):.5f} vs CPU {mean(cpu):.5f}: {d:.2%} (<= 5%)")
    for name, curve in (("cpu", cpu), ("bf16", bf16)):
        a, b = mean(curve[:10]), mean(curve[-10:])
        ok &= report(b < a, f"{name}.decreases", f"mean of the first 10 steps {a:.4f}, of the last 10 {b:.4f}")
sys.exit(0 if ok else 1)
PY
exit $status
