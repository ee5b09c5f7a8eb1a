// kernels/cuda/reduce.cuh: deterministic sums in double. The shuffle and shared-memory trees have
// a fixed shape, so a sum depends only on the data and the block size: bitwise reproducible, no
// atomics. Every lane (thread) receives the same total.
#pragma once

__device__ __forceinline__ double warp_sum(double v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// Sum over a block whose size is a multiple of 32 (at most 1024); every thread must call it.
__device__ inline double block_sum(double v) {
    __shared__ double partial[32];
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads(); // partial may still be read by a previous call
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    double total = lane < warps ? partial[lane] : 0.0;
    return warp_sum(total);
}
