// tests/cuda/test_cuda_ops.c: every op of ops_cuda but the VAE's convolutional layers
// (test_cuda_conv_ops.c) against its CPU twin (ops_cpu, itself checked against finite differences
// and closed forms by tests/test_ops.c), in both precisions, through the harness of
// tests/cuda/op_case.h. Sizes are awkward on purpose (odd M, K, N; T not a multiple of 32; pointers
// one float off alignment) and realistic (DiT-XL/2's 1152 width, 72-dim heads, 256 tokens).
#include <stddef.h>

#include "model/diffusion.h"
#include "tests/cuda/op_case.h"

/* ---- dense layers ---- */

static void run_matmul_forward(const Ops *o, const Case *c) {
    o->matmul_forward(F(0), F(1), F(2), F(3), c->M, c->K, c->N);
}

static Case *matmul_forward(const char *name, int M, int K, int N, int bias) {
    Case *c = new_case(name, run_matmul_forward);
    c->M = M, c->K = K, c->N = N;
    out_f(c, "out", garbage((size_t)M * N), (size_t)M * N, GEMM);
    in_f(c, "inp", randn((size_t)M * K, 1), (size_t)M * K);
    in_f(c, "weight", randn((size_t)N * K, 1 / sqrtf((float)K)), (size_t)N * K);
    if (bias)
        in_f(c, "bias", randn(N, 1), N);
    else
        null_buf(c, "bias");
    return c;
}

static void run_matmul_backward(const Ops *o, const Case *c) {
    o->matmul_backward(F(0), F(1), F(2), F(3), F(4), F(5), c->M, c->K, c->N);
}

// dinp overwritten, dweight and dbias accumulated; dinp and dbias may be NULL.
static Case *matmul_backward(const char *name, int M, int K, int N, int with_dinp, int with_dbias) {
    Case *c = new_case(name, run_matmul_backward);
    c->M = M, c->K = K, c->N = N;
    if (with_dinp)
        out_f(c, "dinp", garbage((size_t)M * K), (size_t)M * K, GEMM);
    else
        null_buf(c, "dinp");
    out_f(c, "dweight", randn((size_t)N * K, 1), (size_t)N * K, GEMM);
    if (with_dbias)
        out_f(c, "dbias", randn(N, 1), N, GEMM);
    else
        null_buf(c, "dbias");
    in_f(c, "dout", randn((size_t)M * N, 1), (size_t)M * N);
    in_f(c, "inp", randn((size_t)M * K, 1), (size_t)M * K);
    in_f(c, "weight", randn((size_t)N * K, 1 / sqrtf((float)K)), (size_t)N * K);
    return c;
}

/* ---- element-wise; c->off shifts every pointer off 16-byte alignment ---- */

static void run_add(const Ops *o, const Case *c) {
    int k = c->off;
    o->add(F(0) + k, F(1) + k, F(2) + k, c->n - k);
}

static void run_add_in_place(const Ops *o, const Case *c) { o->add(F(0), F(0), F(1), c->n); }

static Case *add_case(const char *name, size_t n, int off, int in_place) {
    Case *c = new_case(name, in_place ? run_add_in_place : run_add);
    c->n = n, c->off = off;
    if (in_place) {
        out_f(c, "out=a", randn(n, 1), n, ELEMENTWISE);
    } else {
        out_f(c, "out", garbage(n), n, ELEMENTWISE);
        in_f(c, "a", randn(n, 1), n);
    }
    in_f(c, "b", randn(n, 1), n);
    return c;
}

static void run_add_broadcast(const Ops *o, const Case *c) { o->add_broadcast(F(0), F(1), c->B, c->n); }

static Case *add_broadcast(const char *name, int B, size_t n) {
    Case *c = new_case(name, run_add_broadcast);
    c->B = B, c->n = n;
    out_f(c, "x", randn(B * n, 1), B * n, ELEMENTWISE);
    in_f(c, "row", randn(n, 1), n);
    return c;
}

typedef void (*UnaryFn)(float *, const float *, size_t);
typedef void (*UnaryBackwardFn)(float *, const float *, const float *, size_t);

static void run_unary(const Ops *o, const Case *c) {
    int k = c->off;
    MEMBER(UnaryFn)(F(0) + k, F(1) + k, c->n - k);
}

static Case *unary(const char *name, size_t member, size_t n, int off, Tol tol) {
    Case *c = new_case(name, run_unary);
    c->member = member, c->n = n, c->off = off;
    out_f(c, "out", garbage(n), n, tol);
    in_f(c, "x", randn(n, 3), n);
    return c;
}

static void run_unary_backward(const Ops *o, const Case *c) {
    int k = c->off;
    MEMBER(UnaryBackwardFn)(F(0) + k, F(1) + k, F(2) + k, c->n - k);
}

static void run_unary_backward_in_place(const Ops *o, const Case *c) {
    MEMBER(UnaryBackwardFn)(F(0), F(0), F(1), c->n);
}

// din overwritten, or din aliasing dout.
static Case *unary_backward(const char *name, size_t member, size_t n, int off, int in_place, Tol tol) {
    Case *c = new_case(name, in_place ? run_unary_backward_in_place : run_unary_backward);
    c->member = member, c->n = n, c->off = off;
    if (in_place) {
        out_f(c, "din=dout", randn(n, 1), n, tol);
    } else {
        out_f(c, "din", garbage(n), n, tol);
        in_f(c, "dout", randn(n, 1), n);
    }
    in_f(c, "x", randn(n, 2), n);
    return c;
}

static void run_scale(const Ops *o, const Case *c) { o->scale(F(0) + c->off, c->f1, c->n - c->off); }

static Case *scale_case(const char *name, size_t n, int off) {
    Case *c = new_case(name, run_scale);
    c->n = n, c->off = off, c->f1 = -0.37f;
    out_f(c, "x", randn(n, 1), n, ELEMENTWISE);
    return c;
}

/* ---- embeddings ---- */

