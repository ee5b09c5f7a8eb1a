// kernels/cpu/embeddings.c: timestep frequency features and the class-label table.
#include <math.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

// out (B, F): [cos(t f_0..), sin(t f_0..)], f_k = exp(-ln(max_period) k / (F/2)); float32 arithmetic
// in the same order as the reference model so the features agree to rounding.
void cpu_timestep_embedding(float *out, const float *t, int B, int F, float max_period) {
    int half = F / 2;
    float neg_log_period = (float)(-log((double)max_period));
    const size_t work = (size_t)B * F;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++) {
        float *o = out + (size_t)b * F;
        for (int k = 0; k < half; k++) {
            float freq = expf(neg_log_period * (float)k / (float)half);
            float arg = t[b] * freq;
            o[k] = cosf(arg);
            o[half + k] = sinf(arg);
        }
    }
}

// out (B, D) = table[labels[b]]
void cpu_embedding_forward(float *out, const float *table, const int32_t *labels, int B, int D) {
    const size_t work = (size_t)B * D;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++) memcpy(out + (size_t)b * D, table + (size_t)labels[b] * D, sizeof(float) * (size_t)D);
}

// dtable[labels[b]] += dout[b]; rows that repeat are added in batch order.
void cpu_embedding_backward(float *dtable, const float *dout, const int32_t *labels, int B, int D) {
    const size_t work = (size_t)B * D;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int d = 0; d < D; d++)
        for (int b = 0; b < B; b++) dtable[(size_t)labels[b] * D + d] += dout[(size_t)b * D + d];
}
