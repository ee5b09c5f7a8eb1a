// tests/test_ops.c: every DiT op of the CPU backend against finite differences or a closed form.
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/fd.h"

#define EPS 1e-2
#define TOL 1e-3

static float *randn_new(size_t n, float stddev, uint32_t stream) {
    float *x = malloc(n * sizeof(float));
    fill_normal(x, n, stddev, stream);
    return x;
}

static float *zeros(size_t n) { return calloc(n, sizeof(float)); }

// ---- matmul ----
typedef struct {
    float *out, *inp, *w, *b, *R;
    int M, K, N;
} MatmulCase;

static double matmul_loss(void *p) {
    MatmulCase *c = p;
    cpu_matmul_forward(c->out, c->inp, c->w, c->b, c->M, c->K, c->N);
    return dot_f64(c->out, c->R, (size_t)c->M * c->N);
}

static void test_matmul(void) {
    MatmulCase c = {.M = 7, .K = 13, .N = 5};
    c.inp = randn_new((size_t)c.M * c.K, 1, 1);
    c.w = randn_new((size_t)c.N * c.K, 0.3f, 2);
    c.b = randn_new(c.N, 1, 3);
    c.R = randn_new((size_t)c.M * c.N, 1, 4);
    c.out = zeros((size_t)c.M * c.N);
    float *dinp = zeros((size_t)c.M * c.K), *dw = randn_new((size_t)c.N * c.K, 1, 5), *db = randn_new(c.N, 1, 6);
    float *dw0 = malloc(sizeof(float) * c.N * c.K), *db0 = malloc(sizeof(float) * c.N);
    memcpy(dw0, dw, sizeof(float) * c.N * c.K);
    memcpy(db0, db, sizeof(float) * c.N);
    cpu_matmul_backward(dinp, dw, db, c.R, c.inp, c.w, c.M, c.K, c.N);
    for (int i = 0; i < c.N * c.K; i++) dw[i] -= dw0[i]; // parameter gradients accumulate
    for (int i = 0; i < c.N; i++) db[i] -= db0[i];
    fd_directional("matmul.dinp", c.inp, (size_t)c.M * c.K, dinp, matmul_loss, &c, EPS, TOL, 10);
    fd_directional("matmul.dweight", c.w, (size_t)c.N * c.K, dw, matmul_loss, &c, EPS, TOL, 11);
    fd_directional("matmul.dbias", c.b, c.N, db, matmul_loss, &c, EPS, TOL, 12);
    // forward against a double loop, without bias
    cpu_matmul_forward(c.out, c.inp, c.w, NULL, c.M, c.K, c.N);
    double worst = 0;
    for (int i = 0; i < c.M; i++)
        for (int j = 0; j < c.N; j++) {
            double s = 0;
            for (int k = 0; k < c.K; k++) s += (double)c.inp[i * c.K + k] * c.w[j * c.K + k];
            worst = fmax(worst, fabs(s - c.out[i * c.N + j]));
        }
    check(worst < 1e-5, "matmul.forward_no_bias", "max abs err %.2e", worst);
}

// ---- element-wise ----
typedef struct {
    float *x, *out, *R;
    size_t n;
    void (*fwd)(float *, const float *, size_t);
} UnaryCase;

static double unary_loss(void *p) {
    UnaryCase *c = p;
    c->fwd(c->out, c->x, c->n);
    return dot_f64(c->out, c->R, c->n);
}