static void run_patchify(const Ops *o, const Case *c) { o->patchify(F(0), F(1), c->B, c->C, c->p1, c->p2, c->k); }
static void run_unpatchify_forward(const Ops *o, const Case *c) {
    o->unpatchify_forward(F(0), F(1), c->B, c->C, c->p1, c->p2, c->k);
}
static void run_unpatchify_backward(const Ops *o, const Case *c) {
    o->unpatchify_backward(F(0), F(1), c->B, c->C, c->p1, c->p2, c->k);
}

// which: 0 patchify, 1 unpatchify forward, 2 its backward. Image (B, C, H, W), patch p.
static Case *patches(const char *name, int which, int B, int C, int H, int W, int p) {
    RunFn run[3] = {run_patchify, run_unpatchify_forward, run_unpatchify_backward};
    Case *c = new_case(name, run[which]);
    c->B = B, c->C = C, c->p1 = H, c->p2 = W, c->k = p;
    size_t n = (size_t)B * C * H * W;
    out_f(c, which == 1 ? "img" : which ? "dtokens" : "patches", garbage(n), n, EXACT);
    in_f(c, which == 1 ? "tokens" : which ? "dimg" : "img", randn(n, 1), n);
    return c;
}

static void run_timestep_embedding(const Ops *o, const Case *c) {
    o->timestep_embedding(F(0), F(1), c->B, c->k, c->f1);
}

static Case *timestep_embedding(const char *name, int F) {
    Case *c = new_case(name, run_timestep_embedding);
    static const float t[6] = {0, 1, 250.5f, 999, 500, 17};
    c->B = 6, c->k = F, c->f1 = 10000;
    out_f(c, "out", garbage((size_t)6 * F), (size_t)6 * F, TRANSCENDENTAL);
    in_f(c, "t", dup_bytes(t, sizeof(t)), 6);
    return c;
}

static void run_embedding_forward(const Ops *o, const Case *c) { o->embedding_forward(F(0), F(1), I(2), c->B, c->D); }
static void run_embedding_backward(const Ops *o, const Case *c) { o->embedding_backward(F(0), F(1), I(2), c->B, c->D); }

// Labels with repeats (dtable accumulates them in batch order) and the null class 1000.
static Case *embedding(const char *name, int backward, int D) {
    static const int32_t labels[7] = {5, 1000, 5, 0, 999, 5, 1000};
    Case *c = new_case(name, backward ? run_embedding_backward : run_embedding_forward);
    c->B = 7, c->D = D;
    size_t rows = 1001;
    if (backward) {
        out_f(c, "dtable", randn(rows * D, 1), rows * D, ELEMENTWISE);
        in_f(c, "dout", randn((size_t)7 * D, 1), (size_t)7 * D);
    } else {
        out_f(c, "out", garbage((size_t)7 * D), (size_t)7 * D, EXACT);
        in_f(c, "table", randn(rows * D, 1), rows * D);
    }
    in_i(c, "labels", ints(labels, 7), 7);
    return c;
}

/* ---- DiT block pieces: modulation rows at stride 14 D (2 blocks' 6 D + the final layer's 2 D),
 * shift and scale of the second block's MLP half (offsets 9 D and 10 D) ---- */

static void run_ln_forward(const Ops *o, const Case *c) {
    o->layernorm_modulate_forward(F(0), F(1), F(2), F(3), F(4) + 9 * c->D, F(4) + 10 * c->D, c->stride, c->B, c->T,
                                  c->D);
}

static Case *ln_forward(const char *name, int B, int T, int D) {
    Case *c = new_case(name, run_ln_forward);
    c->B = B, c->T = T, c->D = D, c->stride = 14 * D;
    size_t n = (size_t)B * T * D;
    out_f(c, "out", garbage(n), n, REDUCTION);
    out_f(c, "mean", garbage((size_t)B * T), (size_t)B * T, REDUCTION);
    out_f(c, "rstd", garbage((size_t)B * T), (size_t)B * T, REDUCTION);
    in_f(c, "x", randn_offset(n), n);
    in_f(c, "mod", randn((size_t)B * c->stride, 0.5f), (size_t)B * c->stride);
    return c;
}

static void run_ln_backward(const Ops *o, const Case *c) {
    int D = c->D;
    o->layernorm_modulate_backward(F(0), F(1) + 9 * D, F(1) + 10 * D, F(2), F(3), F(4), F(5), F(6) + 10 * D, c->stride,
                                   c->B, c->T, D);
}

// dx accumulates into the residual stream; dshift and dscale overwrite their columns of dmod and
// leave the others as they were.
static Case *ln_backward(const char *name, int B, int T, int D) {
    Case *c = new_case(name, run_ln_backward);
    c->B = B, c->T = T, c->D = D, c->stride = 14 * D;
    size_t n = (size_t)B * T * D, rows = (size_t)B * T, nmod = (size_t)B * c->stride;
    float *x = randn_offset(n), *mod = randn(nmod, 0.5f), *out = xmalloc(n * sizeof(float));
    float *mean = xmalloc(rows * sizeof(float)), *rstd = xmalloc(rows * sizeof(float));
    ops_cpu.layernorm_modulate_forward(out, mean, rstd, x, mod + 9 * D, mod + 10 * D, c->stride, B, T, D);
    free(out);
    out_f(c, "dx", randn(n, 1), n, REDUCTION);
    out_f(c, "dmod", garbage(nmod), nmod, REDUCTION);
    in_f(c, "dout", randn(n, 1), n);
    in_f(c, "x", x, n);
    in_f(c, "mean", mean, rows);
    in_f(c, "rstd", rstd, rows);
    in_f(c, "mod", mod, nmod);
    return c;
}

// Gates at stride 14 D (offset 8 D: the second block's MLP gate); keep rows (B, L = 3, T) at
// stride 3 T, offset T (block 1).
static void run_gate_forward(const Ops *o, const Case *c) {
    const float *keep = F(4) ? F(4) + c->T : NULL;
    o->gate_residual_forward(F(0), F(1), F(2) + 8 * c->D, F(3), c->stride, keep, 3 * c->T, c->B, c->T, c->D);
}

