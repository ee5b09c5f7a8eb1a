// kernels/cpu/routing.c: DyDiT's routing ops: ReLU for the token router, the straight-through
// Gumbel-sigmoid, head / channel-group masks, and the realised FLOPs ratio (docs/algorithm.md 3, 4.1).
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_relu_forward(float *out, const float *x, size_t n) {
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t i = 0; i < n; i++) out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void cpu_relu_backward(float *din, const float *dout, const float *x, size_t n) {
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t i = 0; i < n; i++) din[i] = x[i] > 0.0f ? dout[i] : 0.0f;
}

// hard = [z > threshold], soft = sigmoid(z / tau), z = logit + noise
void cpu_st_gate_forward(float *hard, int hard_stride, float *soft, const float *logits, const float *noise,
                         int noise_stride, int rows, int cols, float tau, float threshold) {
    const size_t work = (size_t)rows * cols;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            size_t i = (size_t)r * cols + c;
            float z = logits[i] + (noise ? noise[(size_t)r * noise_stride + c] : 0.0f);
            soft[i] = 1.0f / (1.0f + expf(-z / tau));
            hard[(size_t)r * hard_stride + c] = z > threshold ? 1.0f : 0.0f;
        }
}

void cpu_st_gate_backward(float *dlogits, const float *dhard, int hard_stride, const float *soft, int rows, int cols,
                          float tau) {
    const size_t work = (size_t)rows * cols;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            size_t i = (size_t)r * cols + c;
            dlogits[i] = dhard[(size_t)r * hard_stride + c] * soft[i] * (1.0f - soft[i]) / tau;
        }
}

// x, out (B, T, G * S); mask[b * mask_stride + g]
void cpu_group_mask_forward(float *out, const float *x, const float *mask, int mask_stride, int B, int T, int G,
                            int S) {
    const size_t work = (size_t)B * T * G * S;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *m = mask + (size_t)b * mask_stride;
            size_t row = ((size_t)b * T + t) * G * S;
            for (int g = 0; g < G; g++)
                for (int s = 0; s < S; s++) out[row + g * S + s] = x[row + g * S + s] * m[g];
        }
}

void cpu_group_mask_backward(float *dx, float *dmask, const float *dout, const float *x, const float *mask,
                             int mask_stride, int B, int T, int G, int S) {
    const size_t work = (size_t)B * T * G * S;
    if (dmask) { // one (sample, group) sum over tokens and channels, by one thread, before dx may overwrite dout
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
        for (int b = 0; b < B; b++)
            for (int g = 0; g < G; g++) {
                double acc = 0.0;
                for (int t = 0; t < T; t++) {
                    size_t at = ((size_t)b * T + t) * G * S + (size_t)g * S;
                    for (int s = 0; s < S; s++) acc += (double)dout[at + s] * x[at + s];
                }
                dmask[(size_t)b * mask_stride + g] += (float)acc;
            }
    }
    cpu_group_mask_forward(dx, dout, mask, mask_stride, B, T, G, S);
}

// Per-sample means of the masks of block l: heads, channel groups, kept tokens.
static void block_fractions(const float *head, const float *chan, const float *keep, int b, int l, int L, int H, int T,
                            double *a, double *g, double *k) {
    const float *hb = head + ((size_t)b * L + l) * H, *cb = chan + ((size_t)b * L + l) * H;
    const float *kb = keep + ((size_t)b * L + l) * T;
    double sh = 0, sc = 0, sk = 0;
    for (int h = 0; h < H; h++) {
        sh += hb[h];
        sc += cb[h];
    }
    for (int t = 0; t < T; t++) sk += kb[t];
    *a = sh / H;
    *g = sc / H;
    *k = sk / T;
}

void cpu_flops_ratio_forward(float *ratio, const float *head, const float *chan, const float *keep, int B, int L, int H,
                             int T, float attn, float mlp) {
    double denom = (double)L * ((double)attn + mlp);
    for (int b = 0; b < B; b++) {
        double sum = 0;
        for (int l = 0; l < L; l++) {
            double a, g, k;
            block_fractions(head, chan, keep, b, l, L, H, T, &a, &g, &k);
            sum += a * attn + g * k * mlp;
        }
        ratio[b] = (float)(sum / denom);
    }
}

void cpu_flops_ratio_backward(float *dhead, float *dchan, float *dkeep, const float *dratio, const float *chan,
                              const float *keep, int B, int L, int H, int T, float attn, float mlp) {
    double denom = (double)L * ((double)attn + mlp);
    for (int b = 0; b < B; b++)
        for (int l = 0; l < L; l++) {
            double g, k, scale = dratio[b] / denom, a_unused;
            block_fractions(chan, chan, keep, b, l, L, H, T, &a_unused, &g, &k);
            size_t hrow = ((size_t)b * L + l) * H, trow = ((size_t)b * L + l) * T;
            for (int h = 0; h < H; h++) {
                dhead[hrow + h] += (float)(scale * attn / H);
                dchan[hrow + h] += (float)(scale * k * mlp / H);
            }
            for (int t = 0; t < T; t++) dkeep[trow + t] += (float)(scale * g * mlp / T);
        }
}
