// kernels/cuda/emu/cublas.cc: the cuBLAS of the emulated device (kernels/cuda/emu/include/cublas_v2.h).
// Arguments are checked as cuBLAS checks them; a product whose pointers the library cannot see
// (the pointer-array batches) fails as the device would when a reduced-precision kernel meets a
// matrix that is not 16-byte aligned.
#include <stdint.h>

#include "kernels/cuda/emu/device_memory.h"
#include "kernels/cuda/emu/gemm_core.h"

struct EmuCublas {
    cudaStream_t stream;
};

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    *handle = new EmuCublas{0};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    handle->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetWorkspace(cublasHandle_t handle, void *workspace, size_t bytes) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (bytes && (!device_memory_holds(workspace, bytes) || (uintptr_t)workspace % 256))
        return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    return mode == CUBLAS_DEFAULT_MATH || mode == CUBLAS_PEDANTIC_MATH || mode == CUBLAS_TF32_TENSOR_OP_MATH
               ? CUBLAS_STATUS_SUCCESS
               : CUBLAS_STATUS_INVALID_VALUE;
}

const char *cublasGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS:
        return "the operation completed successfully";
    case CUBLAS_STATUS_NOT_INITIALIZED:
        return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED:
        return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE:
        return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH:
        return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR:
        return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED:
        return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR:
        return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED:
        return "the functionality requested is not supported";
    }
    return "unknown error";
}

} // extern "C"

static GemmShape shape_of(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, int lda, int ldb, int ldc,
                          cublasComputeType_t compute) {
    return GemmShape{ta, tb, m, n, k, lda, ldb, ldc, compute == CUBLAS_COMPUTE_32F_FAST_16BF};
}

extern "C" {

// What both batched entry points refuse before touching memory.
static cublasStatus_t batch_check(cublasHandle_t handle, const GemmShape *s, cudaDataType a_type, cudaDataType b_type,
                                  cudaDataType c_type, cublasComputeType_t compute, int batch) {
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    cublasStatus_t st = gemm_check(s, a_type, b_type, c_type, compute);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    return batch < 0 ? CUBLAS_STATUS_INVALID_VALUE : CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m,
                                          int n, int k, const void *alpha, const void *A, cudaDataType a_type, int lda,
                                          long long stride_a, const void *B, cudaDataType b_type, int ldb,
                                          long long stride_b, const void *beta, void *C, cudaDataType c_type, int ldc,
                                          long long stride_c, int batch, cublasComputeType_t compute,
                                          cublasGemmAlgo_t algo) {
    (void)algo;
    GemmShape s = shape_of(ta, tb, m, n, k, lda, ldb, ldc, compute);
    cublasStatus_t st = batch_check(handle, &s, a_type, b_type, c_type, compute, batch);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    float a = *(const float *)alpha, b = *(const float *)beta;
    for (int i = 0; i < batch; i++) {
        const float *Ai = (const float *)A + i * stride_a, *Bi = (const float *)B + i * stride_b;
        float *Ci = (float *)C + i * stride_c;
        gemm_check_memory(&s, Ai, Bi, Ci);
        gemm_compute(&s, a, Ai, Bi, b, Ci);
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType a_type, int lda, const void *B,
                            cudaDataType b_type, int ldb, const void *beta, void *C, cudaDataType c_type, int ldc,
                            cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    return cublasGemmStridedBatchedEx(handle, ta, tb, m, n, k, alpha, A, a_type, lda, 0, B, b_type, ldb, 0, beta, C,
                                      c_type, ldc, 0, 1, compute, algo);
}

cublasStatus_t cublasGemmBatchedEx(cublasHandle_t handle, cublasOperation_t ta, cublasOperation_t tb, int m, int n,
                                   int k, const void *alpha, const void *const A[], cudaDataType a_type, int lda,
                                   const void *const B[], cudaDataType b_type, int ldb, const void *beta,
                                   void *const C[], cudaDataType c_type, int ldc, int batch,
                                   cublasComputeType_t compute, cublasGemmAlgo_t algo) {
    (void)algo;
    GemmShape s = shape_of(ta, tb, m, n, k, lda, ldb, ldc, compute);
    cublasStatus_t st = batch_check(handle, &s, a_type, b_type, c_type, compute, batch);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    size_t array_bytes = sizeof(void *) * (size_t)batch;
    if (batch && (!device_memory_holds(A, array_bytes) || !device_memory_holds(B, array_bytes) ||
                  !device_memory_holds(C, array_bytes)))
        emu_library_fault("cuBLAS", "cublasGemmBatchedEx: the pointer arrays must be device memory");
    float a = *(const float *)alpha, b = *(const float *)beta;
    for (int i = 0; i < batch; i++) {
        const float *Ai = (const float *)A[i], *Bi = (const float *)B[i];
        float *Ci = (float *)C[i];
        if (s.bf16_inputs && ((uintptr_t)Ai % 16 || (uintptr_t)Bi % 16 || (uintptr_t)Ci % 16))
            emu_library_fault("cuBLAS",
                              "cublasGemmBatchedEx: matrix %d is not 16-byte aligned (A %p, B %p, C %p), which its "
                              "bf16 tensor-core kernel requires: misaligned address",
                              i, (const void *)Ai, (const void *)Bi, (const void *)Ci);
        gemm_check_memory(&s, Ai, Bi, Ci);
        gemm_compute(&s, a, Ai, Bi, b, Ci);
    }
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
