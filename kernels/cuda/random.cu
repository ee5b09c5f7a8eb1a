// kernels/cuda/random.cu: normal and logistic noise from the counter-based generator
// (kernels/philox.h), whose functions compile for the device too: the same (seed, purpose, step,
// sample, element) gives the CPU's number. The transforms run in double and round once to float;
// they match the CPU's bit for bit wherever the device's double log/sin/cos and the host's agree
// to within the final float rounding (all but a vanishing fraction of draws). Writes 4 B n bytes.
#include "kernels/cuda/cuda_common.cuh"
#include "kernels/philox.h"

enum { RANDOM_THREADS = 256 };

// out (B, n): element i of sample sample0 + b, normal or logistic.
template <bool Logistic>
__global__ void random_kernel(float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, size_t n,
                              size_t total) {
    size_t j = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= total) return;
    uint32_t sample = sample0 + (uint32_t)(j / n);
    uint64_t element = j % n;
    out[j] = Logistic ? rng_logistic(seed, purpose, step, sample, element)
                      : rng_normal(seed, purpose, step, sample, element);
}

void cuda_randn(float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B, size_t n) {
    size_t total = (size_t)B * n;
    if (total == 0) return;
    random_kernel<false><<<cuda_blocks(total, RANDOM_THREADS), RANDOM_THREADS, 0, cuda_stream()>>>(
        out, seed, purpose, step, sample0, n, total);
    CUDA_CHECK_LAUNCH();
}

void cuda_rand_logistic(float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B, size_t n) {
    size_t total = (size_t)B * n;
    if (total == 0) return;
    random_kernel<true><<<cuda_blocks(total, RANDOM_THREADS), RANDOM_THREADS, 0, cuda_stream()>>>(
        out, seed, purpose, step, sample0, n, total);
    CUDA_CHECK_LAUNCH();
}
