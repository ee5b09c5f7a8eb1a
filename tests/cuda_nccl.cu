// tests/cuda_nccl.cu: the NCCL communicator on real GPUs (make test-cuda, under mpirun with one rank
// per GPU): an all-reduce, a ZeRO reduce-scatter of an uneven length and the all-gather back, on
// device buffers filled by a kernel, checked on the host against closed forms. With one GPU the
// all-reduce and the all-gather leave their data as it was, so only several GPUs check them.
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "train/dist.h"
#include "train/dist_nccl.h"
}

// x[i] = base + i % 7
__global__ void fill(float *x, size_t n, float base) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = base + (float)(i % 7);
}

static int failures = 0;

static void check(int ok, int rank, const char *name) {
    printf("%s nccl.%s.rank%d\n", ok ? "PASS" : "FAIL", name, rank);
    failures += !ok;
}

int main(void) {
    Dist *d = dist_open(120);
    int gpus = 0;
    cudaGetDeviceCount(&gpus);
    if (gpus < 1) dist_abort(d, "no CUDA device found");
    DistNccl *c = dist_nccl_open(d, d->local_rank % gpus, 120); // as --device cuda chooses

    const size_t n = 1000003, per = (n + d->world - 1) / d->world, padded = per * d->world;
    float *x, *shard, *host = (float *)malloc(padded * sizeof(float));
    cudaMalloc(&x, padded * sizeof(float));
    cudaMalloc(&shard, per * sizeof(float));
    cudaStream_t stream = (cudaStream_t)dist_nccl_stream(c);
    const unsigned threads = 256, blocks = (unsigned)((padded + threads - 1) / threads);
    // every rank contributes rank + 1 + i % 7: the sum is world (world + 1) / 2 + world (i % 7)
    const double ranks_sum = d->world * (d->world + 1) / 2.0;

    fill<<<blocks, threads, 0, stream>>>(x, n, (float)(d->rank + 1));
    dist_nccl_allreduce_sum_f32(c, x, n);
    dist_nccl_wait(c);
    cudaMemcpy(host, x, n * sizeof(float), cudaMemcpyDeviceToHost);
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= host[i] == (float)(ranks_sum + d->world * (double)(i % 7));
    check(ok, d->rank, "allreduce");

    cudaMemsetAsync(x, 0, padded * sizeof(float), stream);
    fill<<<blocks, threads, 0, stream>>>(x, n, (float)(d->rank + 1));
    dist_nccl_reduce_scatter_sum_f32(c, x, shard, n);
    dist_nccl_wait(c);
    DistShard mine = dist_shard(n, d->world, d->rank);
    cudaMemcpy(host, shard, per * sizeof(float), cudaMemcpyDeviceToHost);
    ok = 1;
    for (size_t j = 0; j < mine.count; j++)
        ok &= host[j] == (float)(ranks_sum + d->world * (double)((mine.offset + j) % 7));
    check(ok, d->rank, "reduce_scatter");

    cudaMemcpyAsync(x + (size_t)d->rank * per, shard, per * sizeof(float), cudaMemcpyDeviceToDevice, stream);
    dist_nccl_allgather_f32(c, x, n);
    dist_nccl_wait(c);
    cudaMemcpy(host, x, n * sizeof(float), cudaMemcpyDeviceToHost);
    ok = 1;
    for (size_t i = 0; i < n; i++) ok &= host[i] == (float)(ranks_sum + d->world * (double)(i % 7));
    check(ok, d->rank, "allgather");

    // a failed allocation, copy or launch above would otherwise only show as wrong values, or none
    cudaError_t e = cudaDeviceSynchronize();
    if (e == cudaSuccess) e = cudaGetLastError();
    check(e == cudaSuccess, d->rank, "cuda_errors");
    if (e != cudaSuccess) fprintf(stderr, "rank %d: %s\n", d->rank, cudaGetErrorString(e));

    cudaFree(x);
    cudaFree(shard);
    free(host);
    dist_nccl_close(c);
    dist_close(d);
    return failures ? 1 : 0;
}
