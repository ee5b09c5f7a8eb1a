#!/usr/bin/env bash
# CPU scaling of data-parallel training on one machine: the same run (DiT-S/4 on 32x32x4 latents,
# global batch 16, synthetic data) as 1 process with 1 and with N threads, and as N ranks of 1
# thread under mpirun, each repeated and interleaved so that background load hits all alike.
# Prints the median images/s of each; all of them compute the same model (tests/dist.sh).
#
#   scripts/cpu_scaling.sh [N (default: the number of cores)] [REPEATS (default 3)]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-$(nproc)}
repeats=${2:-3}
run=(--model DiT-S/4 --input-size 32 --in-channels 4 --num-classes 10 --synthetic-size 256 --batch 16 --steps 12
    --log /dev/null)
mpi=(mpirun --bind-to core)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)

rate() { "$@" ./dydit train "${run[@]}" 2>&1 | sed -n 's/^done: .*, \([0-9.]*\) img\/s.*/\1/p'; }
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

declare -A rates
for _ in $(seq "$repeats"); do
    rates[one]+="$(OMP_NUM_THREADS=1 rate env) "
    rates[threads]+="$(OMP_NUM_THREADS=$n rate env) "
    rates[ranks]+="$(OMP_NUM_THREADS=1 rate "${mpi[@]}" -np "$n") "
done
one=$(tr ' ' '\n' <<<"${rates[one]}" | grep . | median)
printf '%-28s %8s %8s\n' configuration 'img/s' speed-up
for k in one threads ranks; do
    case $k in
    one) label="1 process x 1 thread" ;;
    threads) label="1 process x $n threads" ;;
    ranks) label="$n ranks x 1 thread (mpirun)" ;;
    esac
    m=$(tr ' ' '\n' <<<"${rates[$k]}" | grep . | median)
    printf '%-28s %8s %8.2f\n' "$label" "$m" "$(echo "$m / $one" | awk '{print $1 / $3}')"
done
