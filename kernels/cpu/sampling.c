// kernels/cpu/sampling.c: classifier-free guidance and the DDPM / DDIM update steps (docs/algorithm.md 2.5-2.7);
// the per-element formulas are kernels/diffusion_terms.h's.
#include <math.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/diffusion_terms.h"

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

void cpu_ddpm_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                   int C, size_t hw, int learn_sigma, int clip) {
    size_t count = (size_t)C * hw, out_stride = learn_sigma ? 2 * count : count;
    const size_t work = (size_t)B * count;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < count; i++) {
            const float *k = coef + (size_t)b * COEF_COUNT, *eps = model_out + (size_t)b * out_stride;
            size_t j = (size_t)b * count + i;
            x_prev[j] = ddpm_element(k, x[j], eps[i], learn_sigma ? eps[count + i] : 0.0f, noise + j, learn_sigma, clip);
        }
}

void cpu_ddim_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                   int C, size_t hw, int learn_sigma, int clip, float eta) {
    size_t count = (size_t)C * hw, out_stride = learn_sigma ? 2 * count : count;
    const size_t work = (size_t)B * count;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < count; i++) {
            const float *k = coef + (size_t)b * COEF_COUNT, *eps = model_out + (size_t)b * out_stride;
            size_t j = (size_t)b * count + i;
            x_prev[j] = ddim_element(k, x[j], eps[i], noise + j, clip, eta);
        }
}
