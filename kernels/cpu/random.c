// kernels/cpu/random.c: normal and logistic noise from the counter-based generator (kernels/philox.h).
#include "kernels/cpu/cpu_ops.h"
#include "kernels/philox.h"

void cpu_randn(float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B, size_t n) {
    const size_t work = (size_t)B * n;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < n; i++)
            out[(size_t)b * n + i] = rng_normal(seed, purpose, step, sample0 + (uint32_t)b, i);
}

void cpu_rand_logistic(float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B, size_t n) {
    const size_t work = (size_t)B * n;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (size_t i = 0; i < n; i++)
            out[(size_t)b * n + i] = rng_logistic(seed, purpose, step, sample0 + (uint32_t)b, i);
}
