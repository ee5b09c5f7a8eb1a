// tests/test_optim.c: the optimiser ops (AdamW, EMA, sum of squares), the host-side policies
// (warm-up, clip, skip, non-finite gradients) and the random-normal op.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/philox.h"
#include "optim/optimizer.h"
#include "tests/check.h"

static float *normals(size_t n, float stddev, uint32_t stream) {
    float *x = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++) x[i] = stddev * rng_normal(77, RNG_DATA, 0, stream, i);
    return x;
}

static float *copy_of(const float *x, size_t n) {
    float *y = malloc(sizeof(float) * n);
    memcpy(y, x, sizeof(float) * n);
    return y;
}

// max |got - want| relative to the root mean square of want: element-wise relative errors would
// blow up on entries that happen to cancel to near zero.
static double rms_rel_err(const float *got, const double *want, size_t n) {
    double worst = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(got[i] - want[i]));
        sq += want[i] * want[i];
    }
    return worst / sqrt(sq / (double)n);
}

// Five AdamW steps with weight decay against the closed form in double, with the same
// hyper-parameters. Every float operation rounds at 6e-8 relative; over a few steps the errors stay
// near 1e-7 of the typical magnitude of each buffer, so 1e-5 separates rounding from mistakes.
static void test_adamw(void) {
    enum { N = 1000, STEPS = 5 };
    const double lr = 1e-2, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, wd = 0.1;
    float *param = normals(N, 1, 1), *m = calloc(N, sizeof(float)), *v = calloc(N, sizeof(float));
    double *p_ref = malloc(sizeof(double) * N), *m_ref = calloc(N, sizeof(double)), *v_ref = calloc(N, sizeof(double));
    for (int i = 0; i < N; i++) p_ref[i] = param[i];
    for (int step = 1; step <= STEPS; step++) {
        float *grad = normals(N, 0.5f, 10 + step);
        cpu_adamw_update(param, grad, m, v, N, lr, beta1, beta2, eps, wd, step);
        for (int i = 0; i < N; i++) {
            double g = grad[i];
            p_ref[i] *= 1 - (double)lr * wd;
            m_ref[i] = beta1 * m_ref[i] + (1 - (double)beta1) * g;
            v_ref[i] = beta2 * v_ref[i] + (1 - (double)beta2) * g * g;
            double m_hat = m_ref[i] / (1 - pow(beta1, step)), v_hat = v_ref[i] / (1 - pow(beta2, step));
            p_ref[i] -= lr * m_hat / (sqrt(v_hat) + eps);
        }
        free(grad);
    }
    double ep = rms_rel_err(param, p_ref, N), em = rms_rel_err(m, m_ref, N), ev = rms_rel_err(v, v_ref, N);
    check(ep < 1e-5 && em < 1e-5 && ev < 1e-5, "adamw.closed_form", "err/rms param %.1e m %.1e v %.1e", ep, em, ev);
    free(param), free(m), free(v), free(p_ref), free(m_ref), free(v_ref);
}

static void test_ema(void) {
    enum { N = 1000, STEPS = 10 };
    const double decay = 0.99;
    float *ema = normals(N, 1, 2);
    double *ref = malloc(sizeof(double) * N);
    for (int i = 0; i < N; i++) ref[i] = ema[i];
    for (int step = 0; step < STEPS; step++) {
        float *param = normals(N, 1, 30 + step);
        cpu_ema_update(ema, param, N, decay);
        for (int i = 0; i < N; i++) ref[i] = decay * ref[i] + (1 - (double)decay) * param[i];
        free(param);
    }
    // Each step rounds twice (~1e-7 relative); a value that nearly cancels gets a larger relative
    // error, so compare against the typical magnitude (1) instead.
    double worst = 0;
    for (int i = 0; i < N; i++) worst = fmax(worst, fabs(ema[i] - ref[i]));
    check(worst < 1e-6, "ema.closed_form", "max abs err %.1e", worst);
    free(ema), free(ref);
}

static void test_sum_squares(void) {
    // Several chunks and a ragged tail, values spread over six decades.
    size_t n = 5 * 65536 + 12345;
    float *x = normals(n, 1, 3);
    for (size_t i = 0; i < n; i++) x[i] *= powf(10.0f, (float)(i % 7) - 3.0f);
    // The reference sums in extended precision; the op's double partial sums over 65536 terms
    // round at 1.1e-16 each, a random walk of ~3e-14 relative (worst case 7e-12).
    long double ref = 0;
    for (size_t i = 0; i < n; i++) ref += (long double)x[i] * x[i];
    double got, err;
    cpu_sum_squares(&got, x, n);
    err = (double)fabsl(got / ref - 1);
    check(err < 1e-12, "sum_squares.vs_long_double_loop", "rel err %.1e", err);

    int max_threads = omp_get_max_threads(), same = 1;
    const int threads[] = {1, 2, 3, 8};
    for (int k = 0; k < 4; k++) {
        omp_set_num_threads(threads[k]);
        double again;
        cpu_sum_squares(&again, x, n);
        same &= again == got;
    }
    omp_set_num_threads(max_threads);
    check(same, "sum_squares.thread_invariant", "bitwise equal with 1, 2, 3, 8 threads");

    double empty = -1;
    cpu_sum_squares(&empty, x, 0);
    check(empty == 0.0, "sum_squares.empty", "%g", empty);
    free(x);
}

