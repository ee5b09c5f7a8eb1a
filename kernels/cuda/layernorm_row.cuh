// kernels/cuda/layernorm_row.cuh: adaLN's modulate(LN(x), shift, scale) for one row of D floats
// by one warp, shared by layernorm_modulate.cu and token_gather.cu. LN has no affine parameters and
// eps 1e-6; the statistics are two passes in double over the row (mean, then centred squares),
// like kernels/cpu/layernorm_modulate.c. The row is staged in shared memory so that global memory
// is read once.
#pragma once
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/vec.cuh"

#define LN_EPS 1e-6

// Dynamic shared memory of the row kernels: per-warp row caches (float4-aligned).
extern __shared__ float4 row_cache_smem[];

enum { ROW_WARPS = 4 };

// Warps per block and dynamic shared-memory bytes for kernels caching floats_per_row floats per
// warp; raises the kernel's shared-memory limit above the default 48 KiB when a row needs it.
template <class Kernel> static int row_launch_shape(Kernel kernel, int floats_per_row, size_t *bytes) {
    const size_t default_limit = 48 << 10, max_limit = 227 << 10;
    size_t per_warp = sizeof(float) * (size_t)floats_per_row;
    int warps = ROW_WARPS;
    while (warps > 1 && warps * per_warp > default_limit) warps /= 2;
    *bytes = warps * per_warp;
    if (*bytes > max_limit) die("layernorm: rows of %d floats exceed the GPU's shared memory", floats_per_row);
    if (*bytes > default_limit)
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)*bytes));
    return warps;
}

// o (D) = (xr - mean) * rstd * (1 + sc) + sh, for the calling warp; cache holds D floats (16-byte
// aligned when V == 4, with D % 4 == 0 and every row pointer 16-byte aligned). Each lane reads back
// only the cache entries it wrote. Writes the row's mean and rstd when mean_out is not NULL.
template <int V>
__device__ void layernorm_modulate_row(float *o, float *mean_out, float *rstd_out, const float *xr, const float *sh,
                                       const float *sc, int D, float *cache) {
    int lane = threadIdx.x % 32;
    double sum = 0.0, sq = 0.0;
    for (int d = lane * V; d < D; d += 32 * V) {
        float v[V];
        load_vec<V>(v, xr + d);
        store_vec<V>(cache + d, v);
        for (int j = 0; j < V; j++) sum += v[j];
    }
    double mu = warp_sum(sum) / D;
    for (int d = lane * V; d < D; d += 32 * V) {
        float v[V];
        load_vec<V>(v, cache + d);
        for (int j = 0; j < V; j++) sq += (v[j] - mu) * (v[j] - mu);
    }
    double rs = 1.0 / sqrt(warp_sum(sq) / D + LN_EPS);
    float m = (float)mu, r = (float)rs;
    if (mean_out && lane == 0) {
        *mean_out = m;
        *rstd_out = r;
    }
    for (int d = lane * V; d < D; d += 32 * V) {
        float v[V], shv[V], scv[V];
        load_vec<V>(v, cache + d);
        load_vec<V>(shv, sh + d);
        load_vec<V>(scv, sc + d);
        for (int j = 0; j < V; j++) v[j] = (v[j] - m) * r * (1.0f + scv[j]) + shv[j];
        store_vec<V>(o + d, v);
    }
}
