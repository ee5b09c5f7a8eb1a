// kernels/cuda/optimizer.cu: the optimiser ops over flat parameter buffers, written to give the
// CPU twin's (kernels/cpu/optimizer.c) results bit for bit.
//
// The CPU build (gcc -O3 -march=native, whose default -ffp-contract=fast fuses a * b + c on x86-64
// with FMA) computes AdamW and the EMA with a fixed set of fused multiply-adds; the kernels spell
// the same roundings out with the _rn intrinsics, which nvcc never re-fuses. The scalars are
// formed on the host in double exactly as on the CPU.
#include <math.h>
#include <stdlib.h>

#include "kernels/cuda/cuda_common.cuh"

// The CPU's chunk: each chunk's squares summed in element order in double, then the chunk sums in
// chunk order.
enum { SUM_CHUNK = 1 << 16 };

// partial (chunks) = sum over chunk c of x^2, in element order; one thread per chunk, so the
// order is the CPU's and so is the result (a float's square is exact in double). Each thread
// streams its own 256 KiB with 16-byte loads when x allows; the per-chunk dependency chain of 64 Ki
// double adds (well under a millisecond) bounds the time, not the 4 bytes per element read.
__global__ void chunk_sum_squares_kernel(double *partial, const float *x, size_t n, size_t chunks) {
    size_t c = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (c >= chunks) return;
    size_t i = c * SUM_CHUNK, end = min(n, i + SUM_CHUNK);
    double s = 0.0;
    if ((uintptr_t)x % 16 == 0) // chunk starts are then 16-byte aligned too
        for (; i + 4 <= end; i += 4) {
            float4 q = *(const float4 *)(x + i);
            s = __dadd_rn(s, __dmul_rn(q.x, q.x));
            s = __dadd_rn(s, __dmul_rn(q.y, q.y));
            s = __dadd_rn(s, __dmul_rn(q.z, q.z));
            s = __dadd_rn(s, __dmul_rn(q.w, q.w));
        }
    for (; i < end; i++) s = __dadd_rn(s, __dmul_rn(x[i], x[i]));
    partial[c] = s;
}

// *out (host) = sum of x^2; waits for the device.
void cuda_sum_squares(double *out, const float *x, size_t n) {
    size_t chunks = (n + SUM_CHUNK - 1) / SUM_CHUNK;
    *out = 0.0;
    if (!chunks) return;
    double *partial = (double *)cuda_scratch(sizeof(double) * chunks);
    chunk_sum_squares_kernel<<<cuda_blocks(chunks, 64), 64, 0, cuda_stream()>>>(partial, x, n, chunks);
    CUDA_CHECK_LAUNCH();
    double *host = (double *)malloc(sizeof(double) * chunks);
    if (!host) die("out of memory (%zu bytes)", sizeof(double) * chunks);
    cuda_download(host, partial, sizeof(double) * chunks);
    double total = 0.0;
    for (size_t c = 0; c < chunks; c++) total += host[c];
    free(host);
    *out = total;
}

typedef struct {
    float decay, m_weight, v_weight, beta2, step_size, bias_correction2_sqrt, eps;
} AdamScalars;

// One AdamW step per element, in the CPU build's roundings: m += (1 - beta1)(g - m) and
// param -= step_size * update as single FMAs, v = fma(v, beta2, ((1 - beta2) g) g).
// 16 bytes read and 12 written per element.
__global__ void adamw_kernel(float *param, const float *grad, float *m, float *v, size_t n, AdamScalars s) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= n) return;
    float g = grad[i];
    float p = __fmul_rn(param[i], s.decay);
    float mi = __fmaf_rn(s.m_weight, __fsub_rn(g, m[i]), m[i]);
    float vi = __fmaf_rn(v[i], s.beta2, __fmul_rn(__fmul_rn(s.v_weight, g), g));
    float denom = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), s.bias_correction2_sqrt), s.eps);
    m[i] = mi;
    v[i] = vi;
    param[i] = __fmaf_rn(-s.step_size, __fdiv_rn(mi, denom), p);
}

void cuda_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, double lr, double beta1,
                       double beta2, double eps, double weight_decay, long step) {
    if (!n) return;
    // Scalars in double and rounded once, as on the CPU.
    AdamScalars s;
    s.decay = (float)(1.0 - lr * weight_decay);
    s.m_weight = (float)(1.0 - beta1), s.v_weight = (float)(1.0 - beta2), s.beta2 = (float)beta2;
    s.step_size = (float)(lr / (1.0 - pow(beta1, (double)step)));
    s.bias_correction2_sqrt = (float)sqrt(1.0 - pow(beta2, (double)step)), s.eps = (float)eps;
    adamw_kernel<<<cuda_blocks(n, 256), 256, 0, cuda_stream()>>>(param, grad, m, v, n, s);
    CUDA_CHECK_LAUNCH();
}

// ema = fma(ema, decay, (1 - decay) param), the CPU build's rounding. 8 bytes read, 4 written.
__global__ void ema_kernel(float *ema, const float *param, size_t n, float decay, float weight) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < n) ema[i] = __fmaf_rn(ema[i], decay, __fmul_rn(weight, param[i]));
}

void cuda_ema_update(float *ema, const float *param, size_t n, double decay) {
    if (!n) return;
    ema_kernel<<<cuda_blocks(n, 256), 256, 0, cuda_stream()>>>(ema, param, n, (float)decay, (float)(1.0 - decay));
    CUDA_CHECK_LAUNCH();
}
