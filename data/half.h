// data/half.h: IEEE binary16 <-> binary32 conversion for latent shards stored as F16.
// half_from_float rounds to nearest, ties to even, like a hardware conversion, so a value that
// is already a half survives the round trip unchanged.
#pragma once
#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF, bits;
    if (exponent == 0) {
        float magnitude = (float)mantissa * 0x1p-24f; // zero or subnormal: mantissa * 2^-24 exactly
        return sign ? -magnitude : magnitude;
    }
    if (exponent == 31)
        bits = sign | 0x7F800000u | (mantissa << 13);
    else
        bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    float x;
    memcpy(&x, &bits, sizeof(x));
    return x;
}

static inline uint16_t half_from_float(float f) {
    uint32_t bits;
    memcpy(&bits, &f, sizeof(bits));
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    uint32_t magnitude = bits & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) return sign | 0x7E00;  // NaN stays a (quiet) NaN
    if (magnitude >= 0x477FF000u) return sign | 0x7C00; // >= 65520 rounds past the largest half, 65504
    if (magnitude < 0x38800000u) {
        // below 2^-14 the half is subnormal with unit 2^-24; scaling by 2^24 is exact in float and
        // rintf rounds to nearest even (the default rounding mode)
        float a;
        memcpy(&a, &magnitude, sizeof(a));
        return sign | (uint16_t)rintf(a * 0x1p24f);
    }
    uint32_t h = ((magnitude >> 23) - 112) << 10 | ((magnitude >> 13) & 0x3FF), rest = magnitude & 0x1FFF;
    if (rest > 0x1000 || (rest == 0x1000 && (h & 1)))
        h++; // a carry out of the mantissa bumps the exponent, as it should
    return sign | (uint16_t)h;
}
