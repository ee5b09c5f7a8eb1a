// kernels/cuda/gate_residual.cu: adaLN-Zero's gated residual update x + keep * gate * branch and
// its backward, with the arithmetic of kernels/cpu/gate_residual.c. Row sums (dkeep) take one warp
// per token; column sums over T (dgate) a fixed tree per (sample, 32 channels).
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/vec.cuh"

enum { ROW_THREADS = 128, COLUMN_X = 32, COLUMN_Y = 8, TOKEN_WARPS = 4 };

// out, x, branch (B, T, D); gate rows at b * gate_stride; keep (B, T) at keep_stride or NULL. One
// block per token row; out may alias x. Reads 8 B T D bytes, writes 4 B T D.
template <int V>
__global__ void gate_residual_forward_kernel(float *out, const float *x, const float *gate, const float *branch,
                                             int gate_stride, const float *keep, int keep_stride, int T, int D) {
    size_t row = blockIdx.x, b = row / T, t = row % T, at = row * D;
    const float *g = gate + b * gate_stride;
    float k = keep ? keep[b * keep_stride + t] : 1.0f;
    for (int d = threadIdx.x * V; d < D; d += blockDim.x * V) {
        float xv[V], gv[V], bv[V];
        load_vec<V>(xv, x + at + d);
        load_vec<V>(gv, g + d);
        load_vec<V>(bv, branch + at + d);
        for (int j = 0; j < V; j++) xv[j] = xv[j] + k * (gv[j] * bv[j]);
        store_vec<V>(out + at + d, xv);
    }
}

void cuda_gate_residual_forward(float *out, const float *x, const float *gate, const float *branch, int gate_stride,
                                const float *keep, int keep_stride, int B, int T, int D) {
    size_t rows = (size_t)B * T;
    if (rows == 0 || D == 0) return;
    bool vec =
        D % 4 == 0 && gate_stride % 4 == 0 && aligned16(out) && aligned16(x) && aligned16(gate) && aligned16(branch);
    if (vec)
        gate_residual_forward_kernel<4><<<(unsigned)rows, ROW_THREADS, 0, cuda_stream()>>>(
            out, x, gate, branch, gate_stride, keep, keep_stride, T, D);
    else
        gate_residual_forward_kernel<1><<<(unsigned)rows, ROW_THREADS, 0, cuda_stream()>>>(
            out, x, gate, branch, gate_stride, keep, keep_stride, T, D);
    CUDA_CHECK_LAUNCH();
}

// dkeep[b, t] += sum_d dout * (gate * branch), in double, one warp per token. Reads 8 B T D bytes.
__global__ void gate_residual_dkeep_kernel(float *dkeep, const float *dout, const float *gate, const float *branch,
                                           int gate_stride, int keep_stride, int T, size_t rows, int D) {
    size_t row = (size_t)blockIdx.x * TOKEN_WARPS + threadIdx.x / 32, b = row / T, t = row % T;
    if (row >= rows) return;
    const float *g = gate + b * gate_stride, *gr = dout + row * D, *br = branch + row * D;
    double acc = 0.0;
    for (int d = threadIdx.x % 32; d < D; d += 32) acc += (double)gr[d] * (g[d] * br[d]);
    acc = warp_sum(acc);
    if (threadIdx.x % 32 == 0) dkeep[b * keep_stride + t] += (float)acc;
}

// dbranch = gate * (keep * dout) (overwrite, may be NULL); dgate[b] = sum_t (keep * dout) * branch
// (overwrite, may be NULL). Block (32 channels, 8 token slices) of sample b; each element is read
// and written by one thread, so dbranch may alias dout. Reads 8 B T D bytes, writes 4 B T D.
__global__ void gate_residual_dgate_kernel(float *dbranch, float *dgate, const float *dout, const float *gate,
                                           const float *branch, int gate_stride, const float *keep, int keep_stride,
                                           int T, int D) {
    __shared__ double part[COLUMN_Y][COLUMN_X];
    int d = blockIdx.x * COLUMN_X + threadIdx.x, b = blockIdx.y;
    double acc = 0.0;
    if (d < D) {
        float g = gate[(size_t)b * gate_stride + d];
        for (int t = threadIdx.y; t < T; t += COLUMN_Y) {
            size_t at = ((size_t)b * T + t) * D + d;
            float k = keep ? keep[(size_t)b * keep_stride + t] : 1.0f;
            float kd = k * dout[at];
            acc += kd * branch[at];
            if (dbranch) dbranch[at] = g * kd;
        }
    }
    if (!dgate) return;
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y != 0 || d >= D) return;
    double sum = 0.0;
    for (int y = 0; y < COLUMN_Y; y++) sum += part[y][threadIdx.x];
    dgate[(size_t)b * gate_stride + d] = (float)sum;
}

void cuda_gate_residual_backward(float *dbranch, float *dgate, float *dkeep, const float *dout, const float *gate,
                                 const float *branch, int gate_stride, const float *keep, int keep_stride, int B, int T,
                                 int D) {
    size_t rows = (size_t)B * T;
    if (rows == 0 || D == 0) return;
    if (dkeep) { // before dbranch, which may overwrite dout
        gate_residual_dkeep_kernel<<<cuda_blocks(rows, TOKEN_WARPS), TOKEN_WARPS * 32, 0, cuda_stream()>>>(
            dkeep, dout, gate, branch, gate_stride, keep_stride, T, rows, D);
        CUDA_CHECK_LAUNCH();
    }
    if (dbranch || dgate) {
        if (B > 65535) die("gate_residual_backward: batch %d exceeds the CUDA grid's 65535", B);
        dim3 grid(cuda_blocks((size_t)D, COLUMN_X), (unsigned)B), block(COLUMN_X, COLUMN_Y);
        gate_residual_dgate_kernel<<<grid, block, 0, cuda_stream()>>>(dbranch, dgate, dout, gate, branch, gate_stride,
                                                                      keep, keep_stride, T, D);
        CUDA_CHECK_LAUNCH();
    }
}
