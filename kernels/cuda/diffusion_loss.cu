// kernels/cuda/diffusion_loss.cu: forward noising and the DiT training loss (docs/algorithm.md 2.2, 2.3), with
// the float32 arithmetic of kernels/cpu/diffusion_loss.c; per-sample means are block sums in double.
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/diffusion_terms.h"

enum { LOSS_THREADS = 256 };

// xt, x0, noise (B, n); coef (B, COEF_COUNT). 12 B n bytes.
__global__ void q_sample_kernel(float *xt, const float *x0, const float *noise, const float *coef, size_t n,
                                size_t total) {
    size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= total) return;
    const float *c = coef + j / n * COEF_COUNT;
    xt[j] = c[COEF_SQRT_ALPHA_BAR] * x0[j] + c[COEF_SQRT_ONE_MINUS_ALPHA_BAR] * noise[j];
}

void cuda_q_sample(float *xt, const float *x0, const float *noise, const float *coef, int B, size_t n) {
    size_t total = (size_t)B * n;
    if (total == 0) return;
    q_sample_kernel<<<cuda_blocks(total, LOSS_THREADS), LOSS_THREADS, 0, cuda_stream()>>>(xt, x0, noise, coef, n,
                                                                                          total);
    CUDA_CHECK_LAUNCH();
}

// mse, vb (B); model_out (B, C_out, n) and x0, xt, noise (B, C, n), count = C n: one block per
// sample. Reads 4 B count (3 or 5) bytes.
__global__ void diffusion_loss_forward_kernel(float *mse, float *vb, const float *model_out, const float *x0,
                                              const float *xt, const float *noise, const float *coef, size_t count,
                                              bool learn_sigma) {
    size_t b = blockIdx.x, out_stride = learn_sigma ? 2 * count : count;
    SampleCoef k = sample_coef(coef, b);
    const float *eps = model_out + b * out_stride, *v = eps + count;
    const float *x0_b = x0 + b * count, *xt_b = xt + b * count, *noise_b = noise + b * count;
    double sq_sum = 0.0, vb_sum = 0.0;
    for (size_t i = threadIdx.x; i < count; i += blockDim.x) {
        float d = noise_b[i] - eps[i];
        sq_sum += d * d;
        if (learn_sigma) {
            float dterm_unneeded;
            vb_sum += vb_element(&k, x0_b[i], xt_b[i], eps[i], v[i], &dterm_unneeded);
        }
    }
    sq_sum = block_sum(sq_sum);
    vb_sum = block_sum(vb_sum);
    if (threadIdx.x != 0) return;
    mse[b] = (float)(sq_sum / (double)count);
    vb[b] = (float)(vb_sum / (double)count) / DIFFUSION_LN2;
}

void cuda_diffusion_loss_forward(float *mse, float *vb, const float *model_out, const float *x0, const float *xt,
                                 const float *noise, const float *coef, int B, int C, size_t n, int learn_sigma) {
    if (B == 0) return;
    diffusion_loss_forward_kernel<<<(unsigned)B, LOSS_THREADS, 0, cuda_stream()>>>(
        mse, vb, model_out, x0, xt, noise, coef, (size_t)C * n, learn_sigma != 0);
    CUDA_CHECK_LAUNCH();
}

// dmodel_out (B, C_out, n): one thread per element of the eps half (and its v twin). Reads
// 4 B count (2 or 5) bytes, writes 4 B C_out n.
__global__ void diffusion_loss_backward_kernel(float *dmodel_out, const float *dloss, const float *model_out,
                                               const float *x0, const float *xt, const float *noise, const float *coef,
                                               size_t count, size_t total, bool learn_sigma) {
    size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= total) return;
    size_t b = j / count, i = j % count, out_stride = learn_sigma ? 2 * count : count, o = b * out_stride + i;
    // d mse / d eps = 2 (eps - noise) / count; the VB term sees eps detached.
    float mse_scale = (float)(2.0 * dloss[b] / (double)count);
    dmodel_out[o] = mse_scale * (model_out[o] - noise[j]);
    if (learn_sigma) { // vb = mean(term) / ln 2 and d logvar / d v = (max_log - min_log) / 2
        SampleCoef k = sample_coef(coef, b);
        float vb_scale = (float)(dloss[b] * 0.5 * ((double)k.max_log - k.min_log) / ((double)count * DIFFUSION_LN2));
        float dterm;
        vb_element(&k, x0[j], xt[j], model_out[o], model_out[o + count], &dterm);
        dmodel_out[o + count] = vb_scale * dterm;
    }
}

void cuda_diffusion_loss_backward(float *dmodel_out, const float *dloss, const float *model_out, const float *x0,
                                  const float *xt, const float *noise, const float *coef, int B, int C, size_t n,
                                  int learn_sigma) {
    size_t count = (size_t)C * n, total = (size_t)B * count;
    if (total == 0) return;
    diffusion_loss_backward_kernel<<<cuda_blocks(total, LOSS_THREADS), LOSS_THREADS, 0, cuda_stream()>>>(
        dmodel_out, dloss, model_out, x0, xt, noise, coef, count, total, learn_sigma != 0);
    CUDA_CHECK_LAUNCH();
}