static void test_unary(const char *name, void (*fwd)(float *, const float *, size_t),
                       void (*bwd)(float *, const float *, const float *, size_t), double (*ref)(double)) {
    UnaryCase c = {.n = 301, .fwd = fwd};
    c.x = randn_new(c.n, 2.0f, 20);
    c.R = randn_new(c.n, 1, 21);
    c.out = zeros(c.n);
    float *din = zeros(c.n);
    bwd(din, c.R, c.x, c.n);
    char label[64];
    snprintf(label, sizeof(label), "%s.backward", name);
    fd_directional(label, c.x, c.n, din, unary_loss, &c, EPS, TOL, 22);
    fwd(c.out, c.x, c.n);
    double worst = 0;
    for (size_t i = 0; i < c.n; i++) worst = fmax(worst, fabs(ref(c.x[i]) - c.out[i]));
    snprintf(label, sizeof(label), "%s.forward", name);
    check(worst < 1e-6, label, "max abs err vs double %.2e", worst);
    // in-place backward (din aliases dout) gives the same result
    float *inplace = malloc(c.n * sizeof(float));
    memcpy(inplace, c.R, c.n * sizeof(float));
    bwd(inplace, inplace, c.x, c.n);
    snprintf(label, sizeof(label), "%s.backward_in_place", name);
    check_true(memcmp(inplace, din, c.n * sizeof(float)) == 0, label);
}

static double silu_ref(double x) { return x / (1 + exp(-x)); }
static double gelu_ref(double x) { return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }

// ---- layernorm + modulate ----
typedef struct {
    float *x, *mod, *out, *mean, *rstd, *R;
    int B, T, D, stride;
} LnCase;

static double ln_loss(void *p) {
    LnCase *c = p;
    cpu_layernorm_modulate_forward(c->out, c->mean, c->rstd, c->x, c->mod, c->mod + c->D, c->stride, c->B, c->T, c->D);
    return dot_f64(c->out, c->R, (size_t)c->B * c->T * c->D);
}

static void test_layernorm_modulate(void) {
    LnCase c = {.B = 3, .T = 5, .D = 70, .stride = 3 * 70 + 11};
    size_t n = (size_t)c.B * c.T * c.D;
    c.x = randn_new(n, 1.5f, 30);
    for (size_t i = 0; i < n; i++) c.x[i] += 0.7f; // a non-zero mean exercises the centring
    c.mod = randn_new((size_t)c.B * c.stride, 0.5f, 31);
    c.R = randn_new(n, 1, 32);
    c.out = zeros(n);
    c.mean = zeros((size_t)c.B * c.T);
    c.rstd = zeros((size_t)c.B * c.T);
    ln_loss(&c);
    // forward against a double computation
    double worst = 0;
    for (int r = 0; r < c.B * c.T; r++) {
        int b = r / c.T;
        double mu = 0, var = 0;
        for (int d = 0; d < c.D; d++) mu += c.x[r * c.D + d];
        mu /= c.D;
        for (int d = 0; d < c.D; d++) var += (c.x[r * c.D + d] - mu) * (c.x[r * c.D + d] - mu);
        var /= c.D;
        for (int d = 0; d < c.D; d++) {
            double ref = (c.x[r * c.D + d] - mu) / sqrt(var + 1e-6) * (1 + c.mod[b * c.stride + c.D + d]) +
                         c.mod[b * c.stride + d];
            worst = fmax(worst, fabs(ref - c.out[r * c.D + d]));
        }
    }
    check(worst < 2e-5, "layernorm_modulate.forward", "max abs err vs double %.2e", worst);
    float *dx = randn_new(n, 1, 33), *dx0 = malloc(n * sizeof(float)), *dmod = zeros((size_t)c.B * c.stride);
    memcpy(dx0, dx, n * sizeof(float));
    cpu_layernorm_modulate_backward(dx, dmod, dmod + c.D, c.R, c.x, c.mean, c.rstd, c.mod + c.D, c.stride, c.B, c.T,
                                    c.D);
    for (size_t i = 0; i < n; i++) dx[i] -= dx0[i]; // dx accumulates into the residual stream
    fd_directional("layernorm_modulate.dx", c.x, n, dx, ln_loss, &c, EPS, TOL, 34);
    // shift and scale live inside one strided buffer; unused columns must get zero gradient
    float *dmod_used = zeros((size_t)c.B * c.stride);
    for (int b = 0; b < c.B; b++)
        for (int d = 0; d < 2 * c.D; d++) dmod_used[b * c.stride + d] = dmod[b * c.stride + d];
    fd_directional("layernorm_modulate.dshift_dscale", c.mod, (size_t)c.B * c.stride, dmod_used, ln_loss, &c, EPS, TOL,
                   35);
}

