// kernels/cpu/optimizer.c: the element-wise optimiser ops over flat parameter buffers.
#include <math.h>
#include <stdlib.h>

#include "common/util.h"
#include "kernels/cpu/cpu_ops.h"

// Partial sums cover fixed chunks and are added in chunk order, so the result is the same for
// any thread count.
enum { SUM_CHUNK = 1 << 16 };

void cpu_sum_squares(double *out, const float *x, size_t n) {
    size_t chunks = (n + SUM_CHUNK - 1) / SUM_CHUNK;
    double *partial = xmalloc(sizeof(double) * (chunks ? chunks : 1));
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t c = 0; c < chunks; c++) {
        size_t end = (c + 1) * SUM_CHUNK < n ? (c + 1) * SUM_CHUNK : n;
        double s = 0.0;
        for (size_t i = c * SUM_CHUNK; i < end; i++) s += (double)x[i] * x[i];
        partial[c] = s;
    }
    double total = 0.0;
    for (size_t c = 0; c < chunks; c++) total += partial[c];
    free(partial);
    *out = total;
}

void cpu_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, double lr, double beta1,
                      double beta2, double eps, double weight_decay, long step) {
    // Scalars in double and rounded once, as PyTorch's AdamW computes them in Python floats.
    float decay = (float)(1.0 - lr * weight_decay);
    float m_weight = (float)(1.0 - beta1), v_weight = (float)(1.0 - beta2), beta2_f = (float)beta2;
    float step_size = (float)(lr / (1.0 - pow(beta1, (double)step)));
    float bias_correction2_sqrt = (float)sqrt(1.0 - pow(beta2, (double)step)), eps_f = (float)eps;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        param[i] *= decay;
        m[i] += m_weight * (g - m[i]); // = beta1 m + (1 - beta1) g, PyTorch's lerp form
        v[i] = v[i] * beta2_f + v_weight * g * g;
        param[i] -= step_size * (m[i] / (sqrtf(v[i]) / bias_correction2_sqrt + eps_f));
    }
}

void cpu_ema_update(float *ema, const float *param, size_t n, double decay) {
    float decay_f = (float)decay, weight = (float)(1.0 - decay);
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t i = 0; i < n; i++) ema[i] = ema[i] * decay_f + weight * param[i];
}
