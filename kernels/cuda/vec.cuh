// kernels/cuda/vec.cuh: V consecutive floats moved as one access: float4 when V == 4 (the address
// must then be 16-byte aligned), a plain float when V == 1. Kernels are templated on V and the host
// picks 4 when every pointer and row length allows it.
#pragma once
#include <stddef.h>
#include <stdint.h>

template <int V> __device__ __forceinline__ void load_vec(float (&v)[V], const float *p) {
    static_assert(V == 1 || V == 4, "V is 1 or 4");
    if constexpr (V == 4) {
        float4 q = *reinterpret_cast<const float4 *>(p);
        v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
    } else {
        v[0] = *p;
    }
}

template <int V> __device__ __forceinline__ void store_vec(float *p, const float (&v)[V]) {
    static_assert(V == 1 || V == 4, "V is 1 or 4");
    if constexpr (V == 4)
        *reinterpret_cast<float4 *>(p) = make_float4(v[0], v[1], v[2], v[3]);
    else
        *p = v[0];
}

// True when p may be read as float4.
static inline bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }
