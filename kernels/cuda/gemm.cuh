// kernels/cuda/gemm.cuh: the dense products shared by matmul, attention and conv2d, all on fp32
// storage at the backend's precision (cuda_set_precision). cuBLAS is column-major: a row-major
// (R, C) matrix is the column-major (C, R) one, so each caller states its product transposed.
#pragma once
#include "kernels/cuda/cuda_common.cuh"

// bf16 tensor-core inputs with fp32 accumulation, or strict fp32 (no TF32).
static inline cublasComputeType_t gemm_compute_type(void) {
    return cuda_get_precision() == CUDA_PRECISION_FP32 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_16BF;
}

// Column-major C (m, n) = alpha op(A) op(B) + beta C for `batch` matrices at the given strides
// (in floats; 0 repeats one matrix).
static inline void gemm_strided_batched(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                                        const float *A, int lda, long long stride_a, const float *B, int ldb,
                                        long long stride_b, float beta, float *C, int ldc, long long stride_c,
                                        int batch) {
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(cuda_cublas(), ta, tb, m, n, k, &alpha, A, CUDA_R_32F, lda, stride_a, B,
                                            CUDA_R_32F, ldb, stride_b, &beta, C, CUDA_R_32F, ldc, stride_c, batch,
                                            gemm_compute_type(), CUBLAS_GEMM_DEFAULT));
}

// The same over arrays of device pointers (one matrix each), for batches without a common stride.
// cuBLAS cannot check pointers that live on the device, and its reduced-precision kernels require
// every matrix to start 16-byte aligned: all_aligned16 says whether they do; when not, the product
// runs in strict fp32, which has no such requirement.
static inline void gemm_pointer_batched(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, float alpha,
                                        const float *const *A, int lda, const float *const *B, int ldb, float beta,
                                        float *const *C, int ldc, int batch, bool all_aligned16) {
    cublasComputeType_t compute = all_aligned16 ? gemm_compute_type() : CUBLAS_COMPUTE_32F;
    CUBLAS_CHECK(cublasGemmBatchedEx(cuda_cublas(), ta, tb, m, n, k, &alpha, (const void *const *)A, CUDA_R_32F, lda,
                                     (const void *const *)B, CUDA_R_32F, ldb, &beta, (void *const *)C, CUDA_R_32F, ldc,
                                     batch, compute, CUBLAS_GEMM_DEFAULT));
}
