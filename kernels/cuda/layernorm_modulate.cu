// kernels/cuda/layernorm_modulate.cu: adaLN's modulate(LN(x), shift, scale) and its backward,
// with the arithmetic of kernels/cpu/layernorm_modulate.c (statistics and row sums in double).
// One warp per row of D; the (B, D) parameter gradients are column sums over T by a fixed tree.
#include "kernels/cuda/layernorm_row.cuh"

// out, x (B, T, D); shift, scale rows at b * mod_stride; mean, rstd (B, T). Reads 4 B T D bytes of
// x (plus the B D shift and scale rows, cached), writes 4 B T D of out: 8 B T D bytes.
template <int V>
__global__ void layernorm_modulate_forward_kernel(float *out, float *mean, float *rstd, const float *x,
                                                  const float *shift, const float *scale, int mod_stride, int T,
                                                  size_t rows, int D) {
    int warp = threadIdx.x / 32;
    size_t row = (size_t)blockIdx.x * (blockDim.x / 32) + warp;
    if (row >= rows) return;
    size_t b = row / T;
    float *cache = reinterpret_cast<float *>(row_cache_smem) + (size_t)warp * D;
    layernorm_modulate_row<V>(out + row * D, mean + row, rstd + row, x + row * D, shift + b * mod_stride,
                              scale + b * mod_stride, D, cache);
}

template <int V>
static void layernorm_modulate_forward_launch(float *out, float *mean, float *rstd, const float *x, const float *shift,
                                              const float *scale, int mod_stride, int T, size_t rows, int D) {
    size_t bytes;
    int warps = row_launch_shape(layernorm_modulate_forward_kernel<V>, D, &bytes);
    layernorm_modulate_forward_kernel<V><<<cuda_blocks(rows, warps), warps * 32, bytes, cuda_stream()>>>(
        out, mean, rstd, x, shift, scale, mod_stride, T, rows, D);
    CUDA_CHECK_LAUNCH();
}

void cuda_layernorm_modulate_forward(float *out, float *mean, float *rstd, const float *x, const float *shift,
                                     const float *scale, int mod_stride, int B, int T, int D) {
    size_t rows = (size_t)B * T;
    if (rows == 0 || D == 0) return;
    bool vec =
        D % 4 == 0 && mod_stride % 4 == 0 && aligned16(out) && aligned16(x) && aligned16(shift) && aligned16(scale);
    if (vec)
        layernorm_modulate_forward_launch<4>(out, mean, rstd, x, shift, scale, mod_stride, T, rows, D);
    else
        layernorm_modulate_forward_launch<1>(out, mean, rstd, x, shift, scale, mod_stride, T, rows, D);
}

// dx (B, T, D) += d LN(x) for one row per warp, from dxhat = dout * (1 + scale):
// dx += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)), the means summed in double. The warp
// caches dxhat and xhat (2 D floats). Reads dout, x, dx and writes dx: 16 B T D bytes.
template <int V>
__global__ void layernorm_modulate_backward_dx_kernel(float *dx, const float *dout, const float *x, const float *mean,
                                                      const float *rstd, const float *scale, int mod_stride, int T,
                                                      size_t rows, int D) {
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    size_t row = (size_t)blockIdx.x * (blockDim.x / 32) + warp;
    if (row >= rows) return;
    const float *xr = x + row * D, *g = dout + row * D, *sc = scale + row / T * mod_stride;
    float *dxhat = reinterpret_cast<float *>(row_cache_smem) + (size_t)warp * 2 * D, *xhat = dxhat + D;
    float m = mean[row], r = rstd[row];
    double sum_g = 0.0, sum_gx = 0.0;
    for (int d = lane * V; d < D; d += 32 * V) {
        float xv[V], gv[V], scv[V], xh[V];
        load_vec<V>(xv, xr + d);
        load_vec<V>(gv, g + d);
        load_vec<V>(scv, sc + d);
        for (int j = 0; j < V; j++) {
            gv[j] = gv[j] * (1.0f + scv[j]);
            xh[j] = (xv[j] - m) * r;
            sum_g += gv[j];
            sum_gx += gv[j] * xh[j];
        }
        store_vec<V>(dxhat + d, gv);
        store_vec<V>(xhat + d, xh);
    }
    float mean_g = (float)(warp_sum(sum_g) / D), mean_gx = (float)(warp_sum(sum_gx) / D);
    float *dxr = dx + row * D;
    for (int d = lane * V; d < D; d += 32 * V) {
        float acc[V], gv[V], xh[V];
        load_vec<V>(acc, dxr + d);
        load_vec<V>(gv, dxhat + d);
        load_vec<V>(xh, xhat + d);
        for (int j = 0; j < V; j++) acc[j] += r * (gv[j] - mean_g - xh[j] * mean_gx);
        store_vec<V>(dxr + d, acc);
    }
}