// ---- gated residual ----
typedef struct {
    float *x, *gate, *branch, *keep, *out, *R;
    int B, T, D, stride;
} GateCase;

static double gate_loss(void *p) {
    GateCase *c = p;
    cpu_gate_residual_forward(c->out, c->x, c->gate, c->branch, c->stride, c->keep, c->T, c->B, c->T, c->D);
    return dot_f64(c->out, c->R, (size_t)c->B * c->T * c->D);
}

static void test_gate_residual(int with_keep) {
    GateCase c = {.B = 2, .T = 9, .D = 67, .stride = 100};
    size_t n = (size_t)c.B * c.T * c.D;
    c.x = randn_new(n, 1, 40);
    c.gate = randn_new((size_t)c.B * c.stride, 1, 41);
    c.branch = randn_new(n, 1, 42);
    c.R = randn_new(n, 1, 43);
    c.out = zeros(n);
    // the op takes any per-token factor; the model passes 0/1, the check needs a continuous one
    c.keep = with_keep ? randn_new((size_t)c.B * c.T, 1, 47) : NULL;
    float *dbranch = zeros(n), *dgate = zeros((size_t)c.B * c.stride), *dkeep = zeros((size_t)c.B * c.T);
    cpu_gate_residual_backward(dbranch, dgate, with_keep ? dkeep : NULL, c.R, c.gate, c.branch, c.stride, c.keep, c.T,
                               c.B, c.T, c.D);
    const char *tag = with_keep ? "gate_residual_keep" : "gate_residual";
    char label[64];
    snprintf(label, sizeof(label), "%s.dbranch", tag);
    fd_directional(label, c.branch, n, dbranch, gate_loss, &c, EPS, TOL, 44);
    snprintf(label, sizeof(label), "%s.dgate", tag);
    fd_directional(label, c.gate, (size_t)c.B * c.stride, dgate, gate_loss, &c, EPS, TOL, 45);
    snprintf(label, sizeof(label), "%s.dx", tag);
    fd_directional(label, c.x, n, c.R, gate_loss, &c, EPS, TOL, 46);
    if (with_keep)
        fd_directional("gate_residual_keep.dkeep", c.keep, (size_t)c.B * c.T, dkeep, gate_loss, &c, EPS, TOL, 48);
}

// ---- DyDiT routing ----
typedef struct {
    float *x, *mask, *out, *R;
    int B, T, G, S, stride;
} GroupMaskCase;

static double group_mask_loss(void *p) {
    GroupMaskCase *c = p;
    cpu_group_mask_forward(c->out, c->x, c->mask, c->stride, c->B, c->T, c->G, c->S);
    return dot_f64(c->out, c->R, (size_t)c->B * c->T * c->G * c->S);
}

