// tests/test_diffusion.c: the diffusion schedule, respacing, coefficient gathering, timestep
// sampling, q_sample, and the training loss with its backward.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/philox.h"
#include "model/diffusion.h"
#include "tests/check.h"

// ---- schedule ----

static void test_schedule(void) {
    DiffusionSchedule s = diffusion_schedule_linear(1000);
    // docs/algorithm.md 2.1 sanity values, given to 5-6 significant digits.
    const int at[] = {0, 249, 499, 749, 999};
    // Each must round to the digits given: within half a unit of the last one.
    const double want[] = {0.99990, 0.524085, 0.078587, 0.0033506, 4.0358e-5};
    const double half_unit[] = {5e-6, 5e-7, 5e-7, 5e-8, 5e-10};
    int ok = 1;
    for (int i = 0; i < 5; i++) ok &= fabs(s.alphas_cumprod[at[i]] - want[i]) <= half_unit[i];
    check(ok, "schedule.alphas_cumprod", "%.7f %.7f %.7f %.8f %.6e", s.alphas_cumprod[0], s.alphas_cumprod[249],
          s.alphas_cumprod[499], s.alphas_cumprod[749], s.alphas_cumprod[999]);
    check(s.betas[0] == 1e-4 && s.betas[999] == 0.02, "schedule.linear_ends", "%g %g", s.betas[0], s.betas[999]);

    // Each table against its definition; the posterior mean of a noiseless x_t = sqrt(abar) x0 is
    // sqrt(abar_prev) x0, i.e. c1 + c2 sqrt(abar) = sqrt(abar_prev).
    double err = 0;
    for (int k = 0; k < s.T; k++) {
        double a = s.alphas_cumprod[k], ap = k ? s.alphas_cumprod[k - 1] : 1.0, b = s.betas[k];
        double pv = b * (1 - ap) / (1 - a), pv1 = s.betas[1] * (1 - s.alphas_cumprod[0]) / (1 - s.alphas_cumprod[1]);
        double e[] = {
            a / ((k ? s.alphas_cumprod[k - 1] : 1.0) * (1 - b)) - 1,
            s.alphas_cumprod_prev[k] - ap,
            s.sqrt_alphas_cumprod[k] * s.sqrt_alphas_cumprod[k] - a,
            s.sqrt_one_minus_alphas_cumprod[k] * s.sqrt_one_minus_alphas_cumprod[k] - (1 - a),
            s.sqrt_recip_alphas_cumprod[k] * s.sqrt_alphas_cumprod[k] - 1,
            (s.sqrt_recipm1_alphas_cumprod[k] * s.sqrt_recipm1_alphas_cumprod[k] - (1 / a - 1)) * a,
            s.posterior_variance[k] / fmax(pv, 1e-300) - (k ? 1 : 0),
            s.posterior_log_variance_clipped[k] - log(k ? pv : pv1),
            s.posterior_mean_coef1[k] + s.posterior_mean_coef2[k] * sqrt(a) - sqrt(ap),
            s.log_betas[k] - log(b),
            (double)(s.timestep_map[k] - k),
        };
        for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) err = fmax(err, fabs(e[i]));
    }
    check(err < 1e-12, "schedule.identities", "max err %.1e", err);
    check(s.posterior_variance[0] == 0.0, "schedule.posterior_variance_0", "%g", s.posterior_variance[0]);
    diffusion_schedule_free(&s);
}

static int steps_equal_stride(const int *steps, int count, int stride) {
    for (int k = 0; k < count; k++)
        if (steps[k] != k * stride) return 0;
    return 1;
}

