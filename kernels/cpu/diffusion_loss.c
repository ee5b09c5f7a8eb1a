// kernels/cpu/diffusion_loss.c: forward noising and the DiT training loss (SPEC 2.2, 2.3).
//
// The arithmetic is float32 in the order of the reference PyTorch code, so the two agree to
// float32 rounding; per-sample means are accumulated in double in element order.
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

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

// The float32 constants the reference code's Python scalars become.
#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_CUBIC 0.044715f
#define HALF_BIN (1.0f / 255.0f)
#define EDGE 0.999f
#define LOG_FLOOR 1e-12f
#define LN2 0.6931471805599453f

typedef struct {
    float sqrt_recip_abar, sqrt_recipm1_abar; // x0_hat = sqrt_recip_abar * xt - sqrt_recipm1_abar * eps
    float c1, c2;                             // posterior mean = c1 * x0 + c2 * xt
    float min_log, max_log;                   // model log variance spans [log beta~ clipped, log beta]
    int first_step;                           // t = 0: decoder NLL instead of KL
} SampleCoef;

static SampleCoef sample_coef(const float *coef, int b) {
    const float *c = coef + (size_t)b * COEF_COUNT;
    SampleCoef s = {c[COEF_SQRT_RECIP_ALPHA_BAR], c[COEF_SQRT_RECIPM1_ALPHA_BAR], c[COEF_POSTERIOR_MEAN_X0],
                    c[COEF_POSTERIOR_MEAN_XT],    c[COEF_POSTERIOR_LOGVAR],       c[COEF_LOG_BETA],
                    c[COEF_IS_FIRST_STEP] != 0.0f};
    return s;
}

// Standard normal CDF, tanh approximation; *dcdf = its derivative at u.
static inline float approx_normal_cdf(float u, float *dcdf) {
    float y = tanhf(SQRT_2_OVER_PI * (u + GELU_CUBIC * (u * u * u)));
    *dcdf = 0.5f * (1.0f - y * y) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_CUBIC * u * u);
    return 0.5f * (1.0f + y);
}

// log(max(p, floor)) and, through dlog, its derivative with respect to p: zero where the floor
// is active, as for a clamp.
static inline float floored_log(float p, float *dlog) {
    *dlog = p >= LOG_FLOOR ? 1.0f / p : 0.0f;
    return logf(fmaxf(p, LOG_FLOOR));
}

// One element's variational term in nats, given the model's eps (detached) and v; *dterm is its
// derivative with respect to the model log variance.
static inline float vb_element(const SampleCoef *k, float x0, float xt, float eps, float v, float *dterm) {
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
    float plus = inv_std * (centered + HALF_BIN), minus = inv_std * (centered - HALF_BIN);
    float dcdf_plus, dcdf_minus;
    float cdf_plus = approx_normal_cdf(plus, &dcdf_plus), cdf_minus = approx_normal_cdf(minus, &dcdf_minus);
    float dlog, log_prob, dlog_prob_dplus = 0.0f, dlog_prob_dminus = 0.0f;
    if (x0 < -EDGE) {
        log_prob = floored_log(cdf_plus, &dlog);
        dlog_prob_dplus = dlog * dcdf_plus;
    } else if (x0 > EDGE) {
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
        vb[b] = (float)(vb_sum / (double)count) / LN2;
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
                float vb_scale = (float)(dloss[b] * 0.5 * ((double)k.max_log - k.min_log) / ((double)count * LN2));
                float dterm;
                vb_element(&k, x0[j], xt[j], model_out[o], model_out[o + count], &dterm);
                dmodel_out[o + count] = vb_scale * dterm;
            }
        }
}