static void test_group_mask(void) {
    GroupMaskCase c = {.B = 3, .T = 5, .G = 4, .S = 9, .stride = 7};
    size_t n = (size_t)c.B * c.T * c.G * c.S;
    c.x = randn_new(n, 1, 90);
    c.mask = randn_new((size_t)c.B * c.stride, 1, 91);
    c.R = randn_new(n, 1, 92);
    c.out = zeros(n);
    float *dx = zeros(n), *dmask = zeros((size_t)c.B * c.stride);
    cpu_group_mask_backward(dx, dmask, c.R, c.x, c.mask, c.stride, c.B, c.T, c.G, c.S);
    fd_directional("group_mask.dx", c.x, n, dx, group_mask_loss, &c, EPS, TOL, 93);
    fd_directional("group_mask.dmask", c.mask, (size_t)c.B * c.stride, dmask, group_mask_loss, &c, EPS, TOL, 94);
    // mask gradients accumulate: a second backward doubles them
    float *twice = malloc((size_t)c.B * c.stride * sizeof(float));
    memcpy(twice, dmask, (size_t)c.B * c.stride * sizeof(float));
    cpu_group_mask_backward(dx, twice, c.R, c.x, c.mask, c.stride, c.B, c.T, c.G, c.S);
    int doubled = 1;
    for (int i = 0; i < c.B * c.stride; i++) doubled &= twice[i] == 2 * dmask[i];
    check_true(doubled, "group_mask.dmask_accumulates");
    // a 0/1 mask zeroes exactly its groups' channels
    for (int i = 0; i < c.B * c.stride; i++) c.mask[i] = (float)(i % 2);
    group_mask_loss(&c);
    int ok = 1;
    for (int b = 0; b < c.B; b++)
        for (int t = 0; t < c.T; t++)
            for (int g = 0; g < c.G; g++)
                for (int s = 0; s < c.S; s++) {
                    size_t i = (((size_t)b * c.T + t) * c.G + g) * c.S + s;
                    ok &= c.out[i] == ((b * c.stride + g) % 2 ? c.x[i] : 0.0f);
                }
    check_true(ok, "group_mask.zero_one");
}

typedef struct {
    float *logits, *hard, *soft, *R;
    int rows, cols;
    float tau;
} GateSoftCase;

// <R, soft(logits)>: the straight-through backward must be the gradient of the soft value.
static double soft_loss(void *p) {
    GateSoftCase *c = p;
    cpu_st_gate_forward(c->hard, c->cols + 1, c->soft, c->logits, NULL, 0, c->rows, c->cols, c->tau, 0.0f);
    return dot_f64(c->soft, c->R, (size_t)c->rows * c->cols);
}

static void test_st_gate(void) {
    GateSoftCase c = {.rows = 6, .cols = 5, .tau = 5.0f};
    size_t n = (size_t)c.rows * c.cols;
    c.logits = randn_new(n, 4, 100);
    c.R = randn_new(n, 1, 101);
    c.soft = zeros(n);
    c.hard = zeros((size_t)c.rows * (c.cols + 1));
    float *noise = randn_new(n, 3, 102), *dhard = zeros((size_t)c.rows * (c.cols + 1)), *dlogits = zeros(n);
    for (int r = 0; r < c.rows; r++) c.hard[r * (c.cols + 1) + c.cols] = 7.0f; // outside the written columns
    cpu_st_gate_forward(c.hard, c.cols + 1, c.soft, c.logits, noise, c.cols, c.rows, c.cols, c.tau, 0.0f);
    int ok = 1;
    for (int r = 0; r < c.rows; r++) {
        for (int k = 0; k < c.cols; k++) {
            size_t i = (size_t)r * c.cols + k;
            double z = (double)c.logits[i] + noise[i];
            ok &= c.hard[r * (c.cols + 1) + k] == (z > 0 ? 1.0f : 0.0f);
            ok &= fabs(c.soft[i] - 1 / (1 + exp(-z / c.tau))) < 1e-6;
        }
        ok &= c.hard[r * (c.cols + 1) + c.cols] == 7.0f;
    }
    check_true(ok, "st_gate.forward_hard_and_soft");
    // eval mode: no noise, strict threshold (a zero logit is off)
    c.logits[0] = 0.0f;
    cpu_st_gate_forward(c.hard, c.cols + 1, c.soft, c.logits, NULL, 0, c.rows, c.cols, c.tau, 0.0f);
    check_true(c.hard[0] == 0.0f, "st_gate.zero_logit_is_off");
    // a threshold moves the decision, not the gradient's soft value
    c.logits[0] = 0.5f;
    cpu_st_gate_forward(c.hard, c.cols + 1, c.soft, c.logits, NULL, 0, c.rows, c.cols, c.tau, 1.0f);
    float soft_at_threshold = c.soft[0];
    cpu_st_gate_forward(c.hard + c.cols + 1, c.cols + 1, c.soft, c.logits, NULL, 0, 1, c.cols, c.tau, 0.0f);
    check_true(c.hard[0] == 0.0f && c.hard[c.cols + 1] == 1.0f && c.soft[0] == soft_at_threshold, "st_gate.threshold");
    for (int r = 0; r < c.rows; r++)
        for (int k = 0; k < c.cols; k++) dhard[r * (c.cols + 1) + k] = c.R[r * c.cols + k];
    soft_loss(&c);
    cpu_st_gate_backward(dlogits, dhard, c.cols + 1, c.soft, c.rows, c.cols, c.tau);
    fd_directional("st_gate.backward_is_soft_gradient", c.logits, n, dlogits, soft_loss, &c, EPS, TOL, 103);
}

