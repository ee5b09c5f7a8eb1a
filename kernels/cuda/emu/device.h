// kernels/cuda/emu/device.h: CUDA's device language for the host compiler, so that the backend's
// kernels compile unchanged (after kernels/cuda/emu/rewrite.pl turns `k<<<...>>>(args)` into
// emu::launch and `extern __shared__` arrays into pointers to the block's dynamic shared memory).
// Each CUDA thread of a block is a fiber (kernels/cuda/emu/block.h); __syncthreads and the warp
// collectives switch fibers, so threads really meet there. Static __shared__ arrays live in one
// linker section, the block's shared memory, which the race detector watches.
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <utility>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __shared__ static __attribute__((section("emu_shared"), aligned(16)))
#define __constant__ static

struct uint3 {
    unsigned x, y, z;
};
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
struct alignas(8) float2 {
    float x, y;
};
struct alignas(16) float4 {
    float x, y, z, w;
};
struct alignas(16) double2 {
    double x, y;
};
struct alignas(16) int4 {
    int x, y, z, w;
};
static inline float2 make_float2(float x, float y) { return float2{x, y}; }
static inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
static inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }

// The running thread's coordinates, set by the block scheduler before it resumes a thread.
extern "C" uint3 emu_thread_idx, emu_block_idx;
extern "C" dim3 emu_block_dim, emu_grid_dim;
#define threadIdx emu_thread_idx
#define blockIdx emu_block_idx
#define blockDim emu_block_dim
#define gridDim emu_grid_dim
static constexpr int warpSize = 32;

// Integer and float min/max of device code (the host has std::min/std::max).
static inline int min(int a, int b) { return a < b ? a : b; }
static inline int max(int a, int b) { return a > b ? a : b; }
static inline unsigned min(unsigned a, unsigned b) { return a < b ? a : b; }
static inline unsigned max(unsigned a, unsigned b) { return a > b ? a : b; }
static inline long long min(long long a, long long b) { return a < b ? a : b; }
static inline long long max(long long a, long long b) { return a > b ? a : b; }
static inline unsigned long min(unsigned long a, unsigned long b) { return a < b ? a : b; }
static inline unsigned long max(unsigned long a, unsigned long b) { return a > b ? a : b; }
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }

// Intrinsics with an explicit rounding: round to nearest even, never contracted (the emulated
// sources build with -ffp-contract=off), so these are the device's results bit for bit.
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fsqrt_rn(float a) { return sqrtf(a); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
// The fast intrinsics: glibc's correctly rounded results lie within their documented error bounds.
// (Macros: glibc declares functions of these names.)
#define __expf(x) expf(x)
#define __logf(x) logf(x)
#define __sinf(x) sinf(x)
#define __cosf(x) cosf(x)
static inline float __fdividef(float a, float b) { return a / b; }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
template <class T> static inline T __ldg(const T *p) { return *p; }

#include "kernels/cuda/emu/block.h"

// Shared memory: barriers are compiler barriers too, since other threads change shared memory
// while this one waits.
static inline void __syncthreads(void) {
    __asm__ __volatile__("" ::: "memory");
    emu_syncthreads();
    __asm__ __volatile__("" ::: "memory");
}
static inline void __syncwarp(unsigned mask = 0xffffffffu) {
    __asm__ __volatile__("" ::: "memory");
    emu_warp_collective(EMU_SYNCWARP, mask, 0, 0, 32);
    __asm__ __volatile__("" ::: "memory");
}
static inline void __threadfence(void) { __asm__ __volatile__("" ::: "memory"); }
static inline void __threadfence_block(void) { __asm__ __volatile__("" ::: "memory"); }

// Warp shuffles of any 4- or 8-byte value: every lane of mask must take part.
template <class T> static inline T emu_shuffle(EmuCollective kind, unsigned mask, T v, int arg, int width) {
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffles move at most 8 bytes");
    uint64_t bits = 0;
    memcpy(&bits, &v, sizeof v);
    bits = emu_warp_collective(kind, mask, bits, arg, width);
    T out;
    memcpy(&out, &bits, sizeof out);
    return out;
}
template <class T> static inline T __shfl_sync(unsigned mask, T v, int src, int width = 32) {
    return emu_shuffle(EMU_SHFL_IDX, mask, v, src, width);
}
template <class T> static inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    return emu_shuffle(EMU_SHFL_XOR, mask, v, lane_mask, width);
}
template <class T> static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return emu_shuffle(EMU_SHFL_DOWN, mask, v, (int)delta, width);
}
template <class T> static inline T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    return emu_shuffle(EMU_SHFL_UP, mask, v, (int)delta, width);
}
static inline unsigned __ballot_sync(unsigned mask, int pred) {
    return (unsigned)emu_warp_collective(EMU_BALLOT, mask, pred != 0, 0, 32);
}
static inline int __any_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) != 0; }
static inline int __all_sync(unsigned mask, int pred) { return __ballot_sync(mask, pred) == mask; }

// Atomics: the threads of the emulated device never run at the same time, so plain updates are
// atomic; they go through a function so that they are not reordered around fiber switches.
template <class T> static inline T atomicAdd(T *p, T v) {
    T old = *p;
    *p = old + v;
    return old;
}
template <class T> static inline T atomicMax(T *p, T v) {
    T old = *p;
    if (v > old) *p = v;
    return old;
}
template <class T> static inline T atomicExch(T *p, T v) {
    T old = *p;
    *p = v;
    return old;
}

#include "kernels/cuda/emu/launch.h"
