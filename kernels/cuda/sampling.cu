// kernels/cuda/sampling.cu: classifier-free guidance and the DDPM / DDIM update steps (docs/algorithm.md 2.5-2.7),
// the per-element formulas of kernels/diffusion_terms.h, as on the CPU. One thread per element.
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/diffusion_terms.h"

enum { SAMPLING_THREADS = 256 };

// model_out (2n, C_out, hw): rows [0, n) of the guided channels become uncond + scale (cond - uncond).
// 12 n guided hw bytes.
__global__ void cfg_combine_kernel(float *model_out, int n, int C_out, size_t hw, int guided, float scale,
                                   size_t total) {
    size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= total) return;
    size_t plane = j / hw, i = j % hw, b = plane / guided, c = plane % guided;
    float *cond = model_out + (b * C_out + c) * hw;
    const float *uncond = model_out + ((b + n) * C_out + c) * hw;
    cond[i] = uncond[i] + scale * (cond[i] - uncond[i]);
}

void cuda_cfg_combine(float *model_out, int n, int C_out, size_t hw, int guided, float scale) {
    size_t total = (size_t)n * guided * hw;
    if (total == 0) return;
    cfg_combine_kernel<<<cuda_blocks(total, SAMPLING_THREADS), SAMPLING_THREADS, 0, cuda_stream()>>>(
        model_out, n, C_out, hw, guided, scale, total);
    CUDA_CHECK_LAUNCH();
}

// x_prev, x, noise (B, C, hw); model_out (B, C_out, hw); coef (B, COEF_COUNT). x_prev may alias x.
// 16 B C hw bytes (20 with learned sigma).
__global__ void ddpm_step_kernel(float *x_prev, const float *x, const float *model_out, const float *noise,
                                 const float *coef, size_t count, size_t total, int learn_sigma, int clip) {
    size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= total) return;
    size_t b = j / count, i = j % count;
    const float *k = coef + b * COEF_COUNT, *eps = model_out + b * (learn_sigma ? 2 * count : count);
    x_prev[j] = ddpm_element(k, x[j], eps[i], learn_sigma ? eps[count + i] : 0.0f, noise + j, learn_sigma, clip);
}

void cuda_ddpm_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                    int C, size_t hw, int learn_sigma, int clip) {
    size_t count = (size_t)C * hw, total = (size_t)B * count;
    if (total == 0) return;
    ddpm_step_kernel<<<cuda_blocks(total, SAMPLING_THREADS), SAMPLING_THREADS, 0, cuda_stream()>>>(
        x_prev, x, model_out, noise, coef, count, total, learn_sigma, clip);
    CUDA_CHECK_LAUNCH();
}

// Shapes as ddpm_step; noise is only read when it is added. 12 B C hw bytes (16 with noise).
__global__ void ddim_step_kernel(float *x_prev, const float *x, const float *model_out, const float *noise,
                                 const float *coef, size_t count, size_t total, int learn_sigma, int clip, float eta) {
    size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= total) return;
    size_t b = j / count, i = j % count;
    const float *k = coef + b * COEF_COUNT, *eps = model_out + b * (learn_sigma ? 2 * count : count);
    x_prev[j] = ddim_element(k, x[j], eps[i], noise + j, clip, eta);
}

void cuda_ddim_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                    int C, size_t hw, int learn_sigma, int clip, float eta) {
    size_t count = (size_t)C * hw, total = (size_t)B * count;
    if (total == 0) return;
    ddim_step_kernel<<<cuda_blocks(total, SAMPLING_THREADS), SAMPLING_THREADS, 0, cuda_stream()>>>(
        x_prev, x, model_out, noise, coef, count, total, learn_sigma, clip, eta);
    CUDA_CHECK_LAUNCH();
}