static void test_warmup(void) {
    OptimConfig c = optim_config_default();
    c.lr = 1e-3;
    c.warmup_steps = 4;
    double lr[6];
    for (int i = 0; i < 6; i++) lr[i] = optim_lr_at(&c, i);
    int ok = fabs(lr[0] - 2.5e-4) < 1e-18 && fabs(lr[1] - 5e-4) < 1e-18 && fabs(lr[2] - 7.5e-4) < 1e-18 &&
             lr[3] == 1e-3 && lr[4] == 1e-3 && lr[5] == 1e-3;
    c.warmup_steps = 0;
    ok &= optim_lr_at(&c, 0) == 1e-3 && optim_lr_at(&c, 100000) == 1e-3;
    check(ok, "optim.warmup", "%g %g %g %g %g", lr[0], lr[1], lr[2], lr[3], lr[4]);
}

// Parameters, gradients, moments and EMA for the policy tests, with a known gradient norm.
typedef struct {
    float *param, *grad, *m, *v, *ema;
    double norm;
} State;
enum { PN = 5000 };

static State state_new(void) {
    State s = {normals(PN, 1, 4), normals(PN, 0.1f, 5), calloc(PN, sizeof(float)), calloc(PN, sizeof(float)), NULL, 0};
    s.ema = copy_of(s.param, PN);
    for (int i = 0; i < PN; i++) s.norm += (double)s.grad[i] * s.grad[i];
    s.norm = sqrt(s.norm);
    return s;
}

static void state_free(State *s) { free(s->param), free(s->grad), free(s->m), free(s->v), free(s->ema); }

static int unchanged(const State *s, const State *before) {
    return memcmp(s->param, before->param, sizeof(float) * PN) == 0 &&
           memcmp(s->m, before->m, sizeof(float) * PN) == 0 && memcmp(s->v, before->v, sizeof(float) * PN) == 0;
}

