// kernels/cpu/patches.c: images <-> token sequences. The input side follows the patch Conv2d's
// kernel layout (c, py, px); the output side follows DiT's unpatchify einsum, whose tokens hold
// (py, px, c) with the channel fastest.
#include "kernels/cpu/cpu_ops.h"

// img (B, C, H, W) -> patches (B, T, C*p*p)
void cpu_patchify(float *patches, const float *img, int B, int C, int H, int W, int p) {
    int gh = H / p, gw = W / p, T = gh * gw, P = C * p * p;
    const size_t work = (size_t)B * C * H * W;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int gy = t / gw, gx = t % gw;
            float *dst = patches + ((size_t)b * T + t) * P;
            for (int c = 0; c < C; c++)
                for (int py = 0; py < p; py++)
                    for (int px = 0; px < p; px++)
                        dst[(c * p + py) * p + px] = img[(((size_t)b * C + c) * H + gy * p + py) * W + gx * p + px];
        }
}

// One mapping serves both directions: to_image != 0 copies tokens -> image, else image -> tokens.
static void unpatchify_copy(float *img, float *tokens, int B, int C, int H, int W, int p, int to_image) {
    int gh = H / p, gw = W / p, T = gh * gw, P = p * p * C;
    const size_t work = (size_t)B * C * H * W;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int gy = t / gw, gx = t % gw;
            float *tok = tokens + ((size_t)b * T + t) * P;
            for (int py = 0; py < p; py++)
                for (int px = 0; px < p; px++)
                    for (int c = 0; c < C; c++) {
                        float *pix = img + (((size_t)b * C + c) * H + gy * p + py) * W + gx * p + px;
                        float *v = tok + (py * p + px) * C + c;
                        if (to_image)
                            *pix = *v;
                        else
                            *v = *pix;
                    }
        }
}

// tokens (B, T, p*p*C) -> img (B, C, H, W)
void cpu_unpatchify_forward(float *img, const float *tokens, int B, int C, int H, int W, int p) {
    unpatchify_copy(img, (float *)tokens, B, C, H, W, p, 1);
}

// dimg (B, C, H, W) -> dtokens (B, T, p*p*C): a permutation, so its adjoint is the inverse copy.
void cpu_unpatchify_backward(float *dtokens, const float *dimg, int B, int C, int H, int W, int p) {
    unpatchify_copy((float *)dimg, dtokens, B, C, H, W, p, 0);
}
