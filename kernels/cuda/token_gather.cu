// kernels/cuda/token_gather.cu: DyDiT inference ops (docs/algorithm.md 5) with the arithmetic of
// kernels/cpu/token_gather.c: packing the weight slices of active heads and channel groups, and
// the gather / scatter of kept tokens around the token-pruned MLP.
#include "kernels/cuda/layernorm_row.cuh"

enum { GATHER_THREADS = 256 };

// out (R, k * S) = column blocks blocks[j] (S wide) of in (R, G * S). 8 R k S bytes.
__global__ void gather_blocks_kernel(float *out, const float *in, const int32_t *blocks, int G, int S, int k,
                                     size_t total) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    size_t width = (size_t)k * S, r = i / width, c = i % width, j = c / S, s = c % S;
    out[i] = in[(r * G + blocks[j]) * S + s];
}

void cuda_gather_blocks(float *out, const float *in, const int32_t *blocks, int R, int G, int S, int k) {
    size_t total = (size_t)R * k * S;
    if (total == 0) return;
    gather_blocks_kernel<<<cuda_blocks(total, GATHER_THREADS), GATHER_THREADS, 0, cuda_stream()>>>(out, in, blocks, G,
                                                                                                   S, k, total);
    CUDA_CHECK_LAUNCH();
}

// out (K, D) = modulate(LN(x[rows[i]]), shift[b], scale[b]), b = rows[i] / T, x (B * T, D); one warp
// per kept row. 8 K D bytes.
template <int V>
__global__ void gather_layernorm_modulate_kernel(float *out, const float *x, const int32_t *rows, const float *shift,
                                                 const float *scale, int mod_stride, int T, int K, int D) {
    int warp = threadIdx.x / 32;
    size_t i = (size_t)blockIdx.x * (blockDim.x / 32) + warp;
    if (i >= (size_t)K) return;
    size_t r = (size_t)rows[i], b = r / T;
    float *cache = reinterpret_cast<float *>(row_cache_smem) + (size_t)warp * D;
    layernorm_modulate_row<V>(out + i * D, nullptr, nullptr, x + r * D, shift + b * mod_stride, scale + b * mod_stride,
                              D, cache);
}

template <int V>
static void gather_layernorm_modulate_launch(float *out, const float *x, const int32_t *rows, const float *shift,
                                             const float *scale, int mod_stride, int T, int K, int D) {
    size_t bytes;
    int warps = row_launch_shape(gather_layernorm_modulate_kernel<V>, D, &bytes);
    gather_layernorm_modulate_kernel<V><<<cuda_blocks((size_t)K, warps), warps * 32, bytes, cuda_stream()>>>(
        out, x, rows, shift, scale, mod_stride, T, K, D);
    CUDA_CHECK_LAUNCH();
}

void cuda_gather_layernorm_modulate(float *out, const float *x, const int32_t *rows, const float *shift,
                                    const float *scale, int mod_stride, int T, int K, int D) {
    if (K == 0 || D == 0) return;
    bool vec =
        D % 4 == 0 && mod_stride % 4 == 0 && aligned16(out) && aligned16(x) && aligned16(shift) && aligned16(scale);
    if (vec)
        gather_layernorm_modulate_launch<4>(out, x, rows, shift, scale, mod_stride, T, K, D);
    else
        gather_layernorm_modulate_launch<1>(out, x, rows, shift, scale, mod_stride, T, K, D);
}

// x[rows[i]] += gate[b] * branch[i], b = rows[i] / T; branch (K, D), rows distinct. One block per
// kept row. 12 K D bytes.
template <int V>
__global__ void gate_scatter_add_kernel(float *x, const float *branch, const int32_t *rows, const float *gate,
                                        int gate_stride, int T, int D) {
    size_t i = blockIdx.x, r = (size_t)rows[i];
    const float *g = gate + r / T * gate_stride, *br = branch + i * D;
    float *xr = x + r * D;
    for (int d = threadIdx.x * V; d < D; d += blockDim.x * V) {
        float xv[V], gv[V], bv[V];
        load_vec<V>(xv, xr + d);
        load_vec<V>(gv, g + d);
        load_vec<V>(bv, br + d);
        for (int j = 0; j < V; j++) xv[j] = xv[j] + gv[j] * bv[j];
        store_vec<V>(xr + d, xv);
    }
}

void cuda_gate_scatter_add(float *x, const float *branch, const int32_t *rows, const float *gate, int gate_stride,
                           int T, int K, int D) {
    if (K == 0 || D == 0) return;
    if (D % 4 == 0 && gate_stride % 4 == 0 && aligned16(x) && aligned16(branch) && aligned16(gate))
        gate_scatter_add_kernel<4><<<(unsigned)K, 128, 0, cuda_stream()>>>(x, branch, rows, gate, gate_stride, T, D);
    else
        gate_scatter_add_kernel<1><<<(unsigned)K, 128, 0, cuda_stream()>>>(x, branch, rows, gate, gate_stride, T, D);
    CUDA_CHECK_LAUNCH();
}
