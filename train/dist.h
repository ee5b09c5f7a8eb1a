// train/dist.h: the communicator of data-parallel training. A run is `world` identical processes
// (ranks) started by a launcher (mpirun, srun); each holds a full model and a slice of every batch.
//
// Two implementations sit behind one interface: a single process (world 1, every collective is
// the identity) and MPI (dist_mpi.c, built when the Makefile finds MPI). The collectives act on
// host memory, which is where the CPU backend keeps its buffers; a GPU backend reduces device
// buffers through NCCL (train/dist_nccl.h), bootstrapped by this communicator.
//
// Failures end the whole job, never one rank alone: an MPI error, a collective that waits longer
// than the timeout, and a rank that exits early (die() anywhere) abort every rank with a one-line
// message naming the rank.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct DistBackend DistBackend;

typedef struct {
    int rank, world;             // this process and the number of processes
    int local_rank, local_world; // the same among the processes on this machine (one GPU per local rank)
    char host[64];               // this machine's name, for messages
    const DistBackend *backend;
    void *state; // the backend's
} Dist;

// The one process of a run without a launcher.
Dist *dist_single(void);

// Joins the job the launcher started (MPI when this build has it), or returns dist_single() when
// no launcher started this process. A collective that waits more than timeout_s seconds for the
// other ranks aborts the job (0: wait forever). Exits with a one-line error when a launcher
// started several processes but this build has no MPI.
Dist *dist_open(double timeout_s);
// Leaves the job (MPI_Finalize); after it, exiting no longer aborts the other ranks.
void dist_close(Dist *d);

// Prints "error: rank R of N (HOST): message" and ends every rank of the job.
__attribute__((noreturn, format(printf, 2, 3))) void dist_abort(Dist *d, const char *fmt, ...);

// ZeRO layout: a flat range of n elements cut into `world` contiguous shards of ceil(n / world)
// (the last ones shorter or empty); rank r owns [offset, offset + count).
typedef struct {
    size_t offset, count;
} DistShard;
DistShard dist_shard(size_t n, int world, int rank);

// x (n) = sum over ranks, in place, in buckets of at most `bucket` elements; the order of the sum
// is fixed for a given world and bucket size, so runs are reproducible.
void dist_allreduce_sum_f32(Dist *d, float *x, size_t n, size_t bucket);
// x (n) = sum over ranks, in place, in double (loss terms, norms, FLOPs group sums).
void dist_allreduce_sum_f64(Dist *d, double *x, size_t n);
// shard (dist_shard(n).count) = this rank's shard of the sum over ranks of full (n).
void dist_reduce_scatter_sum_f32(Dist *d, const float *full, float *shard, size_t n);
// full (n): every rank's shard, taken from its place in every rank's full, in place.
void dist_allgather_f32(Dist *d, float *full, size_t n);
// full (n) on rank `root` = the ranks' shards; shard holds this rank's dist_shard(n).count elements.
void dist_gather_f32(Dist *d, const float *shard, float *full, size_t n, int root);
// bytes of buf from rank `root` to every rank.
void dist_broadcast(Dist *d, void *buf, size_t bytes, int root);
// Returns once every rank has called it.
void dist_barrier(Dist *d);

// Test hook: DYDIT_TEST_FAULT=die:R:S makes rank R exit with an error when it reaches step S,
// hang:R:S makes it stop responding there (the tests check that the job ends promptly); nan:R:S
// returns 1 on rank R at step S, whose caller then poisons its gradients (the tests check that the
// update is skipped everywhere and nothing non-finite is written). Else 0.
int dist_test_fault(Dist *d, long step);
