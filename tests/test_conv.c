// tests/test_conv.c: the SD VAE's ops of the CPU backend (conv2d, group_norm, upsample_nearest2x,
// transpose, clamp) against straightforward double-precision loops.
#include <omp.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "tests/fd.h"

static float *randn_new(size_t n, float stddev, uint32_t stream) {
    float *x = malloc(n * sizeof(float));
    fill_normal(x, n, stddev, stream);
    return x;
}

// ||got - want|| / ||want|| with the reference in double.
static double rel_error_f64(const float *got, const double *want, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (got[i] - want[i]) * (got[i] - want[i]);
        den += want[i] * want[i];
    }
    return sqrt(num) / (den > 0 ? sqrt(den) : 1);
}

// ---- conv2d ----
typedef struct {
    const char *name;
    int B, Ci, H, W, Co, k, stride, pt, pl, pb, pr, bias;
} ConvCase;

static void conv2d_reference(double *out, const float *x, const float *w, const float *bias, const ConvCase *c, int Ho,
                             int Wo) {
    for (int b = 0; b < c->B; b++)
        for (int co = 0; co < c->Co; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double s = bias ? bias[co] : 0.0;
                    for (int ci = 0; ci < c->Ci; ci++)
                        for (int ky = 0; ky < c->k; ky++)
                            for (int kx = 0; kx < c->k; kx++) {
                                int iy = oy * c->stride - c->pt + ky, ix = ox * c->stride - c->pl + kx;
                                if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W) continue;
                                s += (double)x[(((size_t)b * c->Ci + ci) * c->H + iy) * c->W + ix] *
                                     w[(((size_t)co * c->Ci + ci) * c->k + ky) * c->k + kx];
                            }
                    out[(((size_t)b * c->Co + co) * Ho + oy) * Wo + ox] = s;
                }
}

static void conv2d_run(float *out, const float *x, const float *w, const float *bias, const ConvCase *c) {
    cpu_conv2d_forward(out, x, w, bias, c->B, c->Ci, c->H, c->W, c->Co, c->k, c->stride, c->pt, c->pl, c->pb, c->pr);
}

static void test_conv2d(const ConvCase *c) {
    int Ho = (c->H + c->pt + c->pb - c->k) / c->stride + 1, Wo = (c->W + c->pl + c->pr - c->k) / c->stride + 1;
    size_t nx = (size_t)c->B * c->Ci * c->H * c->W, nw = (size_t)c->Co * c->Ci * c->k * c->k,
           no = (size_t)c->B * c->Co * Ho * Wo;
    float *x = randn_new(nx, 1, 1), *w = randn_new(nw, 0.2f, 2), *bias = c->bias ? randn_new(c->Co, 1, 3) : NULL;
    float *out = malloc(no * sizeof(float));
    double *want = malloc(no * sizeof(double));
    for (size_t i = 0; i < no; i++) out[i] = NAN; // every output must be written
    conv2d_run(out, x, w, bias, c);
    conv2d_reference(want, x, w, bias, c, Ho, Wo);
    double err = rel_error_f64(out, want, no);
    // float32 products summed over Ci*k*k <= 1152 terms: about 1e-7 relative, norm-wise
    check(err < 1e-6, c->name, "(%d,%d,%d,%d) k%d s%d pad %d/%d/%d/%d -> %dx%d: rel %.2e", c->B, c->Ci, c->H, c->W,
          c->k, c->stride, c->pt, c->pl, c->pb, c->pr, Ho, Wo, err);
    free(x), free(w), free(bias), free(out), free(want);
}

// The same bits with one thread and with several (each output comes from one fixed-shape SGEMM).
static void test_conv2d_threads(const ConvCase *c) {
    int Ho = (c->H + c->pt + c->pb - c->k) / c->stride + 1, Wo = (c->W + c->pl + c->pr - c->k) / c->stride + 1;
    size_t no = (size_t)c->B * c->Co * Ho * Wo;
    float *x = randn_new((size_t)c->B * c->Ci * c->H * c->W, 1, 4), *w = randn_new((size_t)c->Co * c->Ci * 9, 0.2f, 5),
          *bias = randn_new(c->Co, 1, 6), *one = malloc(no * sizeof(float)), *many = malloc(no * sizeof(float));
    int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    conv2d_run(one, x, w, bias, c);
    omp_set_num_threads(3);
    conv2d_run(many, x, w, bias, c);
    omp_set_num_threads(threads);
    check(memcmp(one, many, no * sizeof(float)) == 0, "conv2d.thread_count_independent", "1 vs 3 threads, %s", c->name);
    free(x), free(w), free(bias), free(one), free(many);
}