typedef struct {
    float *head, *chan, *keep, *ratio, *R;
    int B, L, H, T;
    float attn, mlp;
} FlopsCase;

static double flops_loss(void *p) {
    FlopsCase *c = p;
    cpu_flops_ratio_forward(c->ratio, c->head, c->chan, c->keep, c->B, c->L, c->H, c->T, c->attn, c->mlp);
    return dot_f64(c->ratio, c->R, (size_t)c->B);
}

static void test_flops_ratio(void) {
    FlopsCase c = {.B = 3, .L = 4, .H = 5, .T = 7, .attn = 0.3f, .mlp = 0.7f};
    size_t nh = (size_t)c.B * c.L * c.H, nk = (size_t)c.B * c.L * c.T;
    c.head = randn_new(nh, 1, 110);
    c.chan = randn_new(nh, 1, 111);
    c.keep = randn_new(nk, 1, 112);
    c.ratio = zeros(c.B);
    c.R = randn_new(c.B, 1, 113);
    // all ones: ratio 1; heads only: attn / (attn + mlp)
    float *ones_h = malloc(nh * sizeof(float)), *ones_k = malloc(nk * sizeof(float)), *zero_h = zeros(nh);
    for (size_t i = 0; i < nh; i++) ones_h[i] = 1;
    for (size_t i = 0; i < nk; i++) ones_k[i] = 1;
    cpu_flops_ratio_forward(c.ratio, ones_h, ones_h, ones_k, c.B, c.L, c.H, c.T, c.attn, c.mlp);
    int ok = fabs(c.ratio[0] - 1) < 1e-6;
    cpu_flops_ratio_forward(c.ratio, ones_h, zero_h, ones_k, c.B, c.L, c.H, c.T, c.attn, c.mlp);
    ok &= fabs(c.ratio[1] - 0.3) < 1e-6;
    check(ok, "flops_ratio.closed_form", "all on %.6f, attention only %.6f", 1.0, c.ratio[1]);
    float *dh = zeros(nh), *dc = zeros(nh), *dk = zeros(nk);
    cpu_flops_ratio_backward(dh, dc, dk, c.R, c.chan, c.keep, c.B, c.L, c.H, c.T, c.attn, c.mlp);
    fd_directional("flops_ratio.dhead", c.head, nh, dh, flops_loss, &c, EPS, TOL, 114);
    fd_directional("flops_ratio.dchan", c.chan, nh, dc, flops_loss, &c, EPS, TOL, 115);
    fd_directional("flops_ratio.dkeep", c.keep, nk, dk, flops_loss, &c, EPS, TOL, 116);
}

static double relu_ref(double x) { return x > 0 ? x : 0; }

// ---- attention ----
typedef struct {
    float *qkv, *out, *probs, *R;
    int B, T, H, hd;
} AttnCase;

