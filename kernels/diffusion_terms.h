// kernels/diffusion_terms.h: the per-element formulas of the training loss's variational term
// (docs/algorithm.md 2.3) and of the DDPM / DDIM updates (docs/algorithm.md 2.5-2.7), in float32 in the order of the
// reference PyTorch code. One text for both backends: plain C inline functions for
// kernels/cpu, compiled for the device too by nvcc for kernels/cuda. coef rows are the
// per-sample COEF_* tables of kernels/ops.h.
#pragma once
#include <math.h>

#include "kernels/ops.h"

#ifdef __CUDACC__
#define DIFFUSION_FN static inline __host__ __device__
#else
#define DIFFUSION_FN static inline
#endif

// The float32 constants the reference code's Python scalars become.
#define DIFFUSION_SQRT_2_OVER_PI 0.7978845608028654f
#define DIFFUSION_GELU_CUBIC 0.044715f
#define DIFFUSION_HALF_BIN (1.0f / 255.0f)
#define DIFFUSION_EDGE 0.999f
#define DIFFUSION_LOG_FLOOR 1e-12f
#define DIFFUSION_LN2 0.6931471805599453f

typedef struct {
    float sqrt_recip_abar, sqrt_recipm1_abar; // x0_hat = sqrt_recip_abar * xt - sqrt_recipm1_abar * eps
    float c1, c2;                             // posterior mean = c1 * x0 + c2 * xt
    float min_log, max_log;                   // model log variance spans [log beta~ clipped, log beta]
    int first_step;                           // t = 0: decoder NLL instead of KL
} SampleCoef;

DIFFUSION_FN SampleCoef sample_coef(const float *coef, size_t b) {
    const float *c = coef + b * COEF_COUNT;
    SampleCoef s = {c[COEF_SQRT_RECIP_ALPHA_BAR], c[COEF_SQRT_RECIPM1_ALPHA_BAR], c[COEF_POSTERIOR_MEAN_X0],
                    c[COEF_POSTERIOR_MEAN_XT],    c[COEF_POSTERIOR_LOGVAR],       c[COEF_LOG_BETA],
                    c[COEF_IS_FIRST_STEP] != 0.0f};
    return s;
}

// Standard normal CDF, tanh approximation; *dcdf = its derivative at u.
DIFFUSION_FN float approx_normal_cdf(float u, float *dcdf) {
    float y = tanhf(DIFFUSION_SQRT_2_OVER_PI * (u + DIFFUSION_GELU_CUBIC * (u * u * u)));
    *dcdf = 0.5f * (1.0f - y * y) * DIFFUSION_SQRT_2_OVER_PI * (1.0f + 3.0f * DIFFUSION_GELU_CUBIC * u * u);
    return 0.5f * (1.0f + y);
}

// log(max(p, floor)) and, through dlog, its derivative with respect to p: zero where the floor
// is active, as for a clamp.
DIFFUSION_FN float floored_log(float p, float *dlog) {
    *dlog = p >= DIFFUSION_LOG_FLOOR ? 1.0f / p : 0.0f;
    return logf(fmaxf(p, DIFFUSION_LOG_FLOOR));
}

