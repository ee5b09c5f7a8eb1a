#!/usr/bin/env bash
# Data-parallel training over several machines with OpenMPI's mpirun and a hostfile.
#
#   scripts/train_multinode.sh HOSTFILE RANKS_PER_NODE THREADS_PER_RANK -- TRAIN_OPTIONS...
#   e.g. scripts/train_multinode.sh scripts/hostfile.example 2 32 -- --config configs/fmnist-dit.conf
#
# Every machine needs the same dydit binary, data and --init/--resume files at the same paths
# (a shared filesystem, or copies); rank 0 alone writes --out and the log, so --out must be where
# a later --resume can read it on every machine. The options mean the same run on any number of
# ranks: --batch is the global batch (split evenly over the ranks, which must divide it), and
# --micro-batch bounds what one rank computes at once.
#
# Placement: each rank is bound to THREADS_PER_RANK cores (PE=) and runs that many OpenMP threads;
# RANKS_PER_NODE x THREADS_PER_RANK should be the cores of a machine. Variables listed with -x reach
# the ranks on other machines (local ranks inherit the whole environment).
#
# Networks: OpenMPI picks TCP, shared memory or UCX (InfiniBand/RoCE) by itself. On machines with
# several IP interfaces, name the one the machines share (else a rank may try an unreachable one
# and the job stalls at start):
#   export OMPI_MCA_btl_tcp_if_include=eth0 OMPI_MCA_oob_tcp_if_include=eth0
# With UCX, UCX_NET_DEVICES=mlx5_0:1 picks the InfiniBand port.
#
# A rank that fails ends the job: dydit prints which rank and why, and mpirun stops the others;
# a rank that stops answering ends it after --collective-timeout seconds (default 600).
#
# Stopping: SIGTERM or SIGINT to this script (kill, Ctrl-C, a scheduler) reaches every rank as
# SIGUSR1, which mpirun forwards without ending the job: the ranks finish the same step, write its
# checkpoint and exit 0, and so do mpirun and this script. (OpenMPI's mpirun, signalled itself with
# SIGTERM or SIGINT, sends the ranks SIGCONT, SIGTERM after odls_base_sigkill_timeout seconds and
# SIGKILL after as many again, and exits 1. The ranks still stop gracefully if a step and a
# checkpoint fit in the timeout: OpenMPI's default is 1 s, set here to DYDIT_STOP_GRACE seconds,
# default 30. The same sequence ends a job whose rank failed, which then takes up to twice that.)
set -euo pipefail
if [ $# -lt 4 ] || [ "$4" != -- ]; then
    sed -n '2,5p' "$0"
    exit 1
fi
hostfile=$1 per_node=$2 threads=$3
shift 4
nodes=$(grep -cv '^\s*\(#\|$\)' "$hostfile")
forward=(-x OMP_NUM_THREADS="$threads" -x OMP_WAIT_POLICY=passive)
for v in OMPI_MCA_btl_tcp_if_include OMPI_MCA_oob_tcp_if_include UCX_NET_DEVICES NCCL_SOCKET_IFNAME NCCL_IB_HCA \
    NCCL_DEBUG; do
    if [ -n "${!v:-}" ]; then forward+=(-x "$v"); fi
done
cd "$(dirname "$0")/.."
set -m # mpirun in a process group of its own: a terminal's Ctrl-C reaches this script alone
mpirun --hostfile "$hostfile" -np $((nodes * per_node)) \
    --map-by "ppr:$per_node:node:PE=$threads" --bind-to core "${forward[@]}" \
    --mca odls_base_sigkill_timeout "${DYDIT_STOP_GRACE:-30}" \
    ./dydit train "$@" &
launcher=$!
trap 'kill -USR1 "$launcher" 2>/dev/null || true' TERM INT
# a trapped signal interrupts wait; wait again until mpirun has exited
while :; do
    status=0
    wait "$launcher" || status=$?
    kill -0 "$launcher" 2>/dev/null || break
done
exit "$status"