static void run_gate_forward_in_place(const Ops *o, const Case *c) {
    const float *keep = F(3) ? F(3) + c->T : NULL;
    o->gate_residual_forward(F(0), F(0), F(1) + 8 * c->D, F(2), c->stride, keep, 3 * c->T, c->B, c->T, c->D);
}

static Case *gate_forward(const char *name, int B, int T, int D, int with_keep, int in_place) {
    Case *c = new_case(name, in_place ? run_gate_forward_in_place : run_gate_forward);
    c->B = B, c->T = T, c->D = D, c->stride = 14 * D;
    size_t n = (size_t)B * T * D;
    if (in_place) {
        out_f(c, "out=x", randn(n, 1), n, ELEMENTWISE);
    } else {
        out_f(c, "out", garbage(n), n, ELEMENTWISE);
        in_f(c, "x", randn(n, 1), n);
    }
    in_f(c, "gate", randn((size_t)B * c->stride, 1), (size_t)B * c->stride);
    in_f(c, "branch", randn(n, 1), n);
    if (with_keep)
        in_f(c, "keep", mask01((size_t)B * 3 * T, 0.6), (size_t)B * 3 * T);
    else
        null_buf(c, "keep");
    return c;
}

static void run_gate_backward(const Ops *o, const Case *c) {
    int T = c->T;
    float *dkeep = F(2) ? F(2) + T : NULL;
    const float *keep = F(6) ? F(6) + T : NULL;
    o->gate_residual_backward(F(0), F(1) + 8 * c->D, dkeep, F(3), F(4) + 8 * c->D, F(5), c->stride, keep, 3 * T, c->B,
                              T, c->D);
}

// dbranch and dgate overwritten, dkeep accumulated; keep and dkeep may be NULL.
static Case *gate_backward(const char *name, int B, int T, int D, int with_keep) {
    Case *c = new_case(name, run_gate_backward);
    c->B = B, c->T = T, c->D = D, c->stride = 14 * D;
    size_t n = (size_t)B * T * D, nkeep = (size_t)B * 3 * T, ngate = (size_t)B * c->stride;
    out_f(c, "dbranch", garbage(n), n, ELEMENTWISE);
    out_f(c, "dgate", garbage(ngate), ngate, REDUCTION);
    if (with_keep)
        out_f(c, "dkeep", randn(nkeep, 1), nkeep, REDUCTION);
    else
        null_buf(c, "dkeep");
    in_f(c, "dout", randn(n, 1), n);
    in_f(c, "gate", randn(ngate, 1), ngate);
    in_f(c, "branch", randn(n, 1), n);
    if (with_keep)
        in_f(c, "keep", mask01(nkeep, 0.6), nkeep);
    else
        null_buf(c, "keep");
    return c;
}

static void run_attention_forward(const Ops *o, const Case *c) {
    o->attention_forward(F(0), F(1), F(2), c->B, c->T, c->H, c->k);
}

static Case *attention_forward(const char *name, int B, int T, int H, int hd) {
    Case *c = new_case(name, run_attention_forward);
    c->B = B, c->T = T, c->H = H, c->k = hd;
    size_t n = (size_t)B * T * H * hd, np = (size_t)B * H * T * T;
    out_f(c, "out", garbage(n), n, ATTENTION_FWD);
    out_f(c, "probs", garbage(np), np, ATTENTION_FWD);
    in_f(c, "qkv", randn(3 * n, 1), 3 * n);
    return c;
}

static void run_attention_backward(const Ops *o, const Case *c) {
    o->attention_backward(F(0), F(1), F(2), F(3), F(4), c->B, c->T, c->H, c->k);
}

// dqkv overwritten; probs from the CPU forward of the same qkv; scratch is not compared.
static Case *attention_backward(const char *name, int B, int T, int H, int hd) {
    Case *c = new_case(name, run_attention_backward);
    c->B = B, c->T = T, c->H = H, c->k = hd;
    size_t n = (size_t)B * T * H * hd, np = (size_t)B * H * T * T;
    float *qkv = randn(3 * n, 1), *out = xmalloc(n * sizeof(float)), *probs = xmalloc(np * sizeof(float));
    ops_cpu.attention_forward(out, probs, qkv, B, T, H, hd);
    free(out);
    out_f(c, "dqkv", garbage(3 * n), 3 * n, ATTENTION_BWD);
    add_buf(c, "scratch", garbage(np), np * sizeof(float), 0, EXACT);
    in_f(c, "dout", randn(n, 1), n);
    in_f(c, "qkv", qkv, 3 * n);
    in_f(c, "probs", probs, np);
    return c;
}

/* ---- DyDiT routing ---- */

// Head-router shape: hard masks (rows, cols + 1) written from column 1 (column 0 is always on),
// noise rows at stride cols + 3.
static void run_st_gate_forward(const Ops *o, const Case *c) {
    o->st_gate_forward(F(0) + 1, c->k + 1, F(1), F(2), F(3), c->k + 3, c->R, c->k, c->f1, c->f2);
}

static Case *st_gate_forward(const char *name, int rows, int cols, int with_noise, float threshold) {
    Case *c = new_case(name, run_st_gate_forward);
    c->R = rows, c->k = cols, c->f1 = 5, c->f2 = threshold;
    size_t nh = (size_t)rows * (cols + 1), n = (size_t)rows * cols, nn = (size_t)rows * (cols + 3);
    out_f(c, "hard", garbage(nh), nh, EXACT);
    out_f(c, "soft", garbage(n), n, ACTIVATION);
    in_f(c, "logits", randn(n, 2), n);
    if (with_noise)
        in_f(c, "noise", randn(nn, 1.5f), nn);
    else
        null_buf(c, "noise");
    return c;
}

static void run_st_gate_backward(const Ops *o, const Case *c) {
    o->st_gate_backward(F(0), F(1) + 1, c->k + 1, F(2), c->R, c->k, c->f1);
}

