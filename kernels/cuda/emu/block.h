// kernels/cuda/emu/block.h: the threads of one emulated thread block, each a fiber that runs until
// it exits or waits at a barrier or a warp collective (kernels/cuda/emu/block.cc). A barrier opens
// when every live thread of the block waits at it; a warp collective completes when every lane its
// mask names waits at the same collective. What a GPU leaves undefined (a mask naming an absent or
// exited lane, lanes meeting at different collectives, threads that can never meet) ends the
// program with one error line naming the kernel, block and thread.
#pragma once
#include <stdint.h>

typedef enum { EMU_SYNCWARP, EMU_SHFL_IDX, EMU_SHFL_XOR, EMU_SHFL_DOWN, EMU_SHFL_UP, EMU_BALLOT } EmuCollective;

extern "C" {
// __syncthreads() of the running thread.
void emu_syncthreads(void);
// A warp collective of the running thread: value is its lane's contribution (a shuffled value's
// bits or a ballot predicate), arg the source lane, lane mask or delta; returns the lane's result.
uint64_t emu_warp_collective(EmuCollective kind, unsigned mask, uint64_t value, int arg, int width);
// Ends the program with "error: emulated CUDA device: MESSAGE (kernel K, block B, thread T)".
[[noreturn]] void emu_device_fault(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
}