static double attn_loss(void *p) {
    AttnCase *c = p;
    cpu_attention_forward(c->out, c->probs, c->qkv, c->B, c->T, c->H, c->hd);
    return dot_f64(c->out, c->R, (size_t)c->B * c->T * c->H * c->hd);
}

static void test_attention(int B, int T, int H, int hd) {
    AttnCase c = {.B = B, .T = T, .H = H, .hd = hd};
    int D = H * hd;
    size_t nqkv = (size_t)B * T * 3 * D, nout = (size_t)B * T * D;
    c.qkv = randn_new(nqkv, 1.0f, 50);
    c.R = randn_new(nout, 1, 51);
    c.out = zeros(nout);
    c.probs = zeros((size_t)B * H * T * T);
    attn_loss(&c);
    // forward against a direct double computation
    double worst = 0, scale = 1.0 / sqrt((double)hd);
    double *s = malloc(sizeof(double) * T);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < T; i++) {
                const float *q = c.qkv + ((size_t)b * T + i) * 3 * D + h * hd;
                double mx = -1e300, z = 0;
                for (int j = 0; j < T; j++) {
                    const float *k = c.qkv + ((size_t)b * T + j) * 3 * D + D + h * hd;
                    s[j] = 0;
                    for (int d = 0; d < hd; d++) s[j] += (double)q[d] * k[d];
                    s[j] *= scale;
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j < T; j++) z += (s[j] = exp(s[j] - mx));
                for (int d = 0; d < hd; d++) {
                    double o = 0;
                    for (int j = 0; j < T; j++) o += s[j] / z * c.qkv[((size_t)b * T + j) * 3 * D + 2 * D + h * hd + d];
                    worst = fmax(worst, fabs(o - c.out[((size_t)b * T + i) * D + h * hd + d]));
                }
            }
    free(s);
    char label[80];
    snprintf(label, sizeof(label), "attention.forward_T%d_H%d_hd%d", T, H, hd);
    check(worst < 1e-5, label, "max abs err vs double %.2e", worst);
    float *dqkv = zeros(nqkv), *scratch = zeros((size_t)B * H * T * T);
    cpu_attention_backward(dqkv, scratch, c.R, c.qkv, c.probs, B, T, H, hd);
    snprintf(label, sizeof(label), "attention.backward_T%d_H%d_hd%d", T, H, hd);
    fd_directional(label, c.qkv, nqkv, dqkv, attn_loss, &c, EPS, TOL, 52);
}

// ---- embeddings and token layout ----
static void test_embedding(void) {
    int B = 6, D = 11, rows = 4;
    int32_t labels[6] = {3, 0, 3, 2, 3, 1};
    float *table = randn_new((size_t)rows * D, 1, 60), *out = zeros((size_t)B * D);
    cpu_embedding_forward(out, table, labels, B, D);
    int ok = 1;
    for (int b = 0; b < B; b++) ok &= memcmp(out + b * D, table + labels[b] * D, sizeof(float) * D) == 0;
    check_true(ok, "embedding.forward");
    float *dout = randn_new((size_t)B * D, 1, 61), *dtable = zeros((size_t)rows * D);
    cpu_embedding_backward(dtable, dout, labels, B, D);
    double worst = 0;
    for (int r = 0; r < rows; r++)
        for (int d = 0; d < D; d++) {
            double s = 0;
            for (int b = 0; b < B; b++)
                if (labels[b] == r) s += dout[b * D + d];
            worst = fmax(worst, fabs(s - dtable[r * D + d]));
        }
    check(worst < 1e-6, "embedding.backward_scatter_add", "max abs err %.2e", worst);
}

