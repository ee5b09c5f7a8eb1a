// kernels/cpu/sampling.c: classifier-free guidance and the DDPM / DDIM update steps (SPEC 2.5-2.7),
// in float32 in the order of the reference sampler.
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_cfg_combine(float *model_out, int n, int C_out, size_t hw, int guided, float scale) {
    const size_t work = (size_t)n * guided * hw;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < n; b++)
        for (int c = 0; c < guided; c++) {
            float *cond = model_out + ((size_t)b * C_out + c) * hw;
            const float *uncond = model_out + ((size_t)(b + n) * C_out + c) * hw;
            for (size_t i = 0; i < hw; i++) cond[i] = uncond[i] + scale * (cond[i] - uncond[i]);
        }
}

// x0 prediction from eps: sqrt(1 / abar) x - sqrt(1 / abar - 1) eps, clamped to [-1, 1] with clip
static inline float predict_x0(const float *k, float x, float eps, int clip) {
    float x0 = k[COEF_SQRT_RECIP_ALPHA_BAR] * x - k[COEF_SQRT_RECIPM1_ALPHA_BAR] * eps;
    return clip ? fminf(fmaxf(x0, -1.0f), 1.0f) : x0;
}

void cpu_ddpm_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                   int C, size_t hw, int learn_sigma, int clip) {
    size_t count = (size_t)C * hw, out_stride = learn_sigma ? 2 * count : count;
    const size_t work = (size_t)B * count;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < count; i++) {
            const float *k = coef + (size_t)b * COEF_COUNT;
            const float *eps = model_out + (size_t)b * out_stride;
            size_t j = (size_t)b * count + i;
            float mean =
                k[COEF_POSTERIOR_MEAN_X0] * predict_x0(k, x[j], eps[i], clip) + k[COEF_POSTERIOR_MEAN_XT] * x[j];
            float logvar;
            if (learn_sigma) {
                float frac = (eps[count + i] + 1.0f) / 2.0f;
                logvar = frac * k[COEF_LOG_BETA] + (1.0f - frac) * k[COEF_POSTERIOR_LOGVAR];
            } else { // DiT's fixed large variance: beta_t, and beta~_1 at the first step
                logvar = k[COEF_IS_FIRST_STEP] != 0.0f ? k[COEF_POSTERIOR_LOGVAR] : k[COEF_LOG_BETA];
            }
            x_prev[j] = k[COEF_IS_FIRST_STEP] != 0.0f ? mean : mean + expf(0.5f * logvar) * noise[j];
        }
}

// x0 from eps, eps re-derived from x0, then x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps
// + [t > 0] sigma noise with sigma = eta sqrt((1 - abar_prev) / (1 - abar)) sqrt(1 - abar / abar_prev).
void cpu_ddim_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                   int C, size_t hw, int learn_sigma, int clip, float eta) {
    size_t count = (size_t)C * hw, out_stride = learn_sigma ? 2 * count : count;
    const size_t work = (size_t)B * count;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++) {
        const float *k = coef + (size_t)b * COEF_COUNT, *eps = model_out + (size_t)b * out_stride;
        float abar = k[COEF_ALPHA_BAR], abar_prev = k[COEF_ALPHA_BAR_PREV];
        float sigma = eta * sqrtf((1.0f - abar_prev) / (1.0f - abar)) * sqrtf(1.0f - abar / abar_prev);
        float direction = sqrtf(1.0f - abar_prev - sigma * sigma), root_prev = sqrtf(abar_prev);
        int add_noise = k[COEF_IS_FIRST_STEP] == 0.0f && eta != 0.0f;
        for (size_t i = 0; i < count; i++) {
            size_t j = (size_t)b * count + i;
            float x0 = predict_x0(k, x[j], eps[i], clip);
            float e = (k[COEF_SQRT_RECIP_ALPHA_BAR] * x[j] - x0) / k[COEF_SQRT_RECIPM1_ALPHA_BAR];
            float mean = x0 * root_prev + direction * e;
            x_prev[j] = add_noise ? mean + sigma * noise[j] : mean;
        }
    }
}