static void test_respacing(void) {
    DiffusionSchedule base = diffusion_schedule_linear(1000);
    int steps[1000];
    char why[200];

    int n250 = diffusion_space_timesteps(1000, "250", steps, why, sizeof(why));
    int tail[] = {983, 987, 991, 995, 999};
    int ok = n250 == 250 && steps[0] == 0 && steps[1] == 4 && steps[2] == 8;
    for (int i = 0; i < 5; i++) ok &= n250 == 250 && steps[245 + i] == tail[i];
    check(ok, "respace.250", "count %d, last %d", n250, n250 > 0 ? steps[n250 - 1] : -1);

    int n50 = diffusion_space_timesteps(1000, "50", steps, why, sizeof(why));
    ok = n50 == 50 && steps[1] == 20 && steps[2] == 41 && steps[3] == 61 && steps[4] == 82 && steps[47] == 958 &&
         steps[48] == 979 && steps[49] == 999;
    check(ok, "respace.50", "count %d", n50);

    int nd = diffusion_space_timesteps(1000, "ddim50", steps, why, sizeof(why));
    check(nd == 50 && steps_equal_stride(steps, nd, 20), "respace.ddim50", "count %d, last %d", nd, steps[nd - 1]);

    // Two sections of 500 steps: 3 then 2 kept, each spread over its own section.
    int ns = diffusion_space_timesteps(1000, "3,2", steps, why, sizeof(why));
    check(ns == 5 && steps[0] == 0 && steps[1] == 250 && steps[2] == 499 && steps[3] == 500 && steps[4] == 999,
          "respace.sections", "count %d", ns);

    const char *bad[] = {"", "0", "abc", "25x", "1001", "1", "ddim", "ddim999", "5,,5", "-5"};
    int rejected = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        rejected += diffusion_space_timesteps(1000, bad[i], steps, why, sizeof(why)) == -1;
    check(rejected == (int)(sizeof(bad) / sizeof(bad[0])), "respace.rejects_bad_specs", "last reason: %s", why);

    // The respaced schedule keeps abar at the kept steps and maps k to the original timestep.
    n250 = diffusion_space_timesteps(1000, "250", steps, why, sizeof(why));
    DiffusionSchedule r = diffusion_schedule_respace(&base, steps, n250);
    double err = 0;
    int map_ok = r.T == n250;
    for (int k = 0; k < r.T; k++) {
        err = fmax(err, fabs(r.alphas_cumprod[k] / base.alphas_cumprod[steps[k]] - 1));
        map_ok &= r.timestep_map[k] == steps[k];
    }
    check(err < 1e-12 && map_ok, "respace.schedule", "abar rel err %.1e, beta'_249 %.6f", err, r.betas[249]);
    diffusion_schedule_free(&r);
    diffusion_schedule_free(&base);
}

static void test_gather_and_sampling(void) {
    DiffusionSchedule s = diffusion_schedule_linear(1000);
    int32_t t[] = {0, 1, 500, 999};
    float coef[4 * COEF_COUNT];
    diffusion_gather_coefs(&s, t, 4, coef);
    int ok = 1;
    for (int b = 0; b < 4; b++) {
        const float *c = coef + b * COEF_COUNT;
        int k = t[b];
        ok &= c[COEF_SQRT_ALPHA_BAR] == (float)s.sqrt_alphas_cumprod[k];
        ok &= c[COEF_SQRT_ONE_MINUS_ALPHA_BAR] == (float)s.sqrt_one_minus_alphas_cumprod[k];
        ok &= c[COEF_SQRT_RECIP_ALPHA_BAR] == (float)s.sqrt_recip_alphas_cumprod[k];
        ok &= c[COEF_SQRT_RECIPM1_ALPHA_BAR] == (float)s.sqrt_recipm1_alphas_cumprod[k];
        ok &= c[COEF_POSTERIOR_MEAN_X0] == (float)s.posterior_mean_coef1[k];
        ok &= c[COEF_POSTERIOR_MEAN_XT] == (float)s.posterior_mean_coef2[k];
        ok &= c[COEF_POSTERIOR_LOGVAR] == (float)s.posterior_log_variance_clipped[k];
        ok &= c[COEF_LOG_BETA] == (float)s.log_betas[k];
        ok &= c[COEF_IS_FIRST_STEP] == (k == 0 ? 1.0f : 0.0f);
    }
    check(ok, "coefs.gather", "t=0: c1 %.7g logvar %.7g", coef[COEF_POSTERIOR_MEAN_X0], coef[COEF_POSTERIOR_LOGVAR]);

    // Uniform: 200k draws in 10 bins of 100 timesteps, chi-square with 9 degrees of freedom
    // (its 0.9999 quantile is 33.7); every timestep in range, both ends reached.
    enum { N = 200000 };
    int32_t *draws = malloc(sizeof(int32_t) * N);
    diffusion_sample_timesteps(draws, N, 1000, 7, 3, 0);
    long bins[10] = {0};
    int lo = 1000, hi = -1, in_range = 1;
    for (int i = 0; i < N; i++) {
        in_range &= draws[i] >= 0 && draws[i] < 1000;
        if (!in_range) break;
        bins[draws[i] / 100]++;
        lo = draws[i] < lo ? draws[i] : lo;
        hi = draws[i] > hi ? draws[i] : hi;
    }
    double chi2 = 0, expect = N / 10.0;
    for (int i = 0; i < 10; i++) chi2 += (bins[i] - expect) * (bins[i] - expect) / expect;
    check(in_range && lo == 0 && hi == 999 && chi2 < 33.7, "timesteps.uniform", "chi2 %.2f, range [%d, %d]", chi2, lo,
          hi);

    // Reproducible, and a slice of the batch (a rank's share) draws what the whole batch draws.
    int32_t whole[64], again[64], part[32], other_step[64];
    diffusion_sample_timesteps(whole, 64, 1000, 7, 3, 0);
    diffusion_sample_timesteps(again, 64, 1000, 7, 3, 0);
    diffusion_sample_timesteps(part, 32, 1000, 7, 3, 32);
    diffusion_sample_timesteps(other_step, 64, 1000, 7, 4, 0);
    check(memcmp(whole, again, sizeof(whole)) == 0 && memcmp(whole + 32, part, sizeof(part)) == 0 &&
              memcmp(whole, other_step, sizeof(whole)) != 0,
          "timesteps.reproducible", "%d draws", 64);
    free(draws);
    diffusion_schedule_free(&s);
}

