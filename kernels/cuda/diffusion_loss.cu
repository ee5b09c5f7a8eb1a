// kernels/cuda/diffusion_loss.cu: forward noising and the DiT training loss (SPEC 2.2, 2.3), with
// the float32 arithmetic of kernels/cpu/diffusion_loss.c; per-sample means are block sums in double.
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/reduce.cuh"

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

// The float32 constants the reference code's Python scalars become.
#define SQRT_2_OVER_PI 0.7978845608028654f
#define GELU_CUBIC 0.044715f
#define HALF_BIN (1.0f / 255.0f)
#define EDGE 0.999f
#define LOG_FLOOR 1e-12f
#define LN2 0.6931471805599453f

struct SampleCoef {
    float sqrt_recip_abar, sqrt_recipm1_abar; // x0_hat = sqrt_recip_abar * xt - sqrt_recipm1_abar * eps
    float c1, c2;                             // posterior mean = c1 * x0 + c2 * xt
    float min_log, max_log;                   // model log variance spans [log beta~ clipped, log beta]
    bool first_step;                          // t = 0: decoder NLL instead of KL
};

__device__ __forceinline__ SampleCoef sample_coef(const float *coef, size_t b) {
    const float *c = coef + b * COEF_COUNT;
    return SampleCoef{c[COEF_SQRT_RECIP_ALPHA_BAR], c[COEF_SQRT_RECIPM1_ALPHA_BAR], c[COEF_POSTERIOR_MEAN_X0],
                      c[COEF_POSTERIOR_MEAN_XT],    c[COEF_POSTERIOR_LOGVAR],       c[COEF_LOG_BETA],
                      c[COEF_IS_FIRST_STEP] != 0.0f};
}

// Standard normal CDF, tanh approximation; *dcdf = its derivative at u.
__device__ __forceinline__ float approx_normal_cdf(float u, float *dcdf) {
    float y = tanhf(SQRT_2_OVER_PI * (u + GELU_CUBIC * (u * u * u)));
    *dcdf = 0.5f * (1.0f - y * y) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_CUBIC * u * u);
    return 0.5f * (1.0f + y);
}

// log(max(p, floor)) and, through dlog, its derivative with respect to p (zero under the floor).
__device__ __forceinline__ float floored_log(float p, float *dlog) {
    *dlog = p >= LOG_FLOOR ? 1.0f / p : 0.0f;
    return logf(fmaxf(p, LOG_FLOOR));
}

// One element's variational term in nats, given the model's eps (detached) and v; *dterm is its
// derivative with respect to the model log variance.
__device__ float vb_element(const SampleCoef &k, float x0, float xt, float eps, float v, float *dterm) {
    float x0_hat = k.sqrt_recip_abar * xt - k.sqrt_recipm1_abar * eps;
    float mean = k.c1 * x0_hat + k.c2 * xt;
    float frac = (v + 1.0f) / 2.0f;
    float logvar = frac * k.max_log + (1.0f - frac) * k.min_log;
    if (!k.first_step) { // KL(N(true_mean, beta~) || N(mean, exp(logvar)))
        float true_mean = k.c1 * x0 + k.c2 * xt;
        float diff = true_mean - mean;
        float var_ratio = expf(k.min_log - logvar), sq_over_var = diff * diff * expf(-logvar);
        *dterm = 0.5f * (1.0f - var_ratio - sq_over_var);
        return 0.5f * (-1.0f + logvar - k.min_log + var_ratio + sq_over_var);
    }
    // -log of the N(mean, exp(logvar)) mass in the bin x0 +- 1/255; the edge bins reach to infinity.
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
            vb_sum += vb_element(k, x0_b[i], xt_b[i], eps[i], v[i], &dterm_unneeded);
        }
    }
    sq_sum = block_sum(sq_sum);
    vb_sum = block_sum(vb_sum);
    if (threadIdx.x != 0) return;
    mse[b] = (float)(sq_sum / (double)count);
    vb[b] = (float)(vb_sum / (double)count) / LN2;
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
        float vb_scale = (float)(dloss[b] * 0.5 * ((double)k.max_log - k.min_log) / ((double)count * LN2));
        float dterm;
        vb_element(k, x0[j], xt[j], model_out[o], model_out[o + count], &dterm);
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
