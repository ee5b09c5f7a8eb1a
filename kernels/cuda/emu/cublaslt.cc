// kernels/cuda/emu/cublaslt.cc: the cuBLASLt of the emulated device (kernels/cuda/emu/include/cublasLt.h).
// The heuristic offers one algorithm for what the library supports (fp32 storage, the default and
// bias epilogues, a bias vector 16-byte aligned) and records the pointer alignments it was promised;
// a matmul whose pointers are less aligned than its algorithm was chosen for is refused, as the
// real library refuses it.
#include <stdint.h>
#include <string.h>

#include "kernels/cuda/emu/device_memory.h"
#include "kernels/cuda/emu/gemm_core.h"
#include "kernels/cuda/emu/include/cublasLt.h"

struct EmuCublasLt {
    int unused;
};

struct EmuMatmulDesc {
    cublasComputeType_t compute;
    cudaDataType scale_type;
    cublasOperation_t ta, tb;
    cublasLtEpilogue_t epilogue;
    const float *bias;
};

struct EmuMatrixLayout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};

enum { ALIGN_A, ALIGN_B, ALIGN_C, ALIGN_D, ALIGN_BIAS, ALIGNS };

struct EmuMatmulPreference {
    uint64_t max_workspace;
    uint32_t align[4]; // A, B, C, D; 256 unless set
};

// What the heuristic records in an algorithm: the alignments its kernel relies on.
typedef struct {
    uint32_t magic;
    uint32_t align[ALIGNS];
} AlgoData;
static const uint32_t ALGO_MAGIC = 0x454d5531; // "EMU1"

// Copies the attribute's value when its size is the one the attribute has.
template <class T> static cublasStatus_t set_value(T *field, const void *buf, size_t bytes) {
    if (bytes != sizeof(T)) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(field, buf, sizeof(T));
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle) {
    *handle = new EmuCublasLt{0};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t handle) {
    delete handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc, cublasComputeType_t compute,
                                        cudaDataType_t scale_type) {
    *desc = new EmuMatmulDesc{compute, scale_type, CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, NULL};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc) {
    delete desc;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t bytes) {
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_COMPUTE_TYPE:
        return set_value(&desc->compute, buf, bytes);
    case CUBLASLT_MATMUL_DESC_SCALE_TYPE:
        return set_value(&desc->scale_type, buf, bytes);
    case CUBLASLT_MATMUL_DESC_TRANSA:
        return set_value(&desc->ta, buf, bytes);
    case CUBLASLT_MATMUL_DESC_TRANSB:
        return set_value(&desc->tb, buf, bytes);
    case CUBLASLT_MATMUL_DESC_EPILOGUE:
        return set_value(&desc->epilogue, buf, bytes);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        return set_value(&desc->bias, buf, bytes);
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld) {
    if (ld < 1 || (uint64_t)ld < rows) return CUBLAS_STATUS_INVALID_VALUE; // column-major: ld >= rows
    *layout = new EmuMatrixLayout{type, rows, cols, ld};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t layout) {
    delete layout;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    *pref = new EmuMatmulPreference{0, {256, 256, 256, 256}};
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    delete pref;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t pref,
                                                    cublasLtMatmulPreferenceAttributes_t attr, const void *buf,
                                                    size_t bytes) {
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
        return set_value(&pref->max_workspace, buf, bytes);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
        return set_value(&pref->align[ALIGN_A], buf, bytes);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
        return set_value(&pref->align[ALIGN_B], buf, bytes);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
        return set_value(&pref->align[ALIGN_C], buf, bytes);
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES:
        return set_value(&pref->align[ALIGN_D], buf, bytes);
    }
    return CUBLAS_STATUS_INVALID_VALUE;
}

} // extern "C"

