// kernels/cpu/diffusion_loss.c: forward noising and the DiT training loss (docs/algorithm.md 2.2, 2.3).
//
// The arithmetic is float32 in the order of the reference PyTorch code, so the two agree to
// float32 rounding; per-sample means are accumulated in double in element order.
#include <math.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/diffusion_terms.h"

void cpu_q_sample(float *xt, const float *x0, const float *noise, const float *coef, int B, size_t n) {
    const size_t work = (size_t)B * n;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < n; i++) {
            const float *c = coef + (size_t)b * COEF_COUNT;
            size_t j = (size_t)b * n + i;
            xt[j] = c[COEF_SQRT_ALPHA_BAR] * x0[j] + c[COEF_SQRT_ONE_MINUS_ALPHA_BAR] * noise[j];
        }
}

void cpu_diffusion_loss_forward(float *mse, float *vb, const float *model_out, const float *x0, const float *xt,
                                const float *noise, const float *coef, int B, int C, size_t n, int learn_sigma) {
    size_t count = (size_t)C * n, out_stride = learn_sigma ? 2 * count : count;
    // One thread per sample keeps each sample's sum in element order.
    const size_t work = (size_t)B * out_stride;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++) {
        SampleCoef k = sample_coef(coef, b);
        const float *eps = model_out + (size_t)b * out_stride, *v = eps + count;
        const float *x0_b = x0 + (size_t)b * count, *xt_b = xt + (size_t)b * count,
                    *noise_b = noise + (size_t)b * count;
        double sq_sum = 0.0, vb_sum = 0.0;
        for (size_t i = 0; i < count; i++) {
            float d = noise_b[i] - eps[i];
            sq_sum += d * d;
            if (learn_sigma) {
                float dterm_unneeded;
                vb_sum += vb_element(&k, x0_b[i], xt_b[i], eps[i], v[i], &dterm_unneeded);
            }
        }
        mse[b] = (float)(sq_sum / (double)count);
        vb[b] = (float)(vb_sum / (double)count) / DIFFUSION_LN2;
    }
}

void cpu_diffusion_loss_backward(float *dmodel_out, const float *dloss, const float *model_out, const float *x0,
                                 const float *xt, const float *noise, const float *coef, int B, int C, size_t n,
                                 int learn_sigma) {
    size_t count = (size_t)C * n, out_stride = learn_sigma ? 2 * count : count;
    const size_t work = (size_t)B * out_stride;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < count; i++) {
            // d mse / d eps = 2 (eps - noise) / count; the VB term sees eps detached.
            size_t j = (size_t)b * count + i, o = (size_t)b * out_stride + i;
            float mse_scale = (float)(2.0 * dloss[b] / (double)count);
            dmodel_out[o] = mse_scale * (model_out[o] - noise[j]);
            if (learn_sigma) {
                // vb = mean(term) / ln 2 and d logvar / d v = (max_log - min_log) / 2.
                SampleCoef k = sample_coef(coef, b);
                float vb_scale = (float)(dloss[b] * 0.5 * ((double)k.max_log - k.min_log) / ((double)count * DIFFUSION_LN2));
                float dterm;
                vb_element(&k, x0[j], xt[j], model_out[o], model_out[o + count], &dterm);
                dmodel_out[o + count] = vb_scale * dterm;
            }
        }
}
