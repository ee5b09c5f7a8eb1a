// kernels/cpu/attention.c: multi-head softmax attention over all tokens, one (sample, head) pair
// per task; the per-head products are cpu_gemm calls on strided views of the packed qkv rows. The
// softmax probabilities are kept for the backward (B*H*T*T floats).
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

// qkv (B, T, 3*H*hd) -> out (B, T, H*hd), probs (B, H, T, T)
void cpu_attention_forward(float *out, float *probs, const float *qkv, int B, int T, int H, int hd) {
    int D = H * hd, ld = 3 * D;
    float scale = 1.0f / sqrtf((float)hd);
    const size_t work = (size_t)B * H * T * T * hd;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            const float *q = qkv + (size_t)b * T * ld + h * hd, *k = q + D, *v = q + 2 * D;
            float *p = probs + ((size_t)b * H + h) * T * T;
            cpu_gemm(0, 1, T, T, hd, scale, q, ld, k, ld, 0.0f, p, T);
            for (int i = 0; i < T; i++) {
                float *row = p + (size_t)i * T, mx = row[0];
                for (int j = 1; j < T; j++) mx = row[j] > mx ? row[j] : mx;
                double sum = 0.0;
                for (int j = 0; j < T; j++) {
                    row[j] = expf(row[j] - mx);
                    sum += row[j];
                }
                float inv = (float)(1.0 / sum);
                for (int j = 0; j < T; j++) row[j] *= inv;
            }
            float *o = out + (size_t)b * T * D + h * hd;
            cpu_gemm(0, 0, T, hd, T, 1.0f, p, T, v, ld, 0.0f, o, D);
        }
}

// dV = P^T dO; dP = dO V^T; dS = P * (dP - rowsum(P * dP)); dQ = s dS K; dK = s dS^T Q.
void cpu_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs, int B,
                            int T, int H, int hd) {
    int D = H * hd, ld = 3 * D;
    float scale = 1.0f / sqrtf((float)hd);
    const size_t work = (size_t)B * H * T * T * hd;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++) {
            size_t head = (size_t)b * T * ld + h * hd;
            const float *q = qkv + head, *k = q + D, *v = q + 2 * D;
            float *dq = dqkv + head, *dk = dq + D, *dv = dq + 2 * D;
            const float *p = probs + ((size_t)b * H + h) * T * T;
            const float *dO = dout + (size_t)b * T * D + h * hd;
            float *ds = scratch + ((size_t)b * H + h) * T * T;
            cpu_gemm(1, 0, T, hd, T, 1.0f, p, T, dO, D, 0.0f, dv, ld);
            cpu_gemm(0, 1, T, T, hd, 1.0f, dO, D, v, ld, 0.0f, ds, T);
            for (int i = 0; i < T; i++) {
                const float *pr = p + (size_t)i * T;
                float *dr = ds + (size_t)i * T;
                double dot = 0.0;
                for (int j = 0; j < T; j++) dot += (double)pr[j] * dr[j];
                float c = (float)dot;
                for (int j = 0; j < T; j++) dr[j] = pr[j] * (dr[j] - c);
            }
            cpu_gemm(0, 0, T, hd, T, scale, ds, T, k, ld, 0.0f, dq, ld);
            cpu_gemm(1, 0, T, hd, T, scale, ds, T, q, ld, 0.0f, dk, ld);
        }
}
