// kernels/cpu/group_norm.c: GroupNorm with a per-channel affine transform and an optional fused
// SiLU (the SD VAE follows all its norms by SiLU except the one before attention). One task per
// (sample, group); the statistics are two passes in double (mean, then centred squares), so a
// large mean does not cancel the variance.
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

// Independent partial sums, added together in a fixed order at the end: a single running sum
// would make every addition wait for the previous one.
#define LANES 8

// sum of (x[i] - shift)^power over n elements, power 1 or 2
static double lane_sum(const float *x, size_t n, double shift, int power) {
    double acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (int l = 0; l < LANES; l++) {
            double d = x[i + l] - shift;
            acc[l] += power == 2 ? d * d : d;
        }
    for (; i < n; i++) {
        double d = x[i] - shift;
        acc[0] += power == 2 ? d * d : d;
    }
    double sum = 0.0;
    for (int l = 0; l < LANES; l++) sum += acc[l];
    return sum;
}

// out, x (B, C, n); gamma, beta (C). out may alias x: each group is read fully before written.
void cpu_group_norm_forward(float *out, const float *x, const float *gamma, const float *beta, int B, int C, size_t n,
                            int groups, float eps, int silu) {
    int per_group = C / groups;
    size_t len = (size_t)per_group * n;
    const size_t work = (size_t)B * C * n;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int g = 0; g < groups; g++) {
            size_t first = ((size_t)b * C + (size_t)g * per_group) * n;
            const float *xg = x + first;
            double mean = lane_sum(xg, len, 0.0, 1) / (double)len, var = lane_sum(xg, len, mean, 2) / (double)len;
            float m = (float)mean, rstd = (float)(1.0 / sqrt(var + eps));
            for (int c = g * per_group; c < (g + 1) * per_group; c++) {
                const float *xc = x + ((size_t)b * C + c) * n;
                float *oc = out + ((size_t)b * C + c) * n, a = rstd * gamma[c], shift = beta[c];
                if (silu)
                    for (size_t i = 0; i < n; i++) {
                        float v = (xc[i] - m) * a + shift;
                        oc[i] = v / (1.0f + expf(-v));
                    }
                else
                    for (size_t i = 0; i < n; i++) oc[i] = (xc[i] - m) * a + shift;
            }
        }
}
