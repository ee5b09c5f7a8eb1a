// kernels/cpu/clamp.c: element-wise bounds.
#include "kernels/cpu/cpu_ops.h"

void cpu_clamp(float *out, const float *x, float lo, float hi, size_t n) {
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(n)
    for (size_t i = 0; i < n; i++) out[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];
}
