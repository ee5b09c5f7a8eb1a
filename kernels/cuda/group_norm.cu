// kernels/cuda/group_norm.cu: GroupNorm with a per-channel affine transform and an optional fused
// SiLU, with the arithmetic of kernels/cpu/group_norm.c: the statistics of each (sample, group) are
// two passes in double (mean, then centred squares), here as fixed block trees.
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/cuda/reduce.cuh"
#include "kernels/cuda/vec.cuh"

enum { STATS_THREADS = 512, APPLY_THREADS = 256 };

// stats (B * groups, 2) = (mean, rstd) of each group of x (B, C, n): its per_group * n consecutive
// floats. One block per (b, g); reads 8 B C n bytes (the second pass mostly from L2).
__global__ void group_norm_stats_kernel(float *stats, const float *x, size_t len, float eps) {
    const float *xg = x + blockIdx.x * len;
    double sum = 0.0;
    for (size_t i = threadIdx.x; i < len; i += blockDim.x) sum += xg[i];
    double mean = block_sum(sum) / (double)len, sq = 0.0;
    for (size_t i = threadIdx.x; i < len; i += blockDim.x) {
        double d = xg[i] - mean;
        sq += d * d;
    }
    double var = block_sum(sq) / (double)len;
    if (threadIdx.x != 0) return;
    stats[2 * blockIdx.x] = (float)mean;
    stats[2 * blockIdx.x + 1] = (float)(1.0 / sqrt(var + eps));
}

// out, x (B, C, n): (x - mean) * (rstd * gamma[c]) + beta[c], then SiLU when silu; one block per
// channel plane. out may alias x. 8 B C n bytes.
template <int V>
__global__ void group_norm_apply_kernel(float *out, const float *x, const float *stats, const float *gamma,
                                        const float *beta, int C, size_t n, int groups, bool silu) {
    size_t plane = blockIdx.x;
    int c = (int)(plane % C);
    const float *st = stats + 2 * (plane / C * groups + c / (C / groups));
    float m = st[0], a = st[1] * gamma[c], shift = beta[c];
    const float *xc = x + plane * n;
    float *oc = out + plane * n;
    for (size_t i = threadIdx.x * V; i < n; i += blockDim.x * V) {
        float v[V];
        load_vec<V>(v, xc + i);
        for (int j = 0; j < V; j++) {
            v[j] = (v[j] - m) * a + shift;
            if (silu) v[j] = v[j] / (1.0f + expf(-v[j]));
        }
        store_vec<V>(oc + i, v);
    }
}

void cuda_group_norm_forward(float *out, const float *x, const float *gamma, const float *beta, int B, int C, size_t n,
                             int groups, float eps, int silu) {
    if (B == 0 || C == 0 || n == 0) return;
    int per_group = C / groups;
    size_t stat_count = (size_t)B * groups;
    float *stats = (float *)cuda_scratch(sizeof(float) * 2 * stat_count);
    group_norm_stats_kernel<<<(unsigned)stat_count, STATS_THREADS, 0, cuda_stream()>>>(stats, x, (size_t)per_group * n,
                                                                                       eps);
    CUDA_CHECK_LAUNCH();
    size_t planes = (size_t)B * C;
    if (n % 4 == 0 && aligned16(out) && aligned16(x))
        group_norm_apply_kernel<4><<<(unsigned)planes, APPLY_THREADS, 0, cuda_stream()>>>(out, x, stats, gamma, beta, C,
                                                                                          n, groups, silu != 0);
    else
        group_norm_apply_kernel<1><<<(unsigned)planes, APPLY_THREADS, 0, cuda_stream()>>>(out, x, stats, gamma, beta, C,
                                                                                          n, groups, silu != 0);
    CUDA_CHECK_LAUNCH();
}