static Case *st_gate_backward(const char *name, int rows, int cols) {
    Case *c = new_case(name, run_st_gate_backward);
    c->R = rows, c->k = cols, c->f1 = 5;
    size_t n = (size_t)rows * cols, nh = (size_t)rows * (cols + 1);
    out_f(c, "dlogits", garbage(n), n, ELEMENTWISE);
    in_f(c, "dhard", randn(nh, 1), nh);
    in_f(c, "soft", uniform01(n), n);
    return c;
}

// Masks (B, L = 3, G) at stride 3 G, offset G (block 1).
static void run_group_mask_forward(const Ops *o, const Case *c) {
    int in_place = c->flag;
    o->group_mask_forward(F(0), in_place ? F(0) : F(1), F(2 - in_place) + c->G, 3 * c->G, c->B, c->T, c->G, c->S);
}

static Case *group_mask_forward(const char *name, int B, int T, int G, int S, int in_place) {
    Case *c = new_case(name, run_group_mask_forward);
    c->B = B, c->T = T, c->G = G, c->S = S, c->flag = in_place;
    size_t n = (size_t)B * T * G * S;
    if (in_place) {
        out_f(c, "out=x", randn(n, 1), n, ELEMENTWISE);
    } else {
        out_f(c, "out", garbage(n), n, ELEMENTWISE);
        in_f(c, "x", randn(n, 1), n);
    }
    in_f(c, "mask", mask01((size_t)B * 3 * G, 0.5), (size_t)B * 3 * G);
    return c;
}

static void run_group_mask_backward(const Ops *o, const Case *c) {
    int in_place = c->flag, G = c->G;
    float *dx = F(0), *dmask = F(1) ? F(1) + G : NULL;
    const float *dout = in_place ? dx : F(2), *x = F(3 - in_place), *mask = F(4 - in_place) + G;
    o->group_mask_backward(dx, dmask, dout, x, mask, 3 * G, c->B, c->T, G, c->S);
}

// dx overwritten (or aliasing dout), dmask accumulated or NULL.
static Case *group_mask_backward(const char *name, int B, int T, int G, int S, int in_place, int with_dmask) {
    Case *c = new_case(name, run_group_mask_backward);
    c->B = B, c->T = T, c->G = G, c->S = S, c->flag = in_place;
    size_t n = (size_t)B * T * G * S, nm = (size_t)B * 3 * G;
    if (in_place)
        out_f(c, "dx=dout", randn(n, 1), n, ELEMENTWISE);
    else
        out_f(c, "dx", garbage(n), n, ELEMENTWISE);
    if (with_dmask)
        out_f(c, "dmask", randn(nm, 1), nm, REDUCTION);
    else
        null_buf(c, "dmask");
    if (!in_place) in_f(c, "dout", randn(n, 1), n);
    in_f(c, "x", randn(n, 1), n);
    in_f(c, "mask", mask01(nm, 0.5), nm);
    return c;
}

static void run_flops_forward(const Ops *o, const Case *c) {
    o->flops_ratio_forward(F(0), F(1), F(2), F(3), c->B, c->L, c->H, c->T, c->f1, c->f2);
}

static void run_flops_backward(const Ops *o, const Case *c) {
    o->flops_ratio_backward(F(0), F(1), F(2), F(3), F(4), F(5), c->B, c->L, c->H, c->T, c->f1, c->f2);
}

// Masks head, chan (B, L, H) and keep (B, L, T); attn and mlp MACs of a DiT-XL block at T tokens.
static Case *flops_ratio(const char *name, int backward, int B, int L, int H, int T) {
    Case *c = new_case(name, backward ? run_flops_backward : run_flops_forward);
    c->B = B, c->L = L, c->H = H, c->T = T;
    c->f1 = 4.0f * T * 1152 * 1152 + 2.0f * T * T * 1152, c->f2 = 8.0f * T * 1152 * 1152;
    size_t nh = (size_t)B * L * H, nt = (size_t)B * L * T;
    if (backward) {
        out_f(c, "dhead", randn(nh, 1), nh, ELEMENTWISE);
        out_f(c, "dchan", randn(nh, 1), nh, ELEMENTWISE);
        out_f(c, "dkeep", randn(nt, 1), nt, ELEMENTWISE);
        in_f(c, "dratio", randn(B, 1), B);
    } else {
        out_f(c, "ratio", garbage(B), B, ELEMENTWISE);
        in_f(c, "head", mask01(nh, 0.7), nh);
    }
    in_f(c, "chan", mask01(nh, 0.6), nh);
    in_f(c, "keep", mask01(nt, 0.5), nt);
    return c;
}

// coef (B, COEF_COUNT) of DiT's linear 1000-step schedule at timesteps t (B).
static float *coefs(const int32_t *t, int B) {
    DiffusionSchedule s = diffusion_schedule_linear(1000);
    float *coef = xmalloc(sizeof(float) * B * COEF_COUNT);
    diffusion_gather_coefs(&s, t, B, coef);
    diffusion_schedule_free(&s);
    return coef;
}

/* ---- diffusion objective and sampling: timesteps 0 (the decoder NLL, the last sampling step),
 * 1, 500 and 999 ---- */

static const int32_t loss_t[4] = {0, 1, 500, 999};

static void run_q_sample(const Ops *o, const Case *c) { o->q_sample(F(0), F(1), F(2), F(3), c->B, c->n); }

static Case *q_sample(const char *name, size_t n) {
    Case *c = new_case(name, run_q_sample);
    c->B = 4, c->n = n;
    out_f(c, "xt", garbage(4 * n), 4 * n, ELEMENTWISE);
    in_f(c, "x0", randn(4 * n, 1), 4 * n);
    in_f(c, "noise", randn(4 * n, 1), 4 * n);
    in_f(c, "coef", coefs(loss_t, 4), 4 * COEF_COUNT);
    return c;
}

static void run_loss_forward(const Ops *o, const Case *c) {
    o->diffusion_loss_forward(F(0), F(1), F(2), F(3), F(4), F(5), F(6), c->B, c->C, c->n, c->flag);
}

