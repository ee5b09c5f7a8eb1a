// train/dist_backend.h: what an implementation of the communicator provides (train/dist.h
// documents each collective). The single-process one lives in dist.c, MPI's in dist_mpi.c.
#pragma once
#include "train/dist.h"

struct DistBackend {
    void (*allreduce_sum_f32)(Dist *d, float *x, size_t n, size_t bucket);
    void (*allreduce_sum_f64)(Dist *d, double *x, size_t n);
    void (*reduce_scatter_sum_f32)(Dist *d, const float *full, float *shard, size_t n);
    void (*allgather_f32)(Dist *d, float *full, size_t n);
    void (*gather_f32)(Dist *d, const float *shard, float *full, size_t n, int root);
    void (*broadcast)(Dist *d, void *buf, size_t bytes, int root);
    void (*barrier)(Dist *d);
    // Ends every rank; the message is already printed.
    void (*abort)(Dist *d);
    void (*close)(Dist *d);
};

#ifdef DYDIT_MPI
// MPI_Init and the communicator of the job (dist_mpi.c).
Dist *dist_mpi_open(double timeout_s);
#endif
