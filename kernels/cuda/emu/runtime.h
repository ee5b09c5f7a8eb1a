// kernels/cuda/emu/runtime.h: what the emulated runtime (kernels/cuda/emu/runtime.cc) offers the
// rest of the emulation.
#pragma once
#include "kernels/cuda/emu/include/cuda_runtime.h"

// The H100's limits that a launch is checked against.
enum {
    EMU_DEVICES = 8, // like a DGX H100
    EMU_MAX_THREADS_PER_BLOCK = 1024,
    EMU_MAX_GRID_YZ = 65535,
    EMU_DEFAULT_SHARED = 48 << 10, // bytes of shared memory a kernel may use without opting in
    EMU_MAX_SHARED = 227 << 10,    // the most it may opt in to (cudaFuncAttributeMaxDynamicSharedMemorySize)
};

// True when an H100 would start the launch; else records the error cudaGetLastError reports.
bool emu_launch_allowed(const void *kernel, const emu::LaunchConfig &cfg);
// Records an error for cudaGetLastError (the first one stays until it is read).
cudaError_t emu_set_error(cudaError_t e);
