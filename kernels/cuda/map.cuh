// kernels/cuda/map.cuh: element-wise kernels over flat buffers, out[i] = f(a[i]) or f(a[i], b[i]),
// as float4 when every pointer is 16-byte aligned (the n % 4 tail in scalars). out may alias an
// input: each element is read before it is written, by the same thread. f is a functor with a
// __device__ operator(); the host wrappers queue the kernel on the backend's stream.
#pragma once
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/vec.cuh"

enum { MAP_THREADS = 256, MAP_MAX_BLOCKS = 2048 };

template <class F> __global__ void map_unary_kernel(float *out, const float *a, size_t n, bool vec, F f) {
    size_t stride = (size_t)gridDim.x * blockDim.x, first = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t n4 = vec ? n / 4 : 0;
    for (size_t i = first; i < n4; i += stride) {
        float v[4];
        load_vec<4>(v, a + 4 * i);
        for (int j = 0; j < 4; j++) v[j] = f(v[j]);
        store_vec<4>(out + 4 * i, v);
    }
    for (size_t i = 4 * n4 + first; i < n; i += stride) out[i] = f(a[i]);
}

template <class F>
__global__ void map_binary_kernel(float *out, const float *a, const float *b, size_t n, bool vec, F f) {
    size_t stride = (size_t)gridDim.x * blockDim.x, first = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t n4 = vec ? n / 4 : 0;
    for (size_t i = first; i < n4; i += stride) {
        float va[4], vb[4];
        load_vec<4>(va, a + 4 * i);
        load_vec<4>(vb, b + 4 * i);
        for (int j = 0; j < 4; j++) va[j] = f(va[j], vb[j]);
        store_vec<4>(out + 4 * i, va);
    }
    for (size_t i = 4 * n4 + first; i < n; i += stride) out[i] = f(a[i], b[i]);
}

static inline unsigned map_blocks(size_t n, bool vec) {
    unsigned blocks = cuda_blocks(vec ? (n + 3) / 4 : n, MAP_THREADS);
    return blocks < (unsigned)MAP_MAX_BLOCKS ? blocks : (unsigned)MAP_MAX_BLOCKS;
}

// out[i] = f(a[i]), n floats.
template <class F> static void map_unary(float *out, const float *a, size_t n, F f) {
    if (n == 0) return;
    bool vec = aligned16(out) && aligned16(a);
    map_unary_kernel<<<map_blocks(n, vec), MAP_THREADS, 0, cuda_stream()>>>(out, a, n, vec, f);
    CUDA_CHECK_LAUNCH();
}

// out[i] = f(a[i], b[i]), n floats.
template <class F> static void map_binary(float *out, const float *a, const float *b, size_t n, F f) {
    if (n == 0) return;
    bool vec = aligned16(out) && aligned16(a) && aligned16(b);
    map_binary_kernel<<<map_blocks(n, vec), MAP_THREADS, 0, cuda_stream()>>>(out, a, b, n, vec, f);
    CUDA_CHECK_LAUNCH();
}
