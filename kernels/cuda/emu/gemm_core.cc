// kernels/cuda/emu/gemm_core.cc: kernels/cuda/emu/gemm_core.h.
#include "kernels/cuda/emu/gemm_core.h"

#include <cblas.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "kernels/cuda/emu/device_memory.h"

void emu_library_fault(const char *library, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "error: emulated %s: %s\n", library, what);
    exit(1);
}

float bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return x; // NaN
    u += 0x7fffu + (u >> 16 & 1);
    u &= 0xffff0000u;
    float r;
    memcpy(&r, &u, sizeof r);
    return r;
}

static int stored_rows(cublasOperation_t op, int rows, int cols) { return op == CUBLAS_OP_N ? rows : cols; }
static int stored_cols(cublasOperation_t op, int rows, int cols) { return op == CUBLAS_OP_N ? cols : rows; }

static bool op_valid(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T || op == CUBLAS_OP_C; }

cublasStatus_t gemm_check(const GemmShape *s, cudaDataType a_type, cudaDataType b_type, cudaDataType c_type,
                          cublasComputeType_t compute) {
    if (!op_valid(s->ta) || !op_valid(s->tb) || s->m < 0 || s->n < 0 || s->k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    int a_rows = stored_rows(s->ta, s->m, s->k), b_rows = stored_rows(s->tb, s->k, s->n);
    if (s->lda < (a_rows > 1 ? a_rows : 1) || s->ldb < (b_rows > 1 ? b_rows : 1) || s->ldc < (s->m > 1 ? s->m : 1))
        return CUBLAS_STATUS_INVALID_VALUE;
    if (a_type != CUDA_R_32F || b_type != CUDA_R_32F || c_type != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    switch (compute) {
    case CUBLAS_COMPUTE_32F:
    case CUBLAS_COMPUTE_32F_PEDANTIC:
    case CUBLAS_COMPUTE_32F_FAST_16BF:
        return CUBLAS_STATUS_SUCCESS;
    default:
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}

// The floats a column-major matrix of (rows, cols) at leading dimension ld spans.
static size_t span(int rows, int cols, int ld) { return rows && cols ? (size_t)(cols - 1) * ld + rows : 0; }

static void check_matrix(const char *name, const float *p, size_t floats) {
    if (floats && !device_memory_holds(p, floats * sizeof(float)))
        emu_library_fault("cuBLAS", "matrix %s (%zu floats at %p) is not inside one device allocation", name, floats,
                          (const void *)p);
}

void gemm_check_memory(const GemmShape *s, const float *A, const float *B, const float *C) {
    if (!s->m || !s->n) return;
    if (s->k) {
        check_matrix("A", A, span(stored_rows(s->ta, s->m, s->k), stored_cols(s->ta, s->m, s->k), s->lda));
        check_matrix("B", B, span(stored_rows(s->tb, s->k, s->n), stored_cols(s->tb, s->k, s->n), s->ldb));
    }
    check_matrix("C", C, span(s->m, s->n, s->ldc));
}

// A dense copy of a stored matrix with every element rounded to bf16.
static std::vector<float> bf16_copy(const float *p, int rows, int cols, int ld) {
    std::vector<float> out((size_t)rows * cols);
    for (int j = 0; j < cols; j++)
        for (int i = 0; i < rows; i++) out[(size_t)j * rows + i] = bf16_round(p[(size_t)j * ld + i]);
    return out;
}

static CBLAS_TRANSPOSE cblas_op(cublasOperation_t op) { return op == CUBLAS_OP_N ? CblasNoTrans : CblasTrans; }

void gemm_compute(const GemmShape *s, float alpha, const float *A, const float *B, float beta, float *C) {
    if (!s->m || !s->n) return;
    if (!s->k || alpha == 0.0f) { // C = beta C, where beta 0 ignores what C held (NaN included)
        for (int j = 0; j < s->n; j++)
            for (int i = 0; i < s->m; i++) {
                float *c = &C[(size_t)j * s->ldc + i];
                *c = beta == 0.0f ? 0.0f : beta * *c;
            }
        return;
    }
    int a_rows = stored_rows(s->ta, s->m, s->k), a_cols = stored_cols(s->ta, s->m, s->k);
    int b_rows = stored_rows(s->tb, s->k, s->n), b_cols = stored_cols(s->tb, s->k, s->n);
    int lda = s->lda, ldb = s->ldb;
    std::vector<float> a16, b16;
    if (s->bf16_inputs) {
        a16 = bf16_copy(A, a_rows, a_cols, lda), b16 = bf16_copy(B, b_rows, b_cols, ldb);
        A = a16.data(), B = b16.data(), lda = a_rows, ldb = b_rows;
    }
    if (beta == 0.0f) // BLAS may read C when beta is 0; cuBLAS does not, so C's garbage must not matter
        for (int j = 0; j < s->n; j++) memset(&C[(size_t)j * s->ldc], 0, sizeof(float) * s->m);
    cblas_sgemm(CblasColMajor, cblas_op(s->ta), cblas_op(s->tb), s->m, s->n, s->k, alpha, A, lda, B, ldb, beta, C,
                s->ldc);
}
