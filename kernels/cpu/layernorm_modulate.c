// kernels/cpu/layernorm_modulate.c: adaLN's "modulate(LN(x), shift, scale)" as one op. LN has no
// affine parameters and eps 1e-6; statistics are accumulated in double.
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

#define LN_EPS 1e-6

// out, x (B, T, D); shift, scale rows at b * mod_stride; mean, rstd (B, T)
void cpu_layernorm_modulate_forward(float *out, float *mean, float *rstd, const float *x, const float *shift,
                                    const float *scale, int mod_stride, int B, int T, int D) {
    const size_t work = (size_t)B * T * D;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t row = (size_t)b * T + t;
            const float *xr = x + row * D;
            double sum = 0.0, sq = 0.0;
            for (int d = 0; d < D; d++) sum += xr[d];
            double mu = sum / D;
            for (int d = 0; d < D; d++) sq += (xr[d] - mu) * (xr[d] - mu);
            double rs = 1.0 / sqrt(sq / D + LN_EPS);
            mean[row] = (float)mu;
            rstd[row] = (float)rs;
            const float *sh = shift + (size_t)b * mod_stride, *sc = scale + (size_t)b * mod_stride;
            float m = (float)mu, r = (float)rs;
            float *o = out + row * D;
            for (int d = 0; d < D; d++) o[d] = (xr[d] - m) * r * (1.0f + sc[d]) + sh[d];
        }
}

// dx += d LN(x) (residual stream); dshift[b] = sum_t dout; dscale[b] = sum_t dout * xhat.
void cpu_layernorm_modulate_backward(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                                     const float *mean, const float *rstd, const float *scale, int mod_stride, int B,
                                     int T, int D) {
    const size_t work = (size_t)B * T * D;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t row = (size_t)b * T + t;
            const float *xr = x + row * D, *g = dout + row * D, *sc = scale + (size_t)b * mod_stride;
            float m = mean[row], r = rstd[row];
            double sum_g = 0.0, sum_gx = 0.0; // sums of dxhat and dxhat * xhat
            for (int d = 0; d < D; d++) {
                float gh = g[d] * (1.0f + sc[d]);
                sum_g += gh;
                sum_gx += gh * ((xr[d] - m) * r);
            }
            float mean_g = (float)(sum_g / D), mean_gx = (float)(sum_gx / D);
            float *dxr = dx + row * D;
            for (int d = 0; d < D; d++) {
                float xhat = (xr[d] - m) * r;
                dxr[d] += r * (g[d] * (1.0f + sc[d]) - mean_g - xhat * mean_gx);
            }
        }
    enum { CHUNK = 64 };
    int chunks = (D + CHUNK - 1) / CHUNK;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < chunks; c++) {
            int d0 = c * CHUNK, d1 = d0 + CHUNK < D ? d0 + CHUNK : D;
            double acc_shift[CHUNK] = {0}, acc_scale[CHUNK] = {0};
            for (int t = 0; t < T; t++) {
                size_t row = (size_t)b * T + t;
                const float *xr = x + row * D, *g = dout + row * D;
                float m = mean[row], r = rstd[row];
                for (int d = d0; d < d1; d++) {
                    acc_shift[d - d0] += g[d];
                    acc_scale[d - d0] += g[d] * ((xr[d] - m) * r);
                }
            }
            float *dsh = dshift + (size_t)b * mod_stride, *dsc = dscale + (size_t)b * mod_stride;
            for (int d = d0; d < d1; d++) {
                dsh[d] = (float)acc_shift[d - d0];
                dsc[d] = (float)acc_scale[d - d0];
            }
        }
}
