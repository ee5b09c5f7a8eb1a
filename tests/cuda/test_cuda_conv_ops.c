// tests/cuda/test_cuda_conv_ops.c: the SD VAE's ops of ops_cuda (conv2d, group_norm,
// upsample_nearest2x, transpose, clamp) against their CPU twins (checked against double loops by
// tests/test_conv.c), in both precisions, through the harness of tests/cuda/op_case.h: the VAE's
// layer shapes (stride-2 down-sampling with asymmetric padding, 1x1 shortcuts, 128 channels at
// 64x64) and odd ones.
#include "tests/cuda/op_case.h"

static void run_conv2d(const Ops *o, const Case *c) {
    o->conv2d_forward(F(0), F(1), F(2), F(3), c->B, c->C, c->p1, c->p2, c->N, c->k, c->stride, c->p3, c->p4, c->M,
                      c->K);
}

// x (B, Ci, H, W), weight (Co, Ci, k, k), padding top, left, bottom, right.
static Case *conv2d(const char *name, int B, int Ci, int H, int W, int Co, int k, int stride, int pt, int pl, int pb,
                    int pr, int bias) {
    Case *c = new_case(name, run_conv2d);
    c->B = B, c->C = Ci, c->p1 = H, c->p2 = W, c->N = Co, c->k = k, c->stride = stride;
    c->p3 = pt, c->p4 = pl, c->M = pb, c->K = pr;
    int Ho = (H + pt + pb - k) / stride + 1, Wo = (W + pl + pr - k) / stride + 1;
    size_t no = (size_t)B * Co * Ho * Wo, nx = (size_t)B * Ci * H * W, nw = (size_t)Co * Ci * k * k;
    out_f(c, "out", garbage(no), no, CONV);
    in_f(c, "x", randn(nx, 1), nx);
    in_f(c, "weight", randn(nw, 1 / sqrtf((float)Ci * k * k)), nw);
    if (bias)
        in_f(c, "bias", randn(Co, 1), Co);
    else
        null_buf(c, "bias");
    return c;
}

static void run_group_norm(const Ops *o, const Case *c) {
    int in_place = c->p1;
    o->group_norm_forward(F(0), in_place ? F(0) : F(1), F(2 - in_place), F(3 - in_place), c->B, c->C, c->n, c->G, 1e-6f,
                          c->flag);
}

static Case *group_norm(const char *name, int B, int C, size_t n, int groups, int silu, int in_place) {
    Case *c = new_case(name, run_group_norm);
    c->B = B, c->C = C, c->n = n, c->G = groups, c->flag = silu, c->p1 = in_place;
    size_t nx = (size_t)B * C * n;
    if (in_place) {
        out_f(c, "out=x", randn_offset(nx), nx, REDUCTION);
    } else {
        out_f(c, "out", garbage(nx), nx, REDUCTION);
        in_f(c, "x", randn_offset(nx), nx);
    }
    float *gamma = randn(C, 0.1f);
    for (int i = 0; i < C; i++) gamma[i] += 1;
    in_f(c, "gamma", gamma, C);
    in_f(c, "beta", randn(C, 0.1f), C);
    return c;
}

static void run_upsample(const Ops *o, const Case *c) { o->upsample_nearest2x(F(0), F(1), c->B, c->C, c->p1, c->p2); }

static Case *upsample(const char *name, int B, int C, int H, int W) {
    Case *c = new_case(name, run_upsample);
    c->B = B, c->C = C, c->p1 = H, c->p2 = W;
    size_t n = (size_t)B * C * H * W;
    out_f(c, "out", garbage(4 * n), 4 * n, EXACT);
    in_f(c, "x", randn(n, 1), n);
    return c;
}

static void run_transpose(const Ops *o, const Case *c) { o->transpose(F(0), F(1), c->B, c->M, c->N); }

static Case *transpose(const char *name, int B, int rows, int cols) {
    Case *c = new_case(name, run_transpose);
    c->B = B, c->M = rows, c->N = cols;
    size_t n = (size_t)B * rows * cols;
    out_f(c, "out", garbage(n), n, EXACT);
    in_f(c, "x", randn(n, 1), n);
    return c;
}

static void run_clamp(const Ops *o, const Case *c) { o->clamp(F(0), c->flag ? F(0) : F(1), c->f1, c->f2, c->n); }

static Case *clamp_case(const char *name, size_t n, int in_place) {
    Case *c = new_case(name, run_clamp);
    c->n = n, c->flag = in_place, c->f1 = -30, c->f2 = 20;
    if (in_place) {
        out_f(c, "out=x", randn(n, 25), n, EXACT);
    } else {
        out_f(c, "out", garbage(n), n, EXACT);
        in_f(c, "x", randn(n, 25), n);
    }
    return c;
}

static void build_cases(void) {
    add(conv2d("conv2d.2x3x17x17_to16_k3", 2, 3, 17, 17, 16, 3, 1, 1, 1, 1, 1, 1));
    add(conv2d("conv2d.2x32x16x16_down_s2", 2, 32, 16, 16, 32, 3, 2, 0, 0, 1, 1, 1));
    add(conv2d("conv2d.2x8x9x11_1x1_no_bias", 2, 8, 9, 11, 8, 1, 1, 0, 0, 0, 0, 0));
    add(conv2d("conv2d.1x128x64x64_to128_k3", 1, 128, 64, 64, 128, 3, 1, 1, 1, 1, 1, 1));
    add(conv2d("conv2d.1x512x32x32_to4_k3", 1, 512, 32, 32, 4, 3, 1, 1, 1, 1, 1, 1));
    add(group_norm("group_norm.2x64x289_silu", 2, 64, 17 * 17, 32, 1, 0));
    add(group_norm("group_norm.2x96x81", 2, 96, 81, 8, 0, 0));
    add(group_norm("group_norm.1x128x4096_in_place", 1, 128, 64 * 64, 32, 1, 1));
    add(upsample("upsample_nearest2x.2x16x9x7", 2, 16, 9, 7));
    add(transpose("transpose.2x37x129", 2, 37, 129));
    add(transpose("transpose.1x512x1024", 1, 512, 1024));
    add(clamp_case("clamp", 100003, 0));
    add(clamp_case("clamp.in_place", 100003, 1));
}

int main(void) {
    gpu_init();
    build_cases();
    run_cases();
    return check_exit();
}