// ---- group_norm ----
static void test_group_norm(int B, int C, int n, int groups, int silu, int in_place) {
    size_t total = (size_t)B * C * n;
    float eps = 1e-6f;
    float *x = randn_new(total, 2, 10), *gamma = randn_new(C, 1, 11), *beta = randn_new(C, 1, 12);
    for (size_t i = 0; i < total; i++) x[i] += 3.0f; // a mean far from zero
    double *want = malloc(total * sizeof(double));
    int per = C / groups;
    for (int b = 0; b < B; b++)
        for (int g = 0; g < groups; g++) {
            const float *xg = x + ((size_t)b * C + (size_t)g * per) * n;
            double mean = 0, var = 0;
            for (size_t i = 0; i < (size_t)per * n; i++) mean += xg[i];
            mean /= (double)per * n;
            for (size_t i = 0; i < (size_t)per * n; i++) var += (xg[i] - mean) * (xg[i] - mean);
            var /= (double)per * n;
            for (int c = g * per; c < (g + 1) * per; c++)
                for (int i = 0; i < n; i++) {
                    size_t at = ((size_t)b * C + c) * n + i;
                    double v = (x[at] - mean) / sqrt(var + eps) * gamma[c] + beta[c];
                    want[at] = silu ? v / (1 + exp(-v)) : v;
                }
        }
    float *out = in_place ? x : malloc(total * sizeof(float));
    cpu_group_norm_forward(out, x, gamma, beta, B, C, n, groups, eps, silu);
    double err = rel_error_f64(out, want, total);
    char name[64];
    snprintf(name, sizeof(name), "group_norm.%s%s", silu ? "silu" : "plain", in_place ? ".in_place" : "");
    check(err < 1e-6, name, "B %d C %d n %d groups %d: rel %.2e", B, C, n, groups, err);
    if (!in_place) free(out);
    free(x), free(gamma), free(beta), free(want);
}

// ---- data movement ----
static void test_upsample(void) {
    int B = 2, C = 3, H = 5, W = 7;
    float *x = randn_new((size_t)B * C * H * W, 1, 20), *out = malloc(sizeof(float) * B * C * 4 * H * W);
    cpu_upsample_nearest2x(out, x, B, C, H, W);
    int ok = 1;
    for (int p = 0; p < B * C; p++)
        for (int y = 0; y < 2 * H; y++)
            for (int i = 0; i < 2 * W; i++)
                ok &= out[((size_t)p * 2 * H + y) * 2 * W + i] == x[((size_t)p * H + y / 2) * W + i / 2];
    check(ok, "upsample_nearest2x", "(%d,%d,%d,%d) -> %dx%d", B, C, H, W, 2 * H, 2 * W);
    free(x), free(out);
}

static void test_transpose(int B, int rows, int cols) {
    size_t n = (size_t)B * rows * cols;
    float *x = randn_new(n, 1, 30), *out = malloc(n * sizeof(float));
    cpu_transpose(out, x, B, rows, cols);
    int ok = 1;
    for (int b = 0; b < B; b++)
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                ok &= out[((size_t)b * cols + c) * rows + r] == x[((size_t)b * rows + r) * cols + c];
    check(ok, "transpose", "(%d,%d,%d)", B, rows, cols);
    free(x), free(out);
}

static void test_clamp(void) {
    size_t n = 1000;
    float *x = randn_new(n, 40, 40), *out = malloc(n * sizeof(float));
    cpu_clamp(out, x, -30.0f, 20.0f, n);
    int ok = 1, clipped = 0;
    for (size_t i = 0; i < n; i++) {
        float want = x[i] < -30.0f ? -30.0f : x[i] > 20.0f ? 20.0f : x[i];
        ok &= out[i] == want;
        clipped += want != x[i];
    }
    cpu_clamp(x, x, -30.0f, 20.0f, n); // in place
    ok &= memcmp(x, out, n * sizeof(float)) == 0;
    check(ok && clipped > 0, "clamp", "%d of %zu values clipped", clipped, n);
    free(x), free(out);
}

int main(void) {
    const ConvCase cases[] = {
        {"conv2d.3x3_same", 2, 5, 9, 11, 7, 3, 1, 1, 1, 1, 1, 1},
        {"conv2d.1x1_pointwise", 2, 6, 7, 5, 4, 1, 1, 0, 0, 0, 0, 1},
        {"conv2d.1x1_no_bias", 1, 3, 4, 4, 5, 1, 1, 0, 0, 0, 0, 0},
        {"conv2d.3x3_stride2_vae_down", 2, 4, 10, 10, 6, 3, 2, 0, 0, 1, 1, 1},
        {"conv2d.3x3_stride2_odd", 1, 3, 9, 13, 5, 3, 2, 1, 1, 1, 1, 1},
        {"conv2d.3x3_asymmetric", 1, 3, 8, 7, 4, 3, 1, 2, 0, 1, 3, 1},
        {"conv2d.3x3_valid", 1, 2, 6, 9, 3, 3, 1, 0, 0, 0, 0, 0},
        {"conv2d.1x1_stride2", 1, 3, 7, 8, 2, 1, 2, 0, 0, 0, 0, 1},
        {"conv2d.5x5_pad2", 1, 2, 7, 6, 3, 5, 1, 2, 2, 2, 2, 1},
        // 66 x 70 = 4620 output pixels per image: two tiles of at most 4096, the second partial
        {"conv2d.3x3_two_tiles", 2, 8, 66, 70, 16, 3, 1, 1, 1, 1, 1, 1},
        // Ci*k*k = 4608 (the VAE's 512-channel layers): tiles of the minimum width over 40x40 pixels
        {"conv2d.3x3_wide_reduction", 1, 512, 40, 40, 4, 3, 1, 1, 1, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) test_conv2d(&cases[i]);
    test_conv2d_threads(&cases[0]);                                    // 2 tiles: OpenBLAS threads each product
    test_conv2d_threads(&cases[sizeof(cases) / sizeof(cases[0]) - 1]); // 7 tiles shared among the threads
    test_group_norm(2, 12, 37, 4, 0, 0);
    test_group_norm(2, 12, 37, 4, 1, 0);
    test_group_norm(3, 64, 50, 32, 1, 1);
    test_group_norm(1, 6, 1000, 1, 0, 1);
    test_upsample();
    test_transpose(2, 37, 70);
    test_transpose(1, 1, 5);
    test_clamp();
    return check_exit();
}
