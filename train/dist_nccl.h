// train/dist_nccl.h: the GPU communicator of data-parallel training, for the CUDA backend: NCCL
// collectives on device buffers, one GPU per rank, bootstrapped by the job's Dist (MPI): rank 0's
// ncclUniqueId is broadcast through it. The GPU is the one the rank's backend chose; no two ranks of
// a machine may use the same one (train/gpu_sharing.h).
//
// Collectives are queued on the communicator's own stream in call order and return at once; the
// backend orders its kernels against dist_nccl_stream() and calls dist_nccl_wait() before the host
// needs a result. Any CUDA or NCCL failure, and a wait that exceeds the timeout (a peer that stopped
// responding), aborts the NCCL communicator and then the whole job with one line naming the rank.
//
// ZeRO shards follow dist_shard(), but NCCL's reduce-scatter and all-gather move equal pieces:
// buffers passed as `full` must hold world * ceil(n / world) elements, the tail beyond n zero.
#pragma once
#include <stddef.h>

#include "train/dist.h"

typedef struct DistNccl DistNccl;

// Selects GPU `device`, checks that no other rank uses it, and creates the communicator of d's ranks.
DistNccl *dist_nccl_open(Dist *d, int device, double timeout_s);
// Waits for queued work and releases the communicator.
void dist_nccl_close(DistNccl *c);
// The cudaStream_t the collectives run on.
void *dist_nccl_stream(DistNccl *c);

// x (n, device) = sum over ranks, in place. Call it once per gradient bucket as soon as the bucket
// is final: later buckets' backward kernels then overlap the earlier buckets' transfers.
void dist_nccl_allreduce_sum_f32(DistNccl *c, float *x, size_t n);
// shard (ceil(n / world), device) = this rank's shard of the sum over ranks of full (see above).
void dist_nccl_reduce_scatter_sum_f32(DistNccl *c, const float *full, float *shard, size_t n);
// full (device): every rank's shard from its place in that rank's full, in place.
void dist_nccl_allgather_f32(DistNccl *c, float *full, size_t n);
// Returns when every queued collective has finished.
void dist_nccl_wait(DistNccl *c);