// ---- q_sample and the loss ----

enum { B = 8, C = 4, HW = 64, COUNT = C * HW };
static const int32_t case_t[B] = {0, 0, 0, 1, 2, 100, 500, 999};

typedef struct {
    float x0[B * COUNT], noise[B * COUNT], xt[B * COUNT];
    float out[B * 2 * COUNT]; // (B, 2C, HW): [eps | v]
    float coef[B * COEF_COUNT], dloss[B];
    int learn_sigma;
} LossCase;

// x0 values just either side of the edge-bin threshold +-0.999.
static const float edge_probe[4] = {-0.9995f, -0.9985f, 0.9985f, 0.9995f};

// Fills a case: x0 uniform in (-1.6, 1.6), so about a third of it lies in the edge bins, with the
// first elements of each sample set to edge_probe; eps = noise + 0.3 N(0, 1), except one element
// in 8 where eps misses by 12 or more, which drives the t = 0 bin probabilities into their 1e-12
// floors; v uniform in (-1.2, 1.2). Moderate misses keep |(x0 - mean) / std| below about 4 at
// t = 0, away from the range where float32 rounds a tail probability of 1e-12 .. 1e-8 to the
// floor and the double reference does not.
static void loss_case_init(LossCase *c, const DiffusionSchedule *s, int learn_sigma) {
    c->learn_sigma = learn_sigma;
    diffusion_gather_coefs(s, case_t, B, c->coef);
    size_t out_c = learn_sigma ? 2 * COUNT : COUNT;
    for (int b = 0; b < B; b++) {
        c->dloss[b] = 0.05f * (b + 1); // unequal weights, so a mixed-up sample index shows
        for (int i = 0; i < COUNT; i++) {
            size_t j = (size_t)b * COUNT + i, o = (size_t)b * out_c + i;
            c->x0[j] = (float)(3.2 * rng_open01(rng_u32(5, RNG_DATA, 0, b, i)) - 1.6);
            if (i < 4) c->x0[j] = edge_probe[i];
            c->noise[j] = rng_normal(5, RNG_DATA, 1, b, i);
            float z = rng_normal(5, RNG_DATA, 2, b, i);
            int far = rng_u32(5, RNG_DATA, 3, b, i) % 8 == 0;
            c->out[o] = c->noise[j] + (far ? copysignf(12.0f + fabsf(z), z) : 0.3f * z);
            if (learn_sigma) c->out[o + COUNT] = (float)(2.4 * rng_open01(rng_u32(5, RNG_DATA, 4, b, i)) - 1.2);
        }
    }
    cpu_q_sample(c->xt, c->x0, c->noise, c->coef, B, COUNT);
}

