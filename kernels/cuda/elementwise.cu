// kernels/cuda/elementwise.cu: additions, SiLU, tanh-GELU and scaling; the arithmetic of
// kernels/cpu/elementwise.c. All are memory-bound: bytes moved are 4 per float read or written,
// e.g. add moves 12 n bytes.
#include "kernels/cuda/map.cuh"

struct AddOp {
    __device__ float operator()(float a, float b) const { return a + b; }
};

// out, a, b (n): 12 n bytes.
void cuda_add(float *out, const float *a, const float *b, size_t n) { map_binary(out, a, b, n, AddOp{}); }

// x (B, n) += row (n), broadcast over B: 8 B n bytes (row stays in cache).
template <int V> __global__ void add_broadcast_kernel(float *x, const float *row, size_t n, size_t total) {
    size_t stride = (size_t)gridDim.x * blockDim.x * V;
    for (size_t i = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) * V; i < total; i += stride) {
        float v[V], r[V];
        load_vec<V>(v, x + i);
        load_vec<V>(r, row + i % n);
        for (int j = 0; j < V; j++) v[j] += r[j];
        store_vec<V>(x + i, v);
    }
}

void cuda_add_broadcast(float *x, const float *row, int B, size_t n) {
    size_t total = (size_t)B * n;
    if (total == 0) return;
    if (n % 4 == 0 && aligned16(x) && aligned16(row))
        add_broadcast_kernel<4><<<map_blocks(total, true), MAP_THREADS, 0, cuda_stream()>>>(x, row, n, total);
    else
        add_broadcast_kernel<1><<<map_blocks(total, false), MAP_THREADS, 0, cuda_stream()>>>(x, row, n, total);
    CUDA_CHECK_LAUNCH();
}

__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

struct SiluOp {
    __device__ float operator()(float x) const { return x * sigmoid(x); }
};

// silu'(x) = s (1 + x (1 - s)), s = sigmoid(x)
struct SiluGradOp {
    __device__ float operator()(float dout, float x) const {
        float s = sigmoid(x);
        return dout * s * (1.0f + x * (1.0f - s));
    }
};

// out, x (n): 8 n bytes.
void cuda_silu_forward(float *out, const float *x, size_t n) { map_unary(out, x, n, SiluOp{}); }
// din, dout, x (n): 12 n bytes; din may alias dout.
void cuda_silu_backward(float *din, const float *dout, const float *x, size_t n) {
    map_binary(din, dout, x, n, SiluGradOp{});
}

#define GELU_A 0.7978845608028654f // sqrt(2 / pi)
#define GELU_B 0.044715f

struct GeluOp {
    __device__ float operator()(float v) const { return 0.5f * v * (1.0f + tanhf(GELU_A * (v + GELU_B * v * v * v))); }
};

struct GeluGradOp {
    __device__ float operator()(float dout, float v) const {
        float th = tanhf(GELU_A * (v + GELU_B * v * v * v));
        float grad = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * GELU_A * (1.0f + 3.0f * GELU_B * v * v);
        return dout * grad;
    }
};

// out, x (n): 8 n bytes.
void cuda_gelu_forward(float *out, const float *x, size_t n) { map_unary(out, x, n, GeluOp{}); }
// din, dout, x (n): 12 n bytes; din may alias dout.
void cuda_gelu_backward(float *din, const float *dout, const float *x, size_t n) {
    map_binary(din, dout, x, n, GeluGradOp{});
}

struct ScaleOp {
    float s;
    __device__ float operator()(float x) const { return x * s; }
};

// x (n) *= s: 8 n bytes.
void cuda_scale(float *x, float s, size_t n) { map_unary(x, x, n, ScaleOp{s}); }