// The product's shape when the layouts agree with each other and the transposes; else false.
static bool shape_of(const EmuMatmulDesc *desc, const EmuMatrixLayout *a, const EmuMatrixLayout *b,
                     const EmuMatrixLayout *c, const EmuMatrixLayout *d, GemmShape *s) {
    bool ta = desc->ta != CUBLAS_OP_N, tb = desc->tb != CUBLAS_OP_N;
    uint64_t m = c->rows, n = c->cols, k = ta ? a->rows : a->cols;
    if ((ta ? a->cols : a->rows) != m || (tb ? b->cols : b->rows) != k || (tb ? b->rows : b->cols) != n ||
        d->rows != m || d->cols != n || d->ld != c->ld || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return false;
    *s = GemmShape{desc->ta,   desc->tb,   (int)m,
                   (int)n,     (int)k,     (int)a->ld,
                   (int)b->ld, (int)c->ld, desc->compute == CUBLAS_COMPUTE_32F_FAST_16BF};
    return true;
}

static uint32_t alignment_of(const void *p) {
    uint32_t align = 256;
    while (align > 1 && (uintptr_t)p % align) align /= 2;
    return align;
}

static bool epilogue_supported(const EmuMatmulDesc *desc) {
    return desc->epilogue == CUBLASLT_EPILOGUE_DEFAULT || desc->epilogue == CUBLASLT_EPILOGUE_BIAS;
}

extern "C" {

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int *returned) {
    *returned = 0;
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
    GemmShape s;
    if (!shape_of(desc, a, b, c, d, &s)) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t st = gemm_check(&s, a->type, b->type, c->type, desc->compute);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (d->type != CUDA_R_32F || desc->scale_type != CUDA_R_32F || !epilogue_supported(desc))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    uint32_t bias_align = desc->epilogue == CUBLASLT_EPILOGUE_BIAS ? alignment_of(desc->bias) : 256;
    if (bias_align < 16) return CUBLAS_STATUS_NOT_SUPPORTED;
    AlgoData data = {
        ALGO_MAGIC,
        {pref->align[ALIGN_A], pref->align[ALIGN_B], pref->align[ALIGN_C], pref->align[ALIGN_D], bias_align}};
    memset(&results[0], 0, sizeof results[0]);
    memcpy(results[0].algo.data, &data, sizeof data);
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    *returned = 1;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t a_layout, const void *B, cublasLtMatrixLayout_t b_layout,
                              const void *beta, const void *C, cublasLtMatrixLayout_t c_layout, void *D,
                              cublasLtMatrixLayout_t d_layout, const cublasLtMatmulAlgo_t *algo, void *workspace,
                              size_t workspace_bytes, cudaStream_t stream) {
    (void)stream;
    if (!handle) return CUBLAS_STATUS_NOT_INITIALIZED;
    GemmShape s;
    if (!shape_of(desc, a_layout, b_layout, c_layout, d_layout, &s) || !algo) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t st = gemm_check(&s, a_layout->type, b_layout->type, c_layout->type, desc->compute);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (!epilogue_supported(desc)) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (C != D) return CUBLAS_STATUS_NOT_SUPPORTED; // out-of-place products are not emulated
    if (workspace_bytes && !device_memory_holds(workspace, workspace_bytes)) return CUBLAS_STATUS_INVALID_VALUE;
    AlgoData data;
    memcpy(&data, algo->data, sizeof data);
    if (data.magic != ALGO_MAGIC) return CUBLAS_STATUS_INVALID_VALUE;
    bool with_bias = desc->epilogue == CUBLASLT_EPILOGUE_BIAS;
    const void *pointers[ALIGNS] = {A, B, C, D, with_bias ? (const void *)desc->bias : NULL};
    for (int i = 0; i < ALIGNS; i++)
        if (pointers[i] && alignment_of(pointers[i]) < data.align[i]) return CUBLAS_STATUS_NOT_SUPPORTED;
    const float *Af = (const float *)A, *Bf = (const float *)B;
    float *Df = (float *)D;
    gemm_check_memory(&s, Af, Bf, Df);
    if (with_bias && !device_memory_holds(desc->bias, sizeof(float) * s.m))
        emu_library_fault("cuBLASLt", "the bias vector (%d floats at %p) is not inside one device allocation", s.m,
                          (const void *)desc->bias);
    gemm_compute(&s, *(const float *)alpha, Af, Bf, *(const float *)beta, Df);
    if (with_bias)
        for (int j = 0; j < s.n; j++)
            for (int i = 0; i < s.m; i++) Df[(size_t)j * s.ldc + i] += desc->bias[i];
    return CUBLAS_STATUS_SUCCESS;
}

} // extern "C"
