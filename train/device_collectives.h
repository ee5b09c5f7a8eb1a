// train/device_collectives.h: the training state's collectives (gradient all-reduce, ZeRO's
// reduce-scatter and parameter all-gather) on buffers of whatever backend the run uses:
//   one process     nothing to sum (a ZeRO shard is a device copy);
//   host memory     the CPU backend's buffers go to the communicator (train/dist.h) as they are;
//   NCCL            a CUDA backend in a build with NCCL sums device buffers over NCCL
//                   (train/dist_nccl.h): the compute stream is drained first and the collective
//                   waited for, so the next op sees the sums;
//   host staging    any other backend (CUDA without NCCL, cpu-guarded): download, sum over MPI on
//                   the host, upload.
// Each acts like the train/dist.h collective of the same name.
#pragma once
#include <stddef.h>

#include "kernels/backend.h"
#include "train/dist.h"

typedef struct DeviceCollectives DeviceCollectives;

// For the buffers of backend b in job d; timeout_s as for dist_open. Collective: every rank opens.
DeviceCollectives *device_collectives_open(Dist *d, const Backend *b, double timeout_s);
void device_collectives_close(DeviceCollectives *c);
// Floats a shard buffer needs: ceil(n / world) (NCCL moves equal pieces; dist_shard(n).count of
// them are this rank's).
size_t device_shard_capacity(const Dist *d, size_t n);

void device_allreduce_sum_f32(DeviceCollectives *c, float *x, size_t n, size_t bucket);
// shard holds device_shard_capacity(n) floats.
void device_reduce_scatter_sum_f32(DeviceCollectives *c, const float *full, float *shard, size_t n);
void device_allgather_f32(DeviceCollectives *c, float *full, size_t n);
