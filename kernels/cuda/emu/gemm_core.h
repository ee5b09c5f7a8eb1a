// kernels/cuda/emu/gemm_core.h: the product behind the emulated cuBLAS and cuBLASLt
// (kernels/cuda/emu/gemm_core.cc): column-major C (m, n) = alpha op(A) op(B) + beta C on fp32
// storage, the inputs rounded to bf16 (nearest even, as tensor cores take them) for
// CUBLAS_COMPUTE_32F_FAST_16BF, summed in fp32 by OpenBLAS.
#pragma once
#include "kernels/cuda/emu/include/cublas_v2.h"

typedef struct {
    cublasOperation_t ta, tb;
    int m, n, k;
    int lda, ldb, ldc;
    bool bf16_inputs;
} GemmShape;

// CUBLAS_STATUS_SUCCESS when cuBLAS takes the shape and compute type on fp32 storage; else the
// status it returns.
cublasStatus_t gemm_check(const GemmShape *s, cudaDataType a_type, cudaDataType b_type, cudaDataType c_type,
                          cublasComputeType_t compute);
// Ends the program, as the device fault it would be, when a matrix reaches outside device memory.
void gemm_check_memory(const GemmShape *s, const float *A, const float *B, const float *C);
void gemm_compute(const GemmShape *s, float alpha, const float *A, const float *B, float beta, float *C);
// Ends the program with "error: emulated LIBRARY: MESSAGE" (what a GPU reports as a fault).
[[noreturn]] void emu_library_fault(const char *library, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// The fp32 value nearest to x that bf16 holds (ties to even); NaN stays NaN.
float bf16_round(float x);
