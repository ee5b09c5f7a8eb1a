// kernels/cpu/conv2d.c: 2-D convolution as im2col + SGEMM over tiles of output pixels.
//
// The whole im2col matrix of an image, (Ci*k*k, Ho*Wo), holds k*k copies of the input: 302 MB
// for one 256x256 image with 128 channels and a 3x3 kernel. Instead each task gathers the
// receptive fields of one tile of output pixels into a per-thread buffer of about CONV_TILE_FLOATS
// floats and multiplies the weight (Co, Ci*k*k) by it into the tile's columns of the output
// (Co, Ho*Wo). A convolution costs B * Co * Ho*Wo * Ci*k*k multiply-adds.
//
// Each output element comes from exactly one cpu_gemm call whose shape depends only on the layer,
// never on the thread count, and cpu_gemm's tiles do not depend on it either: the result is
// bitwise the same for any number of threads.
#include <omp.h>
#include <string.h>

#include "common/util.h"
#include "kernels/cpu/cpu_ops.h"

// About 4 MiB of gathered patches per thread. A tile is at least CONV_TILE_MIN pixels wide even
// for the widest layers (Ci*k*k = 4608 in the SD VAE), because OpenBLAS re-packs the whole weight
// matrix for every product and narrow tiles would spend their time packing instead of multiplying;
// at most CONV_TILE_MAX wide so that images with few input channels still split into enough
// tiles to share among the threads.
#define CONV_TILE_FLOATS (1 << 20)
#define CONV_TILE_MIN 256
#define CONV_TILE_MAX 4096
#define CONV_TILE_ALIGN 16

typedef struct {
    int Ci, H, W, k, stride, pad_top, pad_left, Ho, Wo;
} ConvGeom;

// dst[r] = plane[iy, (ox + r) * stride - pad_left + kx] for r < run, zero outside the image.
static void gather_segment(float *dst, const float *plane, const ConvGeom *g, int iy, int ox, int kx, int run) {
    if (iy < 0 || iy >= g->H) {
        memset(dst, 0, sizeof(float) * (size_t)run);
        return;
    }
    const float *src = plane + (size_t)iy * g->W;
    int s = g->stride, x0 = ox * s - g->pad_left + kx; // input column of r = 0
    // valid r: 0 <= x0 + r s <= W - 1
    int lo = x0 >= 0 ? 0 : (-x0 + s - 1) / s;
    int hi = x0 > g->W - 1 ? 0 : (g->W - 1 - x0) / s + 1;
    if (lo > run) lo = run;
    if (hi > run) hi = run;
    if (hi < lo) hi = lo;
    memset(dst, 0, sizeof(float) * (size_t)lo);
    if (s == 1)
        memcpy(dst + lo, src + x0 + lo, sizeof(float) * (size_t)(hi - lo));
    else
        for (int r = lo; r < hi; r++) dst[r] = src[x0 + r * s];
    memset(dst + hi, 0, sizeof(float) * (size_t)(run - hi));
}

// col (Ci*k*k, P): column j holds the receptive field of output pixel p0 + j of x (Ci, H, W), in
// the weight's (ci, ky, kx) order, zeros where it reaches into the padding.
static void im2col_tile(float *col, const float *x, const ConvGeom *g, int p0, int P) {
    for (int ci = 0; ci < g->Ci; ci++) {
        const float *plane = x + (size_t)ci * g->H * g->W;
        for (int ky = 0; ky < g->k; ky++)
            for (int kx = 0; kx < g->k; kx++) {
                float *row = col + ((size_t)(ci * g->k + ky) * g->k + kx) * P;
                // one run of consecutive pixels of an output row at a time
                for (int j = 0; j < P;) {
                    int p = p0 + j, oy = p / g->Wo, ox = p % g->Wo;
                    int run = g->Wo - ox < P - j ? g->Wo - ox : P - j;
                    gather_segment(row + j, plane, g, oy * g->stride - g->pad_top + ky, ox, kx, run);
                    j += run;
                }
            }
    }
}

// Output pixels per tile for a reduction length K (= Ci*k*k) and HoWo pixels per image.
static int tile_width(size_t K, int HoWo) {
    size_t P = CONV_TILE_FLOATS / K;
    if (P < CONV_TILE_MIN) P = CONV_TILE_MIN;
    if (P > CONV_TILE_MAX) P = CONV_TILE_MAX;
    P -= P % CONV_TILE_ALIGN;
    return P >= (size_t)HoWo ? HoWo : (int)P;
}

// out (B, Co, Ho, Wo) = x (B, Ci, H, W) * weight (Co, Ci, k, k) + bias (Co)
void cpu_conv2d_forward(float *out, const float *x, const float *weight, const float *bias, int B, int Ci, int H, int W,
                        int Co, int k, int stride, int pad_top, int pad_left, int pad_bottom, int pad_right) {
    ConvGeom g = {.Ci = Ci,
                  .H = H,
                  .W = W,
                  .k = k,
                  .stride = stride,
                  .pad_top = pad_top,
                  .pad_left = pad_left,
                  .Ho = (H + pad_top + pad_bottom - k) / stride + 1,
                  .Wo = (W + pad_left + pad_right - k) / stride + 1};
    int HoWo = g.Ho * g.Wo;
    size_t K = (size_t)Ci * k * k;
    // A 1x1 convolution without stride or padding multiplies by the input itself.
    int pointwise = k == 1 && stride == 1 && pad_top == 0 && pad_left == 0 && pad_bottom == 0 && pad_right == 0;
    int P = tile_width(K, HoWo), tiles = (HoWo + P - 1) / P, tasks = B * tiles;
    // With fewer tiles than threads, the tiles run in turn and cpu_gemm spreads each product's own
    // tiles over the threads instead.
    const size_t work = tasks >= omp_get_max_threads() ? (size_t)B * Co * HoWo * K : 0;
#pragma omp parallel CPU_PARALLEL_IF(work)
    {
        float *col = pointwise ? NULL : xmalloc(sizeof(float) * K * (size_t)P);
#pragma omp for schedule(static)
        for (int task = 0; task < tasks; task++) {
            int b = task / tiles, p0 = (task % tiles) * P, n = HoWo - p0 < P ? HoWo - p0 : P;
            const float *xb = x + (size_t)b * Ci * H * W, *src = xb + p0;
            int ld = HoWo;
            if (!pointwise) {
                im2col_tile(col, xb, &g, p0, n);
                src = col, ld = n;
            }
            float *o = out + (size_t)b * Co * HoWo + p0;
            if (bias)
                for (int co = 0; co < Co; co++)
                    for (int j = 0; j < n; j++) o[(size_t)co * HoWo + j] = bias[co];
            cpu_gemm(0, 0, Co, n, (int)K, 1.0f, weight, (int)K, src, ld,
                        bias ? 1.0f : 0.0f, o, HoWo);
        }
        free(col);
    }
}
