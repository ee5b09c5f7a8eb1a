#include "train/dist_nccl.h"

#include <cuda_runtime_api.h>
#include <nccl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "train/gpu_sharing.h"

struct DistNccl {
    Dist *dist;
    ncclComm_t comm; // NULL until created
    cudaStream_t stream;
    double timeout; // seconds dist_nccl_wait may take; 0: forever
};

// Ends the job: the NCCL communicator first, so that no kernel keeps waiting for a dead peer.
__attribute__((noreturn)) static void fail(DistNccl *c, const char *what, const char *reason) {
    if (c->comm) ncclCommAbort(c->comm);
    dist_abort(c->dist, "%s failed: %s", what, reason);
}

static void cuda_check(DistNccl *c, cudaError_t e, const char *what) {
    if (e != cudaSuccess) fail(c, what, cudaGetErrorString(e));
}

static void nccl_check(DistNccl *c, ncclResult_t r, const char *what) {
    if (r == ncclSuccess) return;
    const char *detail = c->comm ? ncclGetLastError(c->comm) : "";
    char reason[512];
    snprintf(reason, sizeof(reason), "%s%s%s", ncclGetErrorString(r), detail && *detail ? ": " : "",
             detail ? detail : "");
    fail(c, what, reason);
}

// Every rank's machine and GPU, through one broadcast per rank (once, at the start of a job).
static void refuse_shared_gpus(DistNccl *c, int device) {
    Dist *d = c->dist;
    struct cudaDeviceProp prop;
    cuda_check(c, cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
    RankGpu *ranks = xcalloc((size_t)d->world, sizeof(RankGpu));
    snprintf(ranks[d->rank].host, sizeof(ranks[d->rank].host), "%s", d->host);
    memcpy(ranks[d->rank].uuid, prop.uuid.bytes, sizeof(ranks[d->rank].uuid));
    for (int r = 0; r < d->world; r++) dist_broadcast(d, &ranks[r], sizeof(RankGpu), r);
    int a, b;
    if (rank_gpus_shared(ranks, d->world, &a, &b))
        dist_abort(d, "ranks %d and %d on %s use the same GPU; start one rank per GPU (each with its own device)", a, b,
                   ranks[a].host);
    free(ranks);
}

DistNccl *dist_nccl_open(Dist *d, int device, double timeout_s) {
    DistNccl *c = xcalloc(1, sizeof(DistNccl));
    c->dist = d;
    c->timeout = timeout_s;
    cuda_check(c, cudaSetDevice(device), "cudaSetDevice");
    refuse_shared_gpus(c, device);
    cuda_check(c, cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking), "cudaStreamCreate");
    ncclUniqueId id;
    memset(&id, 0, sizeof(id));
    if (d->rank == 0) nccl_check(c, ncclGetUniqueId(&id), "ncclGetUniqueId");
    dist_broadcast(d, &id, sizeof(id), 0);
    nccl_check(c, ncclCommInitRank(&c->comm, d->world, id, d->rank), "ncclCommInitRank");
    return c;
}

void dist_nccl_close(DistNccl *c) {
    dist_nccl_wait(c);
    nccl_check(c, ncclCommFinalize(c->comm), "ncclCommFinalize");
    nccl_check(c, ncclCommDestroy(c->comm), "ncclCommDestroy");
    c->comm = NULL;
    cuda_check(c, cudaStreamDestroy(c->stream), "cudaStreamDestroy");
    free(c);
}

void *dist_nccl_stream(DistNccl *c) { return c->stream; }

void dist_nccl_allreduce_sum_f32(DistNccl *c, float *x, size_t n) {
    nccl_check(c, ncclAllReduce(x, x, n, ncclFloat32, ncclSum, c->comm, c->stream), "ncclAllReduce");
}

static size_t shard_size(const DistNccl *c, size_t n) {
    return (n + (size_t)c->dist->world - 1) / (size_t)c->dist->world;
}

void dist_nccl_reduce_scatter_sum_f32(DistNccl *c, const float *full, float *shard, size_t n) {
    nccl_check(c, ncclReduceScatter(full, shard, shard_size(c, n), ncclFloat32, ncclSum, c->comm, c->stream),
               "ncclReduceScatter");
}

void dist_nccl_allgather_f32(DistNccl *c, float *full, size_t n) {
    size_t per = shard_size(c, n);
    nccl_check(c, ncclAllGather(full + (size_t)c->dist->rank * per, full, per, ncclFloat32, c->comm, c->stream),
               "ncclAllGather");
}

// Polls instead of blocking in cudaStreamSynchronize, which would wait forever for a dead peer:
// between polls it checks NCCL's asynchronous error and the deadline.
void dist_nccl_wait(DistNccl *c) {
    double start = now_seconds();
    for (;;) {
        cudaError_t e = cudaStreamQuery(c->stream);
        if (e == cudaSuccess) return;
        if (e != cudaErrorNotReady) cuda_check(c, e, "a NCCL collective");
        ncclResult_t async = ncclSuccess;
        nccl_check(c, ncclCommGetAsyncError(c->comm, &async), "ncclCommGetAsyncError");
        nccl_check(c, async, "a NCCL collective");
        if (c->timeout > 0 && now_seconds() - start > c->timeout) {
            char reason[128];
            snprintf(reason, sizeof(reason), "waited more than %g s for the other ranks", c->timeout);
            fail(c, "a NCCL collective", reason);
        }
        usleep(50);
    }
}
