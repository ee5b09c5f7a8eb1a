// kernels/cuda/sampling.cu: classifier-free guidance and the DDPM / DDIM update steps (SPEC 2.5-2.7),
// in float32 with the arithmetic of kernels/cpu/sampling.c. One thread per element.
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"

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

// x0 prediction from eps: sqrt(1 / abar) x - sqrt(1 / abar - 1) eps, clamped to [-1, 1] with clip
__device__ __forceinline__ float predict_x0(const float *k, float x, float eps, bool clip) {
    float x0 = k[COEF_SQRT_RECIP_ALPHA_BAR] * x - k[COEF_SQRT_RECIPM1_ALPHA_BAR] * eps;
    return clip ? fminf(fmaxf(x0, -1.0f), 1.0f) : x0;
}

// x_prev, x, noise (B, C, hw); model_out (B, C_out, hw); coef (B, COEF_COUNT). x_prev may alias x.
// 16 B C hw bytes (20 with learned sigma).
__global__ void ddpm_step_kernel(float *x_prev, const float *x, const float *model_out, const float *noise,
                                 const float *coef, size_t count, size_t total, bool learn_sigma, bool clip) {
    size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= total) return;
    size_t b = j / count, i = j % count;
    const float *k = coef + b * COEF_COUNT, *eps = model_out + b * (learn_sigma ? 2 * count : count);
    float xj = x[j];
    float mean = k[COEF_POSTERIOR_MEAN_X0] * predict_x0(k, xj, eps[i], clip) + k[COEF_POSTERIOR_MEAN_XT] * xj;
    float logvar;
    if (learn_sigma) {
        float frac = (eps[count + i] + 1.0f) / 2.0f;
        logvar = frac * k[COEF_LOG_BETA] + (1.0f - frac) * k[COEF_POSTERIOR_LOGVAR];
    } else { // DiT's fixed large variance: beta_t, and beta~_1 at the first step
        logvar = k[COEF_IS_FIRST_STEP] != 0.0f ? k[COEF_POSTERIOR_LOGVAR] : k[COEF_LOG_BETA];
    }
    x_prev[j] = k[COEF_IS_FIRST_STEP] != 0.0f ? mean : mean + expf(0.5f * logvar) * noise[j];
}

void cuda_ddpm_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                    int C, size_t hw, int learn_sigma, int clip) {
    size_t count = (size_t)C * hw, total = (size_t)B * count;
    if (total == 0) return;
    ddpm_step_kernel<<<cuda_blocks(total, SAMPLING_THREADS), SAMPLING_THREADS, 0, cuda_stream()>>>(
        x_prev, x, model_out, noise, coef, count, total, learn_sigma != 0, clip != 0);
    CUDA_CHECK_LAUNCH();
}

// x0 from eps, eps re-derived from x0, then x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps
// + [t > 0] sigma noise with sigma = eta sqrt((1 - abar_prev) / (1 - abar)) sqrt(1 - abar / abar_prev).
// Shapes as ddpm_step; noise is only read when it is added. 12 B C hw bytes (16 with noise).
__global__ void ddim_step_kernel(float *x_prev, const float *x, const float *model_out, const float *noise,
                                 const float *coef, size_t count, size_t total, bool learn_sigma, bool clip,
                                 float eta) {
    size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= total) return;
    size_t b = j / count, i = j % count;
    const float *k = coef + b * COEF_COUNT, *eps = model_out + b * (learn_sigma ? 2 * count : count);
    float abar = k[COEF_ALPHA_BAR], abar_prev = k[COEF_ALPHA_BAR_PREV];
    float sigma = eta * sqrtf((1.0f - abar_prev) / (1.0f - abar)) * sqrtf(1.0f - abar / abar_prev);
    float direction = sqrtf(1.0f - abar_prev - sigma * sigma), root_prev = sqrtf(abar_prev);
    bool add_noise = k[COEF_IS_FIRST_STEP] == 0.0f && eta != 0.0f;
    float xj = x[j];
    float x0 = predict_x0(k, xj, eps[i], clip);
    float e = (k[COEF_SQRT_RECIP_ALPHA_BAR] * xj - x0) / k[COEF_SQRT_RECIPM1_ALPHA_BAR];
    float mean = x0 * root_prev + direction * e;
    x_prev[j] = add_noise ? mean + sigma * noise[j] : mean;
}

void cuda_ddim_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                    int C, size_t hw, int learn_sigma, int clip, float eta) {
    size_t count = (size_t)C * hw, total = (size_t)B * count;
    if (total == 0) return;
    ddim_step_kernel<<<cuda_blocks(total, SAMPLING_THREADS), SAMPLING_THREADS, 0, cuda_stream()>>>(
        x_prev, x, model_out, noise, coef, count, total, learn_sigma != 0, clip != 0, eta);
    CUDA_CHECK_LAUNCH();
}