static void test_patches(void) {
    int B = 2, C = 3, H = 6, W = 6, p = 2, gw = W / p, T = (H / p) * gw;
    size_t n = (size_t)B * C * H * W;
    float *img = randn_new(n, 1, 70), *patches = zeros(n), *tokens = randn_new(n, 1, 71), *out = zeros(n);
    cpu_patchify(patches, img, B, C, H, W, p);
    int ok = 1;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++)
                for (int py = 0; py < p; py++)
                    for (int px = 0; px < p; px++) {
                        int y = (t / gw) * p + py, x = (t % gw) * p + px;
                        ok &= patches[((size_t)b * T + t) * C * p * p + (c * p + py) * p + px] ==
                              img[(((size_t)b * C + c) * H + y) * W + x];
                    }
    check(ok, "patchify.conv_order", "patch vector ordered (c, py, px)");
    cpu_unpatchify_forward(out, tokens, B, C, H, W, p);
    ok = 1;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int py = 0; py < p; py++)
                for (int px = 0; px < p; px++)
                    for (int c = 0; c < C; c++) {
                        int y = (t / gw) * p + py, x = (t % gw) * p + px;
                        ok &= out[(((size_t)b * C + c) * H + y) * W + x] ==
                              tokens[((size_t)b * T + t) * C * p * p + (py * p + px) * C + c];
                    }
    check(ok, "unpatchify.forward_order", "token outputs ordered (py, px, c)");
    // adjoint: <unpatchify(tok), g> == <tok, unpatchify_backward(g)>
    float *g = randn_new(n, 1, 72), *dtok = zeros(n);
    cpu_unpatchify_backward(dtok, g, B, C, H, W, p);
    double lhs = dot_f64(out, g, n), rhs = dot_f64(tokens, dtok, n);
    check(fabs(lhs - rhs) < 1e-9 * fmax(1, fabs(lhs)), "unpatchify.adjoint", "%.10g vs %.10g", lhs, rhs);
}

static void test_timestep_embedding(void) {
    int B = 4, F = 256;
    float t[4] = {0, 1, 499.5f, 999};
    float *out = zeros((size_t)B * F);
    cpu_timestep_embedding(out, t, B, F, 10000.0f);
    double worst = 0;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < F / 2; k++) {
            double f = exp(-log(10000.0) * k / (F / 2));
            // float32 rounding of the exponent (|.| <= 9.2, so ~5.5e-7 absolute) makes the frequency
            // ~6e-7 relative off, and t * f inherits it; swapping cos/sin would give O(1) errors
            double tol = 1e-6 + t[b] * f * 1e-6;
            double e1 = fabs(cos(t[b] * f) - out[b * F + k]) / tol,
                   e2 = fabs(sin(t[b] * f) - out[b * F + F / 2 + k]) / tol;
            worst = fmax(worst, fmax(e1, e2));
        }
    check(worst <= 1.0, "timestep_embedding.cos_first", "worst error / tolerance %.3f", worst);
}

static void test_add_broadcast(void) {
    int B = 3;
    size_t n = 17;
    float *x = randn_new(B * n, 1, 80), *row = randn_new(n, 1, 81), *x0 = malloc(B * n * sizeof(float));
    memcpy(x0, x, B * n * sizeof(float));
    cpu_add_broadcast(x, row, B, n);
    int ok = 1;
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < n; i++) ok &= x[b * n + i] == x0[b * n + i] + row[i];
    check_true(ok, "add_broadcast");
}

int main(void) {
    test_matmul();
    test_unary("silu", cpu_silu_forward, cpu_silu_backward, silu_ref);
    test_unary("gelu_tanh", cpu_gelu_forward, cpu_gelu_backward, gelu_ref);
    test_layernorm_modulate();
    test_gate_residual(0);
    test_gate_residual(1);
    test_unary("relu", cpu_relu_forward, cpu_relu_backward, relu_ref);
    test_group_mask();
    test_st_gate();
    test_flops_ratio();
    test_attention(2, 5, 3, 7);
    test_attention(1, 16, 2, 72);
    test_embedding();
    test_patches();
    test_timestep_embedding();
    test_add_broadcast();
    return check_exit();
}