// Which branch of the variational term each element took in the reference (counted to show that
// the test inputs reach all of them).
enum { BR_KL, BR_LOW, BR_LOW_FLOOR, BR_HIGH, BR_HIGH_FLOOR, BR_MID, BR_MID_FLOOR, BR_COUNT };
static long branch_hits[BR_COUNT];

static double ref_cdf(double u) { return 0.5 * (1 + tanh(sqrt(2 / M_PI) * (u + 0.044715 * u * u * u))); }

static double ref_floored_log(double p, int branch) {
    branch_hits[branch + (p < 1e-12)]++;
    return log(fmax(p, 1e-12));
}

// Straightforward double-precision loss of sample b: docs/algorithm.md 2.3 term by term. eps and v point at the
// sample's two halves of the model output.
static void ref_loss(const LossCase *c, int b, const double *eps, const double *v, double *mse, double *vb) {
    const float *k = c->coef + b * COEF_COUNT;
    double sq = 0, bits = 0;
    for (int i = 0; i < COUNT; i++) {
        size_t j = (size_t)b * COUNT + i;
        double x0 = c->x0[j], xt = c->xt[j];
        sq += (c->noise[j] - eps[i]) * (c->noise[j] - eps[i]);
        if (!c->learn_sigma) continue;
        double x0_hat = k[COEF_SQRT_RECIP_ALPHA_BAR] * xt - k[COEF_SQRT_RECIPM1_ALPHA_BAR] * eps[i];
        double mean = k[COEF_POSTERIOR_MEAN_X0] * x0_hat + k[COEF_POSTERIOR_MEAN_XT] * xt;
        double min_log = k[COEF_POSTERIOR_LOGVAR], max_log = k[COEF_LOG_BETA];
        double logvar = (v[i] + 1) / 2 * max_log + (1 - (v[i] + 1) / 2) * min_log;
        if (case_t[b] > 0) {
            double true_mean = k[COEF_POSTERIOR_MEAN_X0] * x0 + k[COEF_POSTERIOR_MEAN_XT] * xt;
            bits += 0.5 * (-1 + logvar - min_log + exp(min_log - logvar) +
                           (true_mean - mean) * (true_mean - mean) * exp(-logvar));
            branch_hits[BR_KL]++;
        } else {
            double sd = exp(0.5 * logvar);
            double cdf_plus = ref_cdf((x0 - mean + 1 / 255.0) / sd), cdf_minus = ref_cdf((x0 - mean - 1 / 255.0) / sd);
            if (x0 < -0.999)
                bits -= ref_floored_log(cdf_plus, BR_LOW);
            else if (x0 > 0.999)
                bits -= ref_floored_log(1 - cdf_minus, BR_HIGH);
            else
                bits -= ref_floored_log(cdf_plus - cdf_minus, BR_MID);
        }
    }
    *mse = sq / COUNT;
    *vb = bits / COUNT / log(2.0);
}

// dloss[b] * (mse[b] or vb[b]) of the reference for one sample, its model output in double.
static double ref_sample_loss(const LossCase *c, int b, const double *out_b, int want_vb) {
    double mse, vb;
    ref_loss(c, b, out_b, out_b + COUNT, &mse, &vb);
    return c->dloss[b] * (want_vb ? vb : mse);
}

static void test_q_sample(const LossCase *c) {
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < COUNT; i++) {
            size_t j = (size_t)b * COUNT + i;
            const float *k = c->coef + b * COEF_COUNT;
            double want =
                (double)k[COEF_SQRT_ALPHA_BAR] * c->x0[j] + (double)k[COEF_SQRT_ONE_MINUS_ALPHA_BAR] * c->noise[j];
            double scale =
                fabs(k[COEF_SQRT_ALPHA_BAR] * c->x0[j]) + fabs(k[COEF_SQRT_ONE_MINUS_ALPHA_BAR] * c->noise[j]);
            worst = fmax(worst, fabs(c->xt[j] - want) / scale);
        }
    // Two float products and a sum: at most a few units of float rounding (6e-8) of the terms.
    check(worst < 2.5e-7, "q_sample", "max err %.1e of |terms|", worst);
}