// One element's variational term in nats, given the model's eps (detached) and v; *dterm is its
// derivative with respect to the model log variance.
DIFFUSION_FN float vb_element(const SampleCoef *k, float x0, float xt, float eps, float v, float *dterm) {
    float x0_hat = k->sqrt_recip_abar * xt - k->sqrt_recipm1_abar * eps;
    float mean = k->c1 * x0_hat + k->c2 * xt;
    float frac = (v + 1.0f) / 2.0f;
    float logvar = frac * k->max_log + (1.0f - frac) * k->min_log;
    if (!k->first_step) {
        // KL(N(true_mean, beta~) || N(mean, exp(logvar)))
        float true_mean = k->c1 * x0 + k->c2 * xt;
        float diff = true_mean - mean;
        float var_ratio = expf(k->min_log - logvar), sq_over_var = diff * diff * expf(-logvar);
        *dterm = 0.5f * (1.0f - var_ratio - sq_over_var);
        return 0.5f * (-1.0f + logvar - k->min_log + var_ratio + sq_over_var);
    }
    // -log of the N(mean, exp(logvar)) mass in the bin x0 +- 1/255; the edge bins reach to infinity.
    // plus/minus = (x0 - mean +- 1/255) * exp(-logvar / 2), so d(plus)/d(logvar) = -plus / 2.
    float centered = x0 - mean, inv_std = expf(-(0.5f * logvar));
    float plus = inv_std * (centered + DIFFUSION_HALF_BIN), minus = inv_std * (centered - DIFFUSION_HALF_BIN);
    float dcdf_plus, dcdf_minus;
    float cdf_plus = approx_normal_cdf(plus, &dcdf_plus), cdf_minus = approx_normal_cdf(minus, &dcdf_minus);
    float dlog, log_prob, dlog_prob_dplus = 0.0f, dlog_prob_dminus = 0.0f;
    if (x0 < -DIFFUSION_EDGE) {
        log_prob = floored_log(cdf_plus, &dlog);
        dlog_prob_dplus = dlog * dcdf_plus;
    } else if (x0 > DIFFUSION_EDGE) {
        log_prob = floored_log(1.0f - cdf_minus, &dlog);
        dlog_prob_dminus = -dlog * dcdf_minus;
    } else {
        log_prob = floored_log(cdf_plus - cdf_minus, &dlog);
        dlog_prob_dplus = dlog * dcdf_plus;
        dlog_prob_dminus = -dlog * dcdf_minus;
    }
    *dterm = 0.5f * (dlog_prob_dplus * plus + dlog_prob_dminus * minus);
    return -log_prob;
}

// x0 prediction from eps: sqrt(1 / abar) x - sqrt(1 / abar - 1) eps, clamped to [-1, 1] with clip.
DIFFUSION_FN float predict_x0(const float *k, float x, float eps, int clip) {
    float x0 = k[COEF_SQRT_RECIP_ALPHA_BAR] * x - k[COEF_SQRT_RECIPM1_ALPHA_BAR] * eps;
    return clip ? fminf(fmaxf(x0, -1.0f), 1.0f) : x0;
}

// One element of the DDPM step: the posterior mean from the predicted x0, plus noise scaled by the
// model's variance (v: its variance output, used only with learn_sigma); noise is read only when it
// is added (not at the first step).
DIFFUSION_FN float ddpm_element(const float *k, float x, float eps, float v, const float *noise, int learn_sigma,
                                int clip) {
    float mean = k[COEF_POSTERIOR_MEAN_X0] * predict_x0(k, x, eps, clip) + k[COEF_POSTERIOR_MEAN_XT] * x;
    float logvar;
    if (learn_sigma) {
        float frac = (v + 1.0f) / 2.0f;
        logvar = frac * k[COEF_LOG_BETA] + (1.0f - frac) * k[COEF_POSTERIOR_LOGVAR];
    } else { // DiT's fixed large variance: beta_t, and beta~_1 at the first step
        logvar = k[COEF_IS_FIRST_STEP] != 0.0f ? k[COEF_POSTERIOR_LOGVAR] : k[COEF_LOG_BETA];
    }
    return k[COEF_IS_FIRST_STEP] != 0.0f ? mean : mean + expf(0.5f * logvar) * *noise;
}

// One element of the DDIM step: x0 from eps, eps re-derived from x0, then
// x_prev = sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + [t > 0] sigma noise with
// sigma = eta sqrt((1 - abar_prev) / (1 - abar)) sqrt(1 - abar / abar_prev). noise is read only
// when it is added.
DIFFUSION_FN float ddim_element(const float *k, float x, float eps, const float *noise, int clip, float eta) {
    float abar = k[COEF_ALPHA_BAR], abar_prev = k[COEF_ALPHA_BAR_PREV];
    float sigma = eta * sqrtf((1.0f - abar_prev) / (1.0f - abar)) * sqrtf(1.0f - abar / abar_prev);
    float direction = sqrtf(1.0f - abar_prev - sigma * sigma), root_prev = sqrtf(abar_prev);
    float x0 = predict_x0(k, x, eps, clip);
    float e = (k[COEF_SQRT_RECIP_ALPHA_BAR] * x - x0) / k[COEF_SQRT_RECIPM1_ALPHA_BAR];
    float mean = x0 * root_prev + direction * e;
    return k[COEF_IS_FIRST_STEP] == 0.0f && eta != 0.0f ? mean + sigma * *noise : mean;
}