template <int V>
static void layernorm_modulate_backward_dx_launch(float *dx, const float *dout, const float *x, const float *mean,
                                                  const float *rstd, const float *scale, int mod_stride, int T,
                                                  size_t rows, int D) {
    size_t bytes;
    int warps = row_launch_shape(layernorm_modulate_backward_dx_kernel<V>, 2 * D, &bytes);
    layernorm_modulate_backward_dx_kernel<V><<<cuda_blocks(rows, warps), warps * 32, bytes, cuda_stream()>>>(
        dx, dout, x, mean, rstd, scale, mod_stride, T, rows, D);
    CUDA_CHECK_LAUNCH();
}

enum { COLUMN_X = 32, COLUMN_Y = 8 };

// dshift[b] = sum_t dout, dscale[b] = sum_t dout * xhat (overwrite; rows at b * mod_stride; either
// may be NULL). Block (32 channels, 8 token slices) of sample b: each thread sums its slice
// t = y, y + 8, ... in double, then the 8 slices are added in order. Reads 8 B T D bytes.
__global__ void layernorm_modulate_backward_params_kernel(float *dshift, float *dscale, const float *dout,
                                                          const float *x, const float *mean, const float *rstd,
                                                          int mod_stride, int T, int D) {
    __shared__ double part_shift[COLUMN_Y][COLUMN_X], part_scale[COLUMN_Y][COLUMN_X];
    int d = blockIdx.x * COLUMN_X + threadIdx.x, b = blockIdx.y;
    double acc_shift = 0.0, acc_scale = 0.0;
    if (d < D)
        for (int t = threadIdx.y; t < T; t += COLUMN_Y) {
            size_t row = (size_t)b * T + t;
            float g = dout[row * D + d];
            acc_shift += g;
            acc_scale += g * ((x[row * D + d] - mean[row]) * rstd[row]);
        }
    part_shift[threadIdx.y][threadIdx.x] = acc_shift;
    part_scale[threadIdx.y][threadIdx.x] = acc_scale;
    __syncthreads();
    if (threadIdx.y != 0 || d >= D) return;
    double sum_shift = 0.0, sum_scale = 0.0;
    for (int y = 0; y < COLUMN_Y; y++) {
        sum_shift += part_shift[y][threadIdx.x];
        sum_scale += part_scale[y][threadIdx.x];
    }
    if (dshift) dshift[(size_t)b * mod_stride + d] = (float)sum_shift;
    if (dscale) dscale[(size_t)b * mod_stride + d] = (float)sum_scale;
}

void cuda_layernorm_modulate_backward(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                                      const float *mean, const float *rstd, const float *scale, int mod_stride, int B,
                                      int T, int D) {
    size_t rows = (size_t)B * T;
    if (rows == 0 || D == 0) return;
    if (dx) {
        bool vec =
            D % 4 == 0 && mod_stride % 4 == 0 && aligned16(dx) && aligned16(dout) && aligned16(x) && aligned16(scale);
        if (vec)
            layernorm_modulate_backward_dx_launch<4>(dx, dout, x, mean, rstd, scale, mod_stride, T, rows, D);
        else
            layernorm_modulate_backward_dx_launch<1>(dx, dout, x, mean, rstd, scale, mod_stride, T, rows, D);
    }
    if (dshift || dscale) {
        if (B > 65535) die("layernorm_modulate_backward: batch %d exceeds the CUDA grid's 65535", B);
        dim3 grid(cuda_blocks((size_t)D, COLUMN_X), (unsigned)B), block(COLUMN_X, COLUMN_Y);
        layernorm_modulate_backward_params_kernel<<<grid, block, 0, cuda_stream()>>>(dshift, dscale, dout, x, mean,
                                                                                     rstd, mod_stride, T, D);
        CUDA_CHECK_LAUNCH();
    }
}
