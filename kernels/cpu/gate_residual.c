// kernels/cpu/gate_residual.c: adaLN-Zero's gated residual update x + gate * branch, optionally
// gated per token by DyDiT's token mask.
#include "kernels/cpu/cpu_ops.h"

// out, x, branch (B, T, D); gate rows at b * gate_stride; keep (B, T) or NULL
void cpu_gate_residual_forward(float *out, const float *x, const float *gate, const float *branch, int gate_stride,
                               const float *keep, int keep_stride, int B, int T, int D) {
    const size_t work = (size_t)B * T * D;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t row = ((size_t)b * T + t) * D;
            const float *g = gate + (size_t)b * gate_stride;
            float k = keep ? keep[(size_t)b * keep_stride + t] : 1.0f;
            for (int d = 0; d < D; d++) out[row + d] = x[row + d] + k * (g[d] * branch[row + d]);
        }
}

void cpu_gate_residual_backward(float *dbranch, float *dgate, float *dkeep, const float *dout, const float *gate,
                                const float *branch, int gate_stride, const float *keep, int keep_stride, int B, int T,
                                int D) {
    const size_t work = (size_t)B * T * D;
    if (dkeep) { // one token's sum over its channels, by one thread
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                size_t row = ((size_t)b * T + t) * D;
                const float *g = gate + (size_t)b * gate_stride;
                double acc = 0.0;
                for (int d = 0; d < D; d++) acc += (double)dout[row + d] * (g[d] * branch[row + d]);
                dkeep[(size_t)b * keep_stride + t] += (float)acc;
            }
    }
    enum { CHUNK = 64 };
    int chunks = (D + CHUNK - 1) / CHUNK;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < chunks; c++) {
            int d0 = c * CHUNK, d1 = d0 + CHUNK < D ? d0 + CHUNK : D;
            const float *g = gate + (size_t)b * gate_stride;
            double acc[CHUNK] = {0};
            for (int t = 0; t < T; t++) {
                size_t row = ((size_t)b * T + t) * D;
                float k = keep ? keep[(size_t)b * keep_stride + t] : 1.0f;
                for (int d = d0; d < d1; d++) {
                    float kd = k * dout[row + d];
                    acc[d - d0] += kd * branch[row + d];
                    if (dbranch) dbranch[row + d] = g[d] * kd;
                }
            }
            if (dgate)
                for (int d = d0; d < d1; d++) dgate[(size_t)b * gate_stride + d] = (float)acc[d - d0];
        }
}
