// kernels/cpu/token_gather.c: DyDiT inference ops: packing the weight slices of active heads and
// channel groups, and the gather / scatter of kept tokens around the token-pruned MLP (docs/algorithm.md 5).
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

// out (R, k * S) = column blocks blocks[j] (S wide) of in (R, G * S)
void cpu_gather_blocks(float *out, const float *in, const int32_t *blocks, int R, int G, int S, int k) {
    const size_t work = (size_t)R * k * S;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int r = 0; r < R; r++)
        for (int j = 0; j < k; j++)
            memcpy(out + ((size_t)r * k + j) * S, in + ((size_t)r * G + blocks[j]) * S, sizeof(float) * (size_t)S);
}

#define LN_EPS 1e-6

// The same arithmetic as layernorm_modulate_forward, on gathered rows.
void cpu_gather_layernorm_modulate(float *out, const float *x, const int32_t *rows, const float *shift,
                                   const float *scale, int mod_stride, int T, int K, int D) {
    const size_t work = (size_t)K * D;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int i = 0; i < K; i++) {
        int r = rows[i], b = r / T;
        const float *xr = x + (size_t)r * D, *sh = shift + (size_t)b * mod_stride, *sc = scale + (size_t)b * mod_stride;
        double sum = 0.0, sq = 0.0;
        for (int d = 0; d < D; d++) sum += xr[d];
        double mu = sum / D;
        for (int d = 0; d < D; d++) sq += (xr[d] - mu) * (xr[d] - mu);
        float m = (float)mu, rs = (float)(1.0 / sqrt(sq / D + LN_EPS));
        float *o = out + (size_t)i * D;
        for (int d = 0; d < D; d++) o[d] = (xr[d] - m) * rs * (1.0f + sc[d]) + sh[d];
    }
}

void cpu_gate_scatter_add(float *x, const float *branch, const int32_t *rows, const float *gate, int gate_stride, int T,
                          int K, int D) {
    const size_t work = (size_t)K * D;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int i = 0; i < K; i++) { // rows are distinct: no two iterations touch the same row
        int r = rows[i];
        const float *g = gate + (size_t)(r / T) * gate_stride, *br = branch + (size_t)i * D;
        float *xr = x + (size_t)r * D;
        for (int d = 0; d < D; d++) xr[d] = xr[d] + g[d] * br[d]; // as gate_residual_forward with keep 1
    }
}
