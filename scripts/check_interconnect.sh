#!/usr/bin/env bash
# Checks the machines of a hostfile before a long multi-node run, from the cheapest test up:
#   1. mpirun reaches every machine and each runs one rank (mpirun hostname);
#   2. InfiniBand/RoCE ports are up where the machines have them (ibstat: State Active, and the
#      Rate you paid for);
#   3. MPI point-to-point bandwidth and latency between the first two machines, and all-reduce time
#      over all of them, with the OSU micro-benchmarks when OSU_DIR names their installed
#      libexec/osu-micro-benchmarks directory (https://mvapich.cse.ohio-state.edu/benchmarks/);
#   4. GPU machines: NCCL's own all-reduce bus bandwidth with nccl-tests when NCCL_TESTS_DIR names
#      its build (https://github.com/NVIDIA/nccl-tests: all_reduce_perf, built with MPI=1), one
#      rank per GPU; compare busbw with the links' speed (NVLink inside a machine: hundreds of
#      GB/s; between machines at most 50 GB/s per 400 Gb/s InfiniBand port in use);
#   5. dydit itself: a few steps of a tiny model over every rank, which also proves that every
#      machine sees the binary at the same path.
#
#   scripts/check_interconnect.sh HOSTFILE [GPUS_PER_NODE]
#
# Put NCCL_DEBUG=INFO in the environment to see which transport NCCL picked (NET/IB, NET/Socket,
# P2P/NVLink); "NET/Socket" between machines that have InfiniBand means NCCL_IB_HCA or the
# drivers need attention.
set -uo pipefail
hostfile=${1:?usage: scripts/check_interconnect.sh HOSTFILE [GPUS_PER_NODE]}
gpus=${2:-0}
cd "$(dirname "$0")/.."
hosts=$(grep -v '^\s*\(#\|$\)' "$hostfile" | awk '{print $1}')
nodes=$(echo "$hosts" | wc -l)
mpi=(mpirun --hostfile "$hostfile")

echo "== 1. one rank per machine"
"${mpi[@]}" -np "$nodes" --map-by ppr:1:node hostname || exit 1

echo "== 2. InfiniBand ports"
"${mpi[@]}" -np "$nodes" --map-by ppr:1:node bash -c \
    'if command -v ibstat >/dev/null; then echo "$(hostname): $(ibstat | grep -E "State|Rate" | tr -s " " | paste -sd " ")";
     else echo "$(hostname): no ibstat (infiniband-diags): TCP or RoCE only?"; fi'

if [ -n "${OSU_DIR:-}" ]; then
    echo "== 3. MPI bandwidth and latency (first two machines), all-reduce (all)"
    "${mpi[@]}" -np 2 --map-by ppr:1:node "$OSU_DIR/mpi/pt2pt/osu_bw"
    "${mpi[@]}" -np 2 --map-by ppr:1:node "$OSU_DIR/mpi/pt2pt/osu_latency"
    "${mpi[@]}" -np "$nodes" --map-by ppr:1:node "$OSU_DIR/mpi/collective/osu_allreduce" -m 1048576:268435456
else
    echo "== 3. skipped: set OSU_DIR to the OSU micro-benchmarks' libexec/osu-micro-benchmarks"
fi

if [ "$gpus" -gt 0 ] && [ -n "${NCCL_TESTS_DIR:-}" ]; then
    echo "== 4. NCCL all-reduce, $gpus GPUs per machine"
    "${mpi[@]}" -np $((nodes * gpus)) --map-by "ppr:$gpus:node" -x NCCL_DEBUG -x NCCL_SOCKET_IFNAME -x NCCL_IB_HCA \
        "$NCCL_TESTS_DIR/all_reduce_perf" -b 8M -e 1G -f 2 -g 1
elif [ "$gpus" -gt 0 ]; then
    echo "== 4. skipped: set NCCL_TESTS_DIR to nccl-tests' build directory"
fi

echo "== 5. dydit over every rank"
"${mpi[@]}" -np "$nodes" --map-by ppr:1:node ./dydit train --depth 2 --hidden 64 --heads 4 --patch 2 --input-size 8 \
    --num-classes 4 --batch $((4 * nodes)) --steps 20 --log /dev/null 2>&1 | grep -E '^(ranks|done|error)'
