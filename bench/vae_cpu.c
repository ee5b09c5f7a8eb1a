// bench/vae_cpu.c: CPU speed of the SD VAE. Prints the machine's SGEMM rate, conv2d's rate on the
// VAE's layer shapes (2 * B * Co * Ho * Wo * Ci * k * k FLOPs each), and, given a weights file,
// encoder and decoder images/s.
// Usage: build/bench/vae_cpu [WEIGHTS.safetensors [BATCH [SIZE [REPEATS]]]]
#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "kernels/cpu/cpu_ops.h"
#include "kernels/philox.h"
#include "model/vae.h"

static float *random_floats(size_t n, float stddev, uint32_t stream) {
    float *x = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = stddev * rng_normal(7, RNG_DATA, 0, stream, i);
    return x;
}

typedef void (*Work)(void *ctx);

// Best of `repeats` runs after one warm-up, in seconds.
static double best_time(Work work, void *ctx, int repeats) {
    work(ctx);
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        double t0 = now_seconds();
        work(ctx);
        double dt = now_seconds() - t0;
        if (dt < best) best = dt;
    }
    return best;
}

typedef struct {
    int M, N, K;
    float *a, *b, *c;
} Gemm;

static void run_gemm(void *p) {
    Gemm *g = p;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, g->M, g->N, g->K, 1.0f, g->a, g->K, g->b, g->N, 0.0f, g->c,
                g->N);
}

typedef struct {
    int B, Ci, H, Co, stride;
    float *x, *w, *bias, *out;
} Conv;

static void run_conv(void *p) {
    Conv *c = p;
    int pad = c->stride == 1; // stride 2 is the VAE's down-sampler: padding right and bottom only
    cpu_conv2d_forward(c->out, c->x, c->w, c->bias, c->B, c->Ci, c->H, c->H, c->Co, 3, c->stride, pad, pad, 1, 1);
}

static void bench_sgemm(int M, int N, int K) {
    Gemm g = {.M = M, .N = N, .K = K};
    g.a = random_floats((size_t)M * K, 1, 1), g.b = random_floats((size_t)K * N, 1, 2);
    g.c = xmalloc(sizeof(float) * M * N);
    double s = best_time(run_gemm, &g, 10);
    printf("sgemm   M %4d N %5d K %4d                          %6.1f GFLOP/s\n", M, N, K, 2.0 * M * N * K / s / 1e9);
    free(g.a), free(g.b), free(g.c);
}

static void bench_conv(int B, int Ci, int H, int Co, int stride) {
    int Ho = H / stride;
    Conv c = {.B = B, .Ci = Ci, .H = H, .Co = Co, .stride = stride};
    c.x = random_floats((size_t)B * Ci * H * H, 1, 3), c.w = random_floats((size_t)Co * Ci * 9, 0.05f, 4);
    c.bias = random_floats(Co, 1, 5), c.out = xmalloc(sizeof(float) * B * Co * Ho * Ho);
    double s = best_time(run_conv, &c, 5), flop = 2.0 * B * Co * Ho * Ho * Ci * 9;
    printf("conv2d  B %d %3d->%3d %3dx%-3d 3x3 s%d  %5.2f GFLOP  %6.1f GFLOP/s  %7.1f ms\n", B, Ci, Co, H, H, stride,
           flop / 1e9, flop / s / 1e9, s * 1e3);
    free(c.x), free(c.w), free(c.bias), free(c.out);
}

typedef struct {
    Vae *vae;
    int B, size, f, encode;
    float *images, *latents, *logvar;
} Coding;

static void run_coding(void *p) {
    Coding *c = p;
    if (c->encode)
        vae_encode(c->vae, c->images, c->latents, c->logvar, c->B, c->size, c->size);
    else
        vae_decode(c->vae, c->latents, c->images, c->B, c->size / c->f, c->size / c->f);
}

static void bench_vae(const char *path, int B, int size, int repeats) {
    char err[512];
    Vae *vae = vae_load(path, &ops_cpu, err, sizeof(err));
    if (!vae) die("%s", err);
    int f = vae_downsampling(vae), side = size / f;
    size_t latent = (size_t)B * vae_latent_channels(vae) * side * side;
    Coding c = {.vae = vae, .B = B, .size = size, .f = f};
    c.images = random_floats((size_t)B * vae_image_channels(vae) * size * size, 0.5f, 6);
    c.latents = random_floats(latent, 1, 7), c.logvar = xmalloc(sizeof(float) * latent);
    for (c.encode = 1; c.encode >= 0; c.encode--) {
        double s = best_time(run_coding, &c, repeats);
        printf("%s  batch %d of %dx%d: %.2f s, %.3f images/s\n", c.encode ? "encode" : "decode", B, size, size, s,
               B / s);
    }
    free(c.images), free(c.latents), free(c.logvar);
    vae_free(vae);
}

int main(int argc, char **argv) {
    printf("threads %d\n", omp_get_max_threads());
    bench_sgemm(2048, 2048, 2048);
    bench_sgemm(128, 896, 1152); // conv2d's tiles of the 128-channel layers
    bench_sgemm(512, 256, 4608); // and of the 512-channel layers
    bench_conv(1, 128, 256, 128, 1);
    bench_conv(1, 256, 128, 256, 1);
    bench_conv(1, 512, 64, 512, 1);
    bench_conv(4, 512, 32, 512, 1);
    bench_conv(1, 128, 256, 128, 2);
    if (argc > 1)
        bench_vae(argv[1], argc > 2 ? atoi(argv[2]) : 1, argc > 3 ? atoi(argv[3]) : 256, argc > 4 ? atoi(argv[4]) : 1);
    return 0;
}