static void run_loss_backward(const Ops *o, const Case *c) {
    o->diffusion_loss_backward(F(0), F(1), F(2), F(3), F(4), F(5), F(6), c->B, c->C, c->n, c->flag);
}

// x0 partly outside [-1, 1] (the decoder NLL's edge bins); xt = q_sample(x0, noise).
static Case *diffusion_loss(const char *name, int backward, int C, size_t n, int learn_sigma) {
    Case *c = new_case(name, backward ? run_loss_backward : run_loss_forward);
    int B = 4, Cout = learn_sigma ? 2 * C : C;
    c->B = B, c->C = C, c->n = n, c->flag = learn_sigma;
    size_t ns = (size_t)B * C * n, no = (size_t)B * Cout * n;
    float *x0 = randn(ns, 0.7f), *noise = randn(ns, 1), *coef = coefs(loss_t, B), *xt = xmalloc(ns * sizeof(float));
    ops_cpu.q_sample(xt, x0, noise, coef, B, (size_t)C * n);
    if (backward) {
        out_f(c, "dmodel_out", garbage(no), no, TRANSCENDENTAL);
        static const float dloss[4] = {0.25f, 0.5f, -0.3f, 1.0f};
        in_f(c, "dloss", dup_bytes(dloss, sizeof(dloss)), B);
    } else {
        out_f(c, "mse", garbage(B), B, REDUCTION);
        out_f(c, "vb", garbage(B), B, TRANSCENDENTAL);
    }
    in_f(c, "model_out", randn(no, 0.6f), no);
    in_f(c, "x0", x0, ns);
    in_f(c, "xt", xt, ns);
    in_f(c, "noise", noise, ns);
    in_f(c, "coef", coef, (size_t)B * COEF_COUNT);
    return c;
}

static void run_cfg_combine(const Ops *o, const Case *c) { o->cfg_combine(F(0), c->B, c->C, c->n, 3, c->f1); }

static Case *cfg_combine(const char *name, int n, int C_out, size_t hw) {
    Case *c = new_case(name, run_cfg_combine);
    c->B = n, c->C = C_out, c->n = hw, c->f1 = 4.0f;
    size_t total = 2 * (size_t)n * C_out * hw;
    out_f(c, "model_out", randn(total, 1), total, ELEMENTWISE);
    return c;
}

// flag: learn_sigma; p1: clip; p2: DDIM; p3: x_prev aliases x; f1: eta. Without noise (DDIM eta 0)
// the noise pointer is NULL.
static void run_sampling_step(const Ops *o, const Case *c) {
    int in_place = c->p3;
    float *x_prev = F(0);
    const float *x = in_place ? x_prev : F(1), *model_out = F(2 - in_place), *noise = F(3 - in_place),
                *coef = F(4 - in_place);
    if (c->p2)
        o->ddim_step(x_prev, x, model_out, noise, coef, c->B, c->C, c->n, c->flag, c->p1, c->f1);
    else
        o->ddpm_step(x_prev, x, model_out, noise, coef, c->B, c->C, c->n, c->flag, c->p1);
}

static Case *sampling_step(const char *name, int ddim, float eta, int learn_sigma, int clip, int in_place) {
    Case *c = new_case(name, run_sampling_step);
    int B = 4, C = 4, Cout = learn_sigma ? 8 : 4;
    size_t hw = 16 * 16 + 5, ns = (size_t)B * C * hw, no = (size_t)B * Cout * hw;
    c->B = B, c->C = C, c->n = hw, c->flag = learn_sigma, c->p1 = clip, c->p2 = ddim, c->p3 = in_place, c->f1 = eta;
    if (in_place) {
        out_f(c, "x_prev=x", randn(ns, 1.2f), ns, TRANSCENDENTAL);
    } else {
        out_f(c, "x_prev", garbage(ns), ns, TRANSCENDENTAL);
        in_f(c, "x", randn(ns, 1.2f), ns);
    }
    in_f(c, "model_out", randn(no, 0.6f), no);
    if (ddim && eta == 0)
        null_buf(c, "noise");
    else
        in_f(c, "noise", randn(ns, 1), ns);
    in_f(c, "coef", coefs(loss_t, B), (size_t)B * COEF_COUNT);
    return c;
}

/* ---- DyDiT inference ---- */

static void run_gather_blocks(const Ops *o, const Case *c) {
    o->gather_blocks(F(0), F(1), I(2), c->R, c->G, c->S, c->k);
}

static Case *gather_blocks(const char *name, int R, int G, int S, const int32_t *blocks, int k) {
    Case *c = new_case(name, run_gather_blocks);
    c->R = R, c->G = G, c->S = S, c->k = k;
    size_t no = (size_t)R * k * S, ni = (size_t)R * G * S;
    out_f(c, "out", garbage(no), no, EXACT);
    in_f(c, "in", randn(ni, 1), ni);
    in_i(c, "blocks", ints(blocks, k), k);
    return c;
}

// Kept rows of (B = 3, T): every third row or so, distinct and increasing.
static int32_t *kept_rows(int B, int T, int *K) {
    int32_t *rows = xmalloc(sizeof(int32_t) * B * T);
    int k = 0;
    for (int r = 0; r < B * T; r++)
        if (rng_u32(8, RNG_DATA, 0, 0, r) % 3 == 0) rows[k++] = r;
    *K = k;
    return rows;
}

static void run_gather_ln(const Ops *o, const Case *c) {
    o->gather_layernorm_modulate(F(0), F(1), I(2), F(3) + 9 * c->D, F(3) + 10 * c->D, c->stride, c->T, c->K, c->D);
}

