// kernels/cpu/elementwise.c: additions, SiLU, tanh-GELU and scaling.
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

void cpu_add(float *out, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

// x (B, n) += row (n)
void cpu_add_broadcast(float *x, const float *row, int B, size_t n) {
    const size_t work = (size_t)B * n;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++) {
        float *xb = x + (size_t)b * n;
        for (size_t i = 0; i < n; i++) xb[i] += row[i];
    }
}

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void cpu_silu_forward(float *out, const float *x, size_t n) {
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t i = 0; i < n; i++) out[i] = x[i] * sigmoidf(x[i]);
}

// silu'(x) = s (1 + x (1 - s)), s = sigmoid(x)
void cpu_silu_backward(float *din, const float *dout, const float *x, size_t n) {
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t i = 0; i < n; i++) {
        float s = sigmoidf(x[i]);
        din[i] = dout[i] * s * (1.0f + x[i] * (1.0f - s));
    }
}

#define GELU_A 0.7978845608028654f // sqrt(2 / pi)
#define GELU_B 0.044715f

void cpu_gelu_forward(float *out, const float *x, size_t n) {
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        out[i] = 0.5f * v * (1.0f + tanhf(GELU_A * (v + GELU_B * v * v * v)));
    }
}

void cpu_gelu_backward(float *din, const float *dout, const float *x, size_t n) {
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float th = tanhf(GELU_A * (v + GELU_B * v * v * v));
        float grad = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * GELU_A * (1.0f + 3.0f * GELU_B * v * v);
        din[i] = dout[i] * grad;
    }
}

void cpu_scale(float *x, float s, size_t n) {
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}