static void test_policies(void) {
    OptimConfig cfg = optim_config_default();
    cfg.lr = 1e-3;
    Optimizer opt;

    // The norm, through the op and the download.
    State s = state_new();
    optim_init(&opt, &ops_cpu, &cfg);
    double norm = optim_grad_norm(&opt, s.grad, PN);
    check(fabs(norm / s.norm - 1) < 1e-14, "optim.grad_norm", "%.9g vs %.9g", norm, s.norm);

    // Clip: gradients scaled by max / (norm + 1e-6), then an ordinary step.
    opt.cfg.policy = GRAD_POLICY_CLIP;
    opt.cfg.max_grad_norm = 0.5 * norm;
    float *grad0 = copy_of(s.grad, PN), *param0 = copy_of(s.param, PN);
    OptimStepInfo info = optim_step(&opt, 0, norm, s.param, s.grad, s.m, s.v, PN);
    float scale = (float)(opt.cfg.max_grad_norm / (norm + 1e-6));
    int scaled = 1;
    for (int i = 0; i < PN; i++) scaled &= s.grad[i] == grad0[i] * scale;
    // The same AdamW step applied by hand to the clipped gradients must agree bitwise.
    float *m1 = calloc(PN, sizeof(float)), *v1 = calloc(PN, sizeof(float));
    cpu_adamw_update(param0, s.grad, m1, v1, PN, 1e-3, 0.9, 0.999, 1e-8, 0.0, 1);
    check(scaled && info.clipped && info.updated && opt.step == 1 && info.lr == 1e-3 &&
              memcmp(param0, s.param, sizeof(float) * PN) == 0,
          "optim.clip", "norm %.4f -> scale %.6f", norm, scale);
    // Below the threshold the gradients are left alone.
    opt.cfg.max_grad_norm = 2 * norm;
    memcpy(grad0, s.grad, sizeof(float) * PN);
    info = optim_step(&opt, 1, norm, s.param, s.grad, s.m, s.v, PN);
    check(!info.clipped && info.updated && opt.step == 2 && memcmp(grad0, s.grad, sizeof(float) * PN) == 0,
          "optim.clip_below_threshold", "max %.4f", opt.cfg.max_grad_norm);
    state_free(&s);
    free(grad0), free(param0), free(m1), free(v1);

    // Skip: no update at norm >= max (parameters, moments, step count untouched), the EMA still
    // moves; an ordinary unclipped update below the threshold.
    s = state_new();
    cfg.policy = GRAD_POLICY_SKIP;
    cfg.max_grad_norm = s.norm;
    cfg.ema_decay = 0.5;
    optim_init(&opt, &ops_cpu, &cfg);
    for (int i = 0; i < PN; i++) s.ema[i] = 0.0f;
    State before = {copy_of(s.param, PN), NULL, copy_of(s.m, PN), copy_of(s.v, PN), NULL, 0};
    info = optim_step(&opt, 0, s.norm, s.param, s.grad, s.m, s.v, PN);
    optim_ema_update(&opt, s.ema, s.param, PN);
    int ema_moved = 1;
    for (int i = 0; i < PN; i++) ema_moved &= s.ema[i] == 0.5f * s.param[i];
    check(!info.updated && !info.nonfinite && info.lr == 0 && opt.step == 0 && unchanged(&s, &before) && ema_moved,
          "optim.skip_at_threshold", "norm %.4f, max %.4f", s.norm, opt.cfg.max_grad_norm);
    opt.cfg.max_grad_norm = s.norm * 1.0001;
    float *grad0b = copy_of(s.grad, PN);
    info = optim_step(&opt, 0, s.norm, s.param, s.grad, s.m, s.v, PN);
    check(info.updated && !info.clipped && opt.step == 1 && !unchanged(&s, &before) &&
              memcmp(grad0b, s.grad, sizeof(float) * PN) == 0,
          "optim.skip_below_threshold", "max %.4f", opt.cfg.max_grad_norm);
    free(grad0b);

    // A NaN or infinite gradient cancels the update under every policy and is reported.
    const GradPolicy policies[] = {GRAD_POLICY_NONE, GRAD_POLICY_CLIP, GRAD_POLICY_SKIP};
    int all_cancelled = 1;
    for (int k = 0; k < 3; k++)
        for (int bad = 0; bad < 2; bad++) {
            memcpy(before.param, s.param, sizeof(float) * PN);
            memcpy(before.m, s.m, sizeof(float) * PN);
            memcpy(before.v, s.v, sizeof(float) * PN);
            float keep = s.grad[17];
            s.grad[17] = bad ? INFINITY : NAN;
            opt.cfg.policy = policies[k];
            opt.cfg.max_grad_norm = 1e30;
            double n = optim_grad_norm(&opt, s.grad, PN);
            long step = opt.step;
            info = optim_step(&opt, 5, n, s.param, s.grad, s.m, s.v, PN);
            all_cancelled &= info.nonfinite && !info.updated && opt.step == step && unchanged(&s, &before);
            s.grad[17] = keep;
        }
    check(all_cancelled, "optim.nonfinite_cancels", "NaN and Inf under none, clip and skip");

    // The warm-up LR reaches AdamW.
    opt.cfg.policy = GRAD_POLICY_NONE;
    opt.cfg.warmup_steps = 10;
    info = optim_step(&opt, 4, s.norm, s.param, s.grad, s.m, s.v, PN);
    check(info.updated && fabs(info.lr - 0.5 * cfg.lr) < 1e-18, "optim.step_uses_warmup_lr", "lr %g", info.lr);

    free(before.param), free(before.m), free(before.v);
    state_free(&s);
}

static void test_randn(void) {
    enum { B = 4, N = 1 << 18 };
    float *x = malloc(sizeof(float) * B * N), *y = malloc(sizeof(float) * B * N);
    cpu_randn(x, 11, RNG_NOISE, 3, 0, B, N);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < (size_t)B * N; i++) sum += x[i], sq += (double)x[i] * x[i];
    double total = (double)B * N, mean = sum / total, var = sq / total - mean * mean;
    // Five standard errors: 1/sqrt(n) for the mean, sqrt(2/n) for the variance.
    check(fabs(mean) < 5 / sqrt(total) && fabs(var - 1) < 5 * sqrt(2 / total), "randn.moments", "mean %.5f var %.5f",
          mean, var);

    cpu_randn(y, 11, RNG_NOISE, 3, 0, B, N);
    check(memcmp(x, y, sizeof(float) * B * N) == 0, "randn.reproducible", "%d x %d", B, N);
    // Rows 2..3 of the batch are what a process holding only samples 2..3 draws.
    cpu_randn(y, 11, RNG_NOISE, 3, 2, 2, N);
    check(memcmp(x + 2 * (size_t)N, y, sizeof(float) * 2 * N) == 0, "randn.batch_slice", "samples 2..3");
    cpu_randn(y, 11, RNG_NOISE, 4, 0, B, N);
    int differ = memcmp(x, x + N, sizeof(float) * N) != 0 && memcmp(x, y, sizeof(float) * N) != 0;
    cpu_randn(y, 11, RNG_TIMESTEP, 3, 0, B, N);
    differ &= memcmp(x, y, sizeof(float) * N) != 0;
    cpu_randn(y, 12, RNG_NOISE, 3, 0, B, N);
    differ &= memcmp(x, y, sizeof(float) * N) != 0;
    check(differ, "randn.streams_differ", "other sample, step, purpose, seed");
    free(x), free(y);
}

int main(int argc, char **argv) {
    test_adamw();
    test_ema();
    test_sum_squares();
    test_warmup();
    test_policies();
    test_randn();
    return check_exit();
}