static Case *gather_layernorm_modulate(const char *name, int B, int T, int D) {
    Case *c = new_case(name, run_gather_ln);
    int K;
    int32_t *rows = kept_rows(B, T, &K);
    c->B = B, c->T = T, c->D = D, c->K = K, c->stride = 14 * D;
    out_f(c, "out", garbage((size_t)K * D), (size_t)K * D, REDUCTION);
    in_f(c, "x", randn_offset((size_t)B * T * D), (size_t)B * T * D);
    in_i(c, "rows", rows, K);
    in_f(c, "mod", randn((size_t)B * c->stride, 0.5f), (size_t)B * c->stride);
    return c;
}

static void run_gate_scatter_add(const Ops *o, const Case *c) {
    o->gate_scatter_add(F(0), F(1), I(2), F(3) + 11 * c->D, c->stride, c->T, c->K, c->D);
}

static Case *gate_scatter_add(const char *name, int B, int T, int D) {
    Case *c = new_case(name, run_gate_scatter_add);
    int K;
    int32_t *rows = kept_rows(B, T, &K);
    c->B = B, c->T = T, c->D = D, c->K = K, c->stride = 14 * D;
    out_f(c, "x", randn((size_t)B * T * D, 1), (size_t)B * T * D, ELEMENTWISE);
    in_f(c, "branch", randn((size_t)K * D, 1), (size_t)K * D);
    in_i(c, "rows", rows, K);
    in_f(c, "gate", randn((size_t)B * c->stride, 1), (size_t)B * c->stride);
    return c;
}

/* ---- randomness: Philox streams bit for bit ---- */

typedef void (*RandomFn)(float *, uint64_t, uint32_t, uint32_t, uint32_t, int, size_t);

static void run_random(const Ops *o, const Case *c) {
    MEMBER(RandomFn)(F(0), c->seed, c->u1, c->u2, c->u3, c->B, c->n);
}

static Case *random_case(const char *name, size_t member, uint64_t seed, uint32_t step, uint32_t sample0, int B,
                         size_t n) {
    Case *c = new_case(name, run_random);
    c->member = member, c->seed = seed, c->u1 = RNG_NOISE, c->u2 = step, c->u3 = sample0, c->B = B, c->n = n;
    out_f(c, "out", garbage(B * n), B * n, EXACT);
    return c;
}

/* ---- optimisation ---- */

static void run_adamw(const Ops *o, const Case *c) {
    o->adamw_update(F(0), F(1), F(2), F(3), c->n, c->d1, c->d2, c->d3, c->d4, c->d5, c->step);
}

// Moments from earlier steps: m ~ gradients' scale, v their squares' (positive).
static Case *adamw(const char *name, size_t n, long step, double weight_decay) {
    Case *c = new_case(name, run_adamw);
    c->n = n, c->d1 = 1e-4, c->d2 = 0.9, c->d3 = 0.999, c->d4 = 1e-8, c->d5 = weight_decay, c->step = step;
    float *v = randn(n, 1e-2f);
    for (size_t i = 0; i < n; i++) v[i] = v[i] * v[i];
    out_f(c, "param", randn(n, 0.05f), n, ELEMENTWISE);
    in_f(c, "grad", randn(n, 1e-2f), n);
    out_f(c, "m", randn(n, 1e-2f), n, ELEMENTWISE);
    out_f(c, "v", v, n, ELEMENTWISE);
    return c;
}

static void run_ema(const Ops *o, const Case *c) { o->ema_update(F(0), F(1), c->n, c->d1); }

static Case *ema(const char *name, size_t n) {
    Case *c = new_case(name, run_ema);
    c->n = n, c->d1 = 0.9999;
    out_f(c, "ema", randn(n, 0.05f), n, ELEMENTWISE);
    in_f(c, "param", randn(n, 0.05f), n);
    return c;
}

/* ---- checks outside the case pattern ---- */

// sum_squares writes a host double; it must match the CPU's double sum up to the order of the
// double additions (1e-12), and repeat bit for bit.
static void test_sum_squares(const char *name, size_t n, int off) {
    float *x = randn(n, 1);
    double cpu, gpu[2];
    ops_cpu.sum_squares(&cpu, x + off, n - off);
    float *dev = gpu_from_host(x, n * sizeof(float));
    for (int r = 0; r < 2; r++) {
        gpu[r] = -1;
        ops_cuda.sum_squares(&gpu[r], dev + off, n - off);
    }
    double rel = fabs(gpu[0] - cpu) / cpu;
    char label[128];
    snprintf(label, sizeof(label), "cuda.%s.result", name);
    check(rel <= 1e-12, label, "gpu %.17g cpu %.17g rel %.2e", gpu[0], cpu, rel);
    snprintf(label, sizeof(label), "cuda.%s.deterministic", name);
    check_true(memcmp(&gpu[0], &gpu[1], sizeof(double)) == 0, label);
    ops_cuda.release(dev);
    free(x);
}

// alloc zero-fills; upload and download round-trip odd byte counts; copy and zero touch exactly
// their byte range.
static void test_memory(void) {
    size_t n = 100003, bytes = n * sizeof(float);
    float *fresh = ops_cuda.alloc(bytes), *zeros = xcalloc(n, sizeof(float));
    float *got = host_from_gpu(fresh, bytes);
    check_true(memcmp(got, zeros, bytes) == 0, "cuda.memory.alloc_zero_filled");
    free(got);

    float *x = garbage(n), sentinel = 123;
    ops_cuda.upload(fresh, x, bytes - 3);
    got = garbage(n);
    got[n - 1] = sentinel;
    ops_cuda.download(got, fresh, bytes - 3);
    check_true(memcmp(got, x, bytes - 3) == 0 && memcmp((char *)got + bytes - 3, (char *)&sentinel + 1, 3) == 0,
               "cuda.memory.upload_download_odd_bytes");
    free(got);

    float *y = randn(n, 1), *dev = gpu_from_host(y, bytes);
    ops_cuda.copy(dev + 1, fresh + 2, 4 * 1001 + 2); // an unaligned span of 1001.5 floats
    ops_cuda.zero(dev + 5000, 4 * 777);
    float *want = xmalloc(bytes);
    memcpy(want, y, bytes);
    memcpy(want + 1, x + 2, 4 * 1001 + 2);
    memset(want + 5000, 0, 4 * 777);
    got = host_from_gpu(dev, bytes);
    check_true(memcmp(got, want, bytes) == 0, "cuda.memory.copy_zero_ranges");
    ops_cuda.synchronize();
    ops_cuda.release(dev), ops_cuda.release(fresh);
    free(got), free(want), free(x), free(y), free(zeros);
}