// Forward of the op against the double reference. Error budget in float32: unit rounding 6e-8,
// amplified by cancellations the reference code also has: x0 - mean at t = 0 (x0 of order 1 minus
// a mean that differs from it by 0.01 * miss, so ~1e-5 relative for misses of order 1), the sum
// -1 + dlogvar + exp(-dlogvar) in the KL when max_log ~ min_log, and tail probabilities 1 + tanh
// near -1 (absolute error 6e-8). The per-sample means average these, so 1e-4 relative is a safe
// bound that still catches any real mistake (a wrong term or branch moves the result by >1e-2).
static void test_loss_forward(LossCase *c, const char *name) {
    float mse[B], vb[B];
    cpu_diffusion_loss_forward(mse, vb, c->out, c->x0, c->xt, c->noise, c->coef, B, C, HW, c->learn_sigma);
    size_t n_out = (size_t)B * (c->learn_sigma ? 2 : 1) * COUNT;
    double *out = malloc(sizeof(double) * n_out);
    for (size_t i = 0; i < n_out; i++) out[i] = c->out[i];
    size_t out_c = c->learn_sigma ? 2 * COUNT : COUNT;
    double mse_err = 0, vb_err = 0, vb_t0 = 0, vb_t999 = 0;
    for (int b = 0; b < B; b++) {
        double m, v;
        ref_loss(c, b, out + b * out_c, out + b * out_c + COUNT, &m, &v);
        mse_err = fmax(mse_err, fabs(mse[b] - m) / m);
        vb_err = fmax(vb_err, c->learn_sigma ? fabs(vb[b] - v) / fabs(v) : fabs(vb[b]));
        if (b == 0) vb_t0 = v;
        if (b == B - 1) vb_t999 = v;
    }
    char full[80];
    snprintf(full, sizeof(full), "%s.forward", name);
    check(mse_err < 1e-6 && vb_err < 1e-4, full, "mse rel err %.1e, vb rel err %.1e (vb t=0 %.4f, t=999 %.4g bits)",
          mse_err, vb_err, vb_t0, vb_t999);
    free(out);
}

// Backward of the op. The eps half must be the gradient of the MSE alone and the v half that of
// the VB alone (the VB sees eps detached: its value moves with eps, its gradient does not). Each
// half of each sample is checked along a random direction d against central differences of the
// double reference with step h = 1e-3 (truncation O(h^2), rounding O(1e-16 |loss| / h)). The
// error is measured against sum_i |g_i d_i|, the size of the terms the directional derivative
// adds up, since the sum itself may cancel. Expected: ~1e-7 from the op's float32 arithmetic,
// more where its formula cancels (1 - exp(min_log - logvar) for logvar near min_log), and up to
// ~1e-6 from the differences at t = 999, where log beta and the clipped log posterior variance
// are 3 float ulps apart so that the VB hardly depends on v. A tolerance of 1e-4 leaves room for
// that, while a wrong factor, sign or branch shows up as O(1). (Float32 differences of the op's
// own forward cannot resolve these derivatives to better than ~1e-2: a sample's VB reaches ~15
// bits while its derivative along d is ~1e-3.)
static void test_loss_backward(LossCase *c, const char *name) {
    size_t out_c = c->learn_sigma ? 2 * COUNT : COUNT, n_out = (size_t)B * out_c;
    float *grad = malloc(sizeof(float) * n_out);
    cpu_diffusion_loss_backward(grad, c->dloss, c->out, c->x0, c->xt, c->noise, c->coef, B, C, HW, c->learn_sigma);
    double *out_b = malloc(sizeof(double) * out_c);
    char full[80];
    for (int half = 0; half < (c->learn_sigma ? 2 : 1); half++) {
        double worst = 0, h = 1e-3;
        for (int b = 0; b < B; b++) {
            const float *out = c->out + (size_t)b * out_c, *g = grad + (size_t)b * out_c + (size_t)half * COUNT;
            double analytic = 0, magnitude = 0, fd = 0;
            for (int sign = 1; sign >= -1; sign -= 2) {
                for (size_t i = 0; i < out_c; i++) out_b[i] = out[i];
                for (int i = 0; i < COUNT; i++)
                    out_b[(size_t)half * COUNT + i] += sign * h * rng_normal(9, RNG_DATA, half, b, i);
                fd += sign * ref_sample_loss(c, b, out_b, half) / (2 * h);
            }
            for (int i = 0; i < COUNT; i++) {
                double d = rng_normal(9, RNG_DATA, half, b, i);
                analytic += g[i] * d;
                magnitude += fabs(g[i] * d);
            }
            worst = fmax(worst, fabs(analytic - fd) / fmax(magnitude, 1e-30));
        }
        snprintf(full, sizeof(full), "%s.backward_%s", name, half ? "v" : "eps");
        check(worst < 1e-4, full, "worst error %.1e of sum |g d|", worst);
    }
    free(out_b);
    free(grad);
}

