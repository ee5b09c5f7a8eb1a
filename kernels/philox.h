// kernels/philox.h: the counter-based generator behind all randomness (Philox4x32-10).
//
// Every random number is a pure function of (seed, purpose, step, global sample index, element):
// the key is the 64-bit seed, the counter is (element / 4, sample, step, purpose) and the element
// picks one of the four output lanes. CPU and GPU therefore draw the same numbers, a run is
// reproducible from its step counter alone, and ranks holding slices of a global batch draw what
// one process holding the whole batch draws. Transforms (uniform, normal, logistic) are computed
// in double and rounded once to float so both backends agree to the bit.
#pragma once
#include <math.h>
#include <stdint.h>

#if defined(__CUDACC__)
#define PHILOX_FN __host__ __device__ static inline
#else
#define PHILOX_FN static inline
#endif

// What a stream of random numbers is for; part of the counter so streams never overlap.
enum RandomPurpose {
    RNG_INIT = 1,         // weight initialisation: sample = tensor index
    RNG_TIMESTEP = 2,     // diffusion timestep per sample
    RNG_NOISE = 3,        // diffusion noise epsilon per element
    RNG_LABEL_DROP = 4,   // classifier-free guidance label dropout per sample
    RNG_DATA = 5,         // synthetic data and shuffles
    RNG_GUMBEL_ATTN = 6,  // router noise, attention heads
    RNG_GUMBEL_MLP = 7,   // router noise, MLP channel groups
    RNG_GUMBEL_TOKEN = 8, // router noise, tokens
    RNG_SAMPLE = 9,       // sampler noise
    RNG_FLIP = 10,        // loader: flip of a stored posterior; step = epoch, sample = dataset index
    RNG_POSTERIOR = 11,   // VAE posterior epsilon per element; loader: step = epoch, sample = dataset index;
                          // dydit encode's single stored sample: step = UINT32_MAX, sample = input item
};

typedef struct {
    uint32_t v[4];
} PhiloxBlock;

PHILOX_FN void philox_mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

PHILOX_FN PhiloxBlock philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += 0x9E3779B9u;
            k1 += 0xBB67AE85u;
        }
        uint32_t hi0, lo0, hi1, lo1;
        philox_mulhilo(0xD2511F53u, c0, &hi0, &lo0);
        philox_mulhilo(0xCD9E8D57u, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    PhiloxBlock out = {{c0, c1, c2, c3}};
    return out;
}

// The four 32-bit words of block `element / 4` of the stream (seed, purpose, step, sample).
PHILOX_FN PhiloxBlock rng_block(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint32_t block) {
    return philox4x32_10(block, sample, step, purpose, (uint32_t)seed, (uint32_t)(seed >> 32));
}

PHILOX_FN uint32_t rng_u32(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint64_t element) {
    return rng_block(seed, purpose, step, sample, (uint32_t)(element >> 2)).v[element & 3];
}

// Uniform in the open interval (0, 1) with 24 random bits: never 0, never 1.
PHILOX_FN double rng_open01(uint32_t bits) { return ((double)(bits >> 8) + 0.5) * (1.0 / 16777216.0); }

// Uniform integer in [0, n) by multiply-shift (bias below 2^-32 * n).
PHILOX_FN uint32_t rng_below(uint32_t bits, uint32_t n) { return (uint32_t)(((uint64_t)bits * n) >> 32); }

// Standard normal for `element`: Box-Muller on the lane pair (2k, 2k+1) that holds it.
PHILOX_FN float rng_normal(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint64_t element) {
    PhiloxBlock b = rng_block(seed, purpose, step, sample, (uint32_t)(element >> 2));
    int pair = (int)(element & 2);
    double u1 = rng_open01(b.v[pair]), u2 = rng_open01(b.v[pair + 1]);
    double r = sqrt(-2.0 * log(u1)), theta = 6.283185307179586 * u2;
    return (float)((element & 1) ? r * sin(theta) : r * cos(theta));
}

// Standard logistic noise log(u) - log(1 - u): the difference of two standard Gumbel draws.
PHILOX_FN float rng_logistic(uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample, uint64_t element) {
    double u = rng_open01(rng_u32(seed, purpose, step, sample, element));
    return (float)(log(u) - log1p(-u));
}