// The harness itself: one row in 8192 scaled by 1.5 stays within the norm-wise bf16 GEMM bound but
// must fail the worst-element bound of every compared output.
static void test_one_bad_row_fails(void) {
    size_t rows = 8192, cols = 64, n = rows * cols;
    float *cpu = randn(n, 1), *gpu = dup_bytes(cpu, n * sizeof(float));
    for (size_t j = 0; j < cols; j++) gpu[4321 * cols + j] *= 1.5f;
    double rel = rel_error(gpu, cpu, n), worst = worst_element_error(gpu, cpu, n);
    check(rel <= GEMM.bf16 && worst > WORST_ELEMENT_FACTOR * GEMM.bf16, "cuda.harness.one_bad_row_fails",
          "norm-wise %.2e (within %.0e), worst element %.2e of the RMS (beyond %.0e)", rel, GEMM.bf16, worst,
          WORST_ELEMENT_FACTOR * GEMM.bf16);
    free(cpu), free(gpu);
}

static void build_cases(void) {
    add(matmul_forward("matmul_forward.37x53x29", 37, 53, 29, 1));
    add(matmul_forward("matmul_forward.37x53x29_no_bias", 37, 53, 29, 0));
    add(matmul_forward("matmul_forward.771x96x288", 771, 96, 288, 1));
    add(matmul_forward("matmul_forward.512x1152x3456", 512, 1152, 3456, 1));
    add(matmul_backward("matmul_backward.37x53x29", 37, 53, 29, 1, 1));
    add(matmul_backward("matmul_backward.37x53x29_null_dinp_dbias", 37, 53, 29, 0, 0));
    add(matmul_backward("matmul_backward.771x96x288", 771, 96, 288, 1, 1));
    add(matmul_backward("matmul_backward.512x1152x3456", 512, 1152, 3456, 1, 1));

    add(add_case("add", 100003, 0, 0));
    add(add_case("add.unaligned", 100003, 1, 0));
    add(add_case("add.in_place", 100003, 0, 1));
    add(add_broadcast("add_broadcast", 3, 1152 * 3 + 1));
    struct {
        const char *name;
        size_t fwd, bwd;
        Tol tol;
    } unaries[3] = {{"silu", offsetof(Ops, silu_forward), offsetof(Ops, silu_backward), ACTIVATION},
                    {"gelu", offsetof(Ops, gelu_forward), offsetof(Ops, gelu_backward), ACTIVATION},
                    {"relu", offsetof(Ops, relu_forward), offsetof(Ops, relu_backward), ELEMENTWISE}};
    for (int i = 0; i < 3; i++) {
        const char *op = unaries[i].name;
        size_t fwd = unaries[i].fwd, bwd = unaries[i].bwd;
        Tol tol = unaries[i].tol;
        add(unary(xasprintf("%s_forward", op), fwd, 100003, 0, tol));
        add(unary(xasprintf("%s_forward.unaligned", op), fwd, 100003, 1, tol));
        add(unary_backward(xasprintf("%s_backward", op), bwd, 100003, 0, 0, tol));
        add(unary_backward(xasprintf("%s_backward.unaligned", op), bwd, 100003, 1, 0, tol));
        add(unary_backward(xasprintf("%s_backward.in_place", op), bwd, 100003, 0, 1, tol));
    }
    add(scale_case("scale", 100003, 0));
    add(scale_case("scale.unaligned", 100003, 1));

    add(patches("patchify.3x4x32x32_p2", 0, 3, 4, 32, 32, 2));
    add(patches("patchify.2x3x18x18_p2", 0, 2, 3, 18, 18, 2));
    add(patches("unpatchify_forward.3x8x32x32_p2", 1, 3, 8, 32, 32, 2));
    add(patches("unpatchify_forward.2x6x24x24_p4", 1, 2, 6, 24, 24, 4));
    add(patches("unpatchify_backward.3x8x32x32_p2", 2, 3, 8, 32, 32, 2));
    add(patches("unpatchify_backward.2x6x18x18_p2", 2, 2, 6, 18, 18, 2));
    add(timestep_embedding("timestep_embedding.256", 256));
    add(timestep_embedding("timestep_embedding.34", 34));
    add(embedding("embedding_forward.1152", 0, 1152));
    add(embedding("embedding_forward.96", 0, 96));
    add(embedding("embedding_backward.1152", 1, 1152));
    add(embedding("embedding_backward.96", 1, 96));

    add(ln_forward("layernorm_modulate_forward.3x257x1152", 3, 257, 1152));
    add(ln_forward("layernorm_modulate_forward.3x37x96", 3, 37, 96));
    add(ln_backward("layernorm_modulate_backward.3x257x1152", 3, 257, 1152));
    add(ln_backward("layernorm_modulate_backward.3x37x96", 3, 37, 96));
    // rows whose cache outgrows the default 48 KiB of shared memory: the kernels opt in to more
    add(ln_forward("layernorm_modulate_forward.1x3x12800_shared_opt_in", 1, 3, 12800));
    add(ln_backward("layernorm_modulate_backward.1x3x6400_shared_opt_in", 1, 3, 6400));
    add(gate_forward("gate_residual_forward.3x257x1152_keep", 3, 257, 1152, 1, 0));
    add(gate_forward("gate_residual_forward.3x37x96_no_keep", 3, 37, 96, 0, 0));
    add(gate_forward("gate_residual_forward.3x37x96_in_place", 3, 37, 96, 1, 1));
    add(gate_backward("gate_residual_backward.3x257x1152_keep", 3, 257, 1152, 1));
    add(gate_backward("gate_residual_backward.3x37x96_keep", 3, 37, 96, 1));
    add(gate_backward("gate_residual_backward.3x37x96_no_keep", 3, 37, 96, 0));
    add(attention_forward("attention_forward.3x37x2x72", 3, 37, 2, 72));
    add(attention_forward("attention_forward.3x37x3x64", 3, 37, 3, 64));
    add(attention_forward("attention_forward.2x256x16x72", 2, 256, 16, 72));
    add(attention_forward("attention_forward.3x257x6x64", 3, 257, 6, 64));
    add(attention_forward("attention_forward.3x16x2x48", 3, 16, 2, 48));
    add(attention_backward("attention_backward.3x37x2x72", 3, 37, 2, 72));
    add(attention_backward("attention_backward.3x37x3x64", 3, 37, 3, 64));
    add(attention_backward("attention_backward.2x256x16x72", 2, 256, 16, 72));
    add(attention_backward("attention_backward.3x257x6x64", 3, 257, 6, 64));
    add(attention_backward("attention_backward.3x16x2x48", 3, 16, 2, 48));

    add(st_gate_forward("st_gate_forward.heads_noise", 3 * 28, 15, 1, 0));
    add(st_gate_forward("st_gate_forward.heads_no_noise", 3 * 28, 15, 0, 0.5f));
    add(st_gate_forward("st_gate_forward.tokens", 3 * 257, 1, 1, 0));
    add(st_gate_backward("st_gate_backward.heads", 3 * 28, 15));
    add(st_gate_backward("st_gate_backward.tokens", 3 * 257, 1));
    add(group_mask_forward("group_mask_forward.heads_3x257x16x72", 3, 257, 16, 72, 0));
    add(group_mask_forward("group_mask_forward.groups_3x37x2x192_in_place", 3, 37, 2, 192, 1));
    add(group_mask_backward("group_mask_backward.heads_3x257x16x72", 3, 257, 16, 72, 0, 1));
    add(group_mask_backward("group_mask_backward.3x37x2x192_in_place", 3, 37, 2, 192, 1, 1));
    add(group_mask_backward("group_mask_backward.3x37x2x48_null_dmask", 3, 37, 2, 48, 0, 0));
    add(flops_ratio("flops_ratio_forward.3x28x16x256", 0, 3, 28, 16, 256));
    add(flops_ratio("flops_ratio_forward.5x2x2x16", 0, 5, 2, 2, 16));
    add(flops_ratio("flops_ratio_backward.3x28x16x256", 1, 3, 28, 16, 256));
    add(flops_ratio("flops_ratio_backward.5x2x2x16", 1, 5, 2, 2, 16));

    add(q_sample("q_sample.4x4x32x32", 4 * 32 * 32));
    add(q_sample("q_sample.odd", 4 * 9 * 9));
    for (int learn = 0; learn < 2; learn++)
        for (int bwd = 0; bwd < 2; bwd++) {
            const char *what = bwd ? "diffusion_loss_backward" : "diffusion_loss_forward";
            const char *sigma = learn ? "learn_sigma" : "fixed_sigma";
            add(diffusion_loss(xasprintf("%s.4x32x32_%s", what, sigma), bwd, 4, 32 * 32, learn));
            add(diffusion_loss(xasprintf("%s.4x9x9_%s", what, sigma), bwd, 4, 9 * 9, learn));
        }
    add(cfg_combine("cfg_combine.3x8x1024", 3, 8, 1024));
    add(cfg_combine("cfg_combine.2x4x81", 2, 4, 81));
    add(sampling_step("ddpm_step.learn_sigma", 0, 0, 1, 0, 0));
    add(sampling_step("ddpm_step.fixed_sigma_clip", 0, 0, 0, 1, 0));
    add(sampling_step("ddpm_step.in_place", 0, 0, 1, 0, 1));
    add(sampling_step("ddim_step.eta0_null_noise", 1, 0, 1, 0, 0));
    add(sampling_step("ddim_step.eta1_clip", 1, 1, 0, 1, 0));
    add(sampling_step("ddim_step.in_place", 1, 0.5f, 1, 0, 1));

    static const int32_t heads[5] = {0, 3, 7, 8, 15}, groups[2] = {0, 2}, row_blocks[3] = {1, 4, 6};
    add(gather_blocks("gather_blocks.qkv_rows_1152x16x72", 1152, 16, 72, heads, 5));
    add(gather_blocks("gather_blocks.fc1_37x3x32", 37, 3, 32, groups, 2));
    add(gather_blocks("gather_blocks.row_blocks", 1, 7, 1152 * 3, row_blocks, 3));
    add(gather_layernorm_modulate("gather_layernorm_modulate.3x257x1152", 3, 257, 1152));
    add(gather_layernorm_modulate("gather_layernorm_modulate.3x37x96", 3, 37, 96));
    add(gate_scatter_add("gate_scatter_add.3x257x1152", 3, 257, 1152));
    add(gate_scatter_add("gate_scatter_add.3x37x96", 3, 37, 96));

    add(random_case("randn.3x100003", offsetof(Ops, randn), 0x123456789abcdefULL, 7, 11, 3, 100003));
    add(random_case("randn.5x37", offsetof(Ops, randn), 1, 0, 0, 5, 37));
    add(random_case("rand_logistic.3x100003", offsetof(Ops, rand_logistic), 0xfedcba987654321ULL, 3, 5, 3, 100003));
    add(random_case("rand_logistic.5x37", offsetof(Ops, rand_logistic), 2, 1, 1, 5, 37));

    add(adamw("adamw_update.step1", 100003, 1, 0.0));
    add(adamw("adamw_update.step1000_weight_decay", 100003, 1000, 0.01));
    add(ema("ema_update", 100003));
}

int main(void) {
    gpu_init();
    test_one_bad_row_fails();
    build_cases();
    run_cases();
    test_sum_squares("sum_squares.1000003", 1000003, 0);
    test_sum_squares("sum_squares.unaligned_7", 8, 1);
    test_memory();
    return check_exit();
}