// Where float32 bin probabilities underflow to the 1e-12 floor, the gradient through the floor is
// zero, as for PyTorch's clamp, even though the tanh derivatives there are not. One t = 0 element
// in the middle bin with a huge model variance (v = 60, std ~ 77) sits 4.9 standard deviations
// from the mean: both CDF values round to the same float just below 1, so their difference is 0.
static void test_loss_floor_gradient(const DiffusionSchedule *s) {
    int32_t t = 0;
    float coef[COEF_COUNT], x0 = 0.0f, noise = 0.5f, xt, v = 60.0f;
    diffusion_gather_coefs(s, &t, 1, coef);
    cpu_q_sample(&xt, &x0, &noise, coef, 1, 1);
    float logvar = coef[COEF_POSTERIOR_LOGVAR] + (v + 1) / 2 * (coef[COEF_LOG_BETA] - coef[COEF_POSTERIOR_LOGVAR]);
    // mean = x0_hat at t = 0 (c1 = 1, c2 = 0); place it 4.9 standard deviations below x0.
    float mean = x0 - 4.9f * expf(0.5f * logvar);
    float out[2] = {(coef[COEF_SQRT_RECIP_ALPHA_BAR] * xt - mean) / coef[COEF_SQRT_RECIPM1_ALPHA_BAR], v};
    float mse, vb, grad[2], dloss = 1.0f;
    cpu_diffusion_loss_forward(&mse, &vb, out, &x0, &xt, &noise, coef, 1, 1, 1, 1);
    cpu_diffusion_loss_backward(grad, &dloss, out, &x0, &xt, &noise, coef, 1, 1, 1, 1);
    double floored_bits = -log(1e-12f) / log(2.0);
    check(fabs(vb - floored_bits) < 1e-4 && grad[1] == 0.0f && grad[0] != 0.0f, "loss.floor_blocks_gradient",
          "vb %.5f bits (floor %.5f), dv %g, deps %g", vb, floored_bits, grad[1], grad[0]);
}

int main(int argc, char **argv) {
    test_schedule();
    test_respacing();
    test_gather_and_sampling();

    DiffusionSchedule s = diffusion_schedule_linear(1000);
    LossCase *c = malloc(sizeof(LossCase));
    loss_case_init(c, &s, 1);
    test_q_sample(c);
    test_loss_forward(c, "loss_learned_sigma");
    int every_branch = 1;
    for (int i = 0; i < BR_COUNT; i++) every_branch &= branch_hits[i] > 0;
    check(every_branch, "loss.reaches_every_branch",
          "elements: KL %ld; x0 < -0.999 %ld + floored %ld; x0 > 0.999 %ld + %ld; middle %ld + %ld", branch_hits[0],
          branch_hits[1], branch_hits[2], branch_hits[3], branch_hits[4], branch_hits[5], branch_hits[6]);
    test_loss_backward(c, "loss_learned_sigma");

    test_loss_floor_gradient(&s);

    loss_case_init(c, &s, 0);
    test_loss_forward(c, "loss_fixed_sigma");
    test_loss_backward(c, "loss_fixed_sigma");

    free(c);
    diffusion_schedule_free(&s);
    return check_exit();
}
