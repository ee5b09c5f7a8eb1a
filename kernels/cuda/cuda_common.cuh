// kernels/cuda/cuda_common.cuh: what every CUDA kernel file shares: error checks that end the
// program with one line naming the call, the backend's stream and library handles, launch sizes.
#pragma once
#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/cuda/cuda_ops.h"

// common/util.h's die() (that header uses C11's _Noreturn, which C++ lacks).
extern "C" [[noreturn]] void die(const char *fmt, ...);

#define CUDA_CHECK(call)                                                                                               \
    do {                                                                                                               \
        cudaError_t err_ = (call);                                                                                     \
        if (err_ != cudaSuccess) die("CUDA: %s at %s:%d: %s", #call, __FILE__, __LINE__, cudaGetErrorString(err_));   \
    } while (0)

#define CUBLAS_CHECK(call)                                                                                             \
    do {                                                                                                               \
        cublasStatus_t st_ = (call);                                                                                   \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                                              \
            die("cuBLAS: %s at %s:%d: %s", #call, __FILE__, __LINE__, cublasGetStatusString(st_));                     \
    } while (0)

// Checks the launch of the kernel just queued (configuration errors surface here, faults later).
#define CUDA_CHECK_LAUNCH() CUDA_CHECK(cudaGetLastError())

// The backend's state, created by cuda_init (kernels/cuda/memory.cu).
cudaStream_t cuda_stream(void);
cublasHandle_t cuda_cublas(void);
cublasLtHandle_t cuda_cublaslt(void);
// A device workspace for cuBLASLt (CUDA_LT_WORKSPACE bytes).
void *cuda_lt_workspace(void);
#define CUDA_LT_WORKSPACE ((size_t)64 << 20)
// A device scratch buffer of at least `bytes`, grown on demand (valid until the next call; only
// for use inside one op, since every op runs on the one stream).
void *cuda_scratch(size_t bytes);

// Blocks of `threads` covering n items (at least 1).
static inline unsigned cuda_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b ? b : 1);
}
