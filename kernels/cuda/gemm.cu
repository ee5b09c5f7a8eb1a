// kernels/cuda/gemm.cu: Linear layers. out (M, N) = inp (M, K) @ weight (N, K)^T + bias runs as
// one cuBLASLt matmul with the bias added in its epilogue; the backward is two GEMMs and a
// deterministic column sum.
//
// Cost: 2 M N K FLOPs per product. For DiT-XL/2 at batch 32 (M = 8192 tokens, K, N in {1152, 3456,
// 4608}) one product is 22-87 GFLOP against 50-200 MB of fp32 operands, so they are compute-bound
// and run on tensor cores: in BF16 precision cuBLAS(Lt) rounds the fp32 operands to bf16 inside the
// kernel (CUBLAS_COMPUTE_32F_FAST_16BF) and accumulates in fp32. That avoids a separate conversion
// pass and bf16 copies of the activations (which would cost 6 bytes of traffic per operand element
// before the product even starts); in FP32 precision it computes in strict fp32.
//
// cuBLAS is column-major: row-major out (M, N) is column-major out^T (N, M) = weight . inp^T with
// weight seen as its column-major (K, N) transpose, so every product below is written transposed.
#include <string.h>

#include "kernels/cuda/gemm.cuh"

// Largest power of two (up to 256) dividing the address: cuBLASLt picks kernels by the alignment
// it is promised, 256 bytes unless told otherwise, and weights sit at arbitrary float offsets.
static uint32_t alignment_of(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t align = 256;
    while (align > 4 && a % align) align /= 2;
    return align;
}

// A matmul descriptor, its layouts and the heuristic's choice for one shape, cached: building them
// and querying the heuristic costs more than launching a mid-sized GEMM.
typedef struct {
    int transa, transb, m, n, k, lda, ldb, ldc, precision, has_bias;
    uint32_t align_a, align_b, align_c, align_bias;
} PlanKey;

typedef struct {
    PlanKey key;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, c;
    cublasLtMatmulAlgo_t algo;
    int found; // 0: cuBLASLt offers no algorithm; use cublasGemmEx
} Plan;

enum { PLAN_CACHE = 256 };
static Plan plans[PLAN_CACHE];
static int plan_count, plan_evict;

static void plan_destroy(Plan *p) {
    cublasLtMatrixLayoutDestroy(p->a);
    cublasLtMatrixLayoutDestroy(p->b);
    cublasLtMatrixLayoutDestroy(p->c);
    cublasLtMatmulDescDestroy(p->desc);
}

static void plan_build(Plan *p, const PlanKey *key, const float *bias) {
    memset(p, 0, sizeof *p);
    p->key = *key;
    cublasComputeType_t compute =
        key->precision == CUDA_PRECISION_FP32 ? CUBLAS_COMPUTE_32F : CUBLAS_COMPUTE_32F_FAST_16BF;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p->desc, compute, CUDA_R_32F));
    cublasOperation_t ta = (cublasOperation_t)key->transa, tb = (cublasOperation_t)key->transb;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    if (key->has_bias) {
        cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
        CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue));
        // the heuristic reads the pointer's alignment
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    }
    // stored shapes: op(A) is (m, k), op(B) is (k, n)
    int a_rows = ta == CUBLAS_OP_N ? key->m : key->k, a_cols = ta == CUBLAS_OP_N ? key->k : key->m;
    int b_rows = tb == CUBLAS_OP_N ? key->k : key->n, b_cols = tb == CUBLAS_OP_N ? key->n : key->k;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->a, CUDA_R_32F, a_rows, a_cols, key->lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->b, CUDA_R_32F, b_rows, b_cols, key->ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p->c, CUDA_R_32F, key->m, key->n, key->ldc));

    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t workspace = CUDA_LT_WORKSPACE;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                                      sizeof workspace));
    const struct {
        cublasLtMatmulPreferenceAttributes_t attr;
        uint32_t value;
    } aligns[] = {{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key->align_a},
                  {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key->align_b},
                  {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key->align_c},
                  {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key->align_c}};
    for (const auto &a : aligns)
        CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, a.attr, &a.value, sizeof a.value));
    cublasLtMatmulHeuristicResult_t result;
    int returned = 0;
    cublasStatus_t st =
        cublasLtMatmulAlgoGetHeuristic(cuda_cublaslt(), p->desc, p->a, p->b, p->c, p->c, pref, 1, &result, &returned);
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    if (st == CUBLAS_STATUS_SUCCESS && returned > 0) {
        p->algo = result.algo;
        p->found = 1;
    }
}

static const Plan *plan_for(const PlanKey *key, const float *bias) {
    for (int i = 0; i < plan_count; i++)
        if (!memcmp(&plans[i].key, key, sizeof *key)) return &plans[i];
    Plan *p;
    if (plan_count < PLAN_CACHE) {
        p = &plans[plan_count++];
    } else { // replace the oldest entry
        p = &plans[plan_evict];
        plan_evict = (plan_evict + 1) % PLAN_CACHE;
        plan_destroy(p);
    }
    plan_build(p, key, bias);
    return p;
}

// C (rows, cols) column-major with leading dimension ldc: every column = bias (rows). Only for
// biases cuBLASLt's epilogue cannot take (the product then adds onto it with beta = 1); one thread
// per element, consecutive threads down a column: coalesced 4-byte writes, the bias read from cache.
__global__ void fill_columns_kernel(float *C, const float *bias, int rows, int cols, int ldc) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i >= (size_t)rows * cols) return;
    size_t col = i / rows, row = i % rows;
    C[col * ldc + row] = bias[row];
}

// Column-major C (m, n) = op(A) op(B) + beta C (+ bias (m) on every column when bias != NULL).
static void gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const float *A, int lda,
                 const float *B, int ldb, float beta, float *C, int ldc, const float *bias) {
    float alpha = 1.0f;
    PlanKey key;
    memset(&key, 0, sizeof key);
    key.transa = ta, key.transb = tb, key.m = m, key.n = n, key.k = k, key.lda = lda, key.ldb = ldb, key.ldc = ldc;
    key.precision = cuda_get_precision();
    key.align_a = alignment_of(A), key.align_b = alignment_of(B), key.align_c = alignment_of(C);
    if (bias && alignment_of(bias) >= 16) { // cuBLASLt's bias epilogue wants a 16-byte aligned vector
        key.has_bias = 1, key.align_bias = alignment_of(bias);
        const Plan *p = plan_for(&key, bias);
        if (p->found) {
            CUBLAS_CHECK(
                cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
            CUBLAS_CHECK(cublasLtMatmul(cuda_cublaslt(), p->desc, &alpha, A, p->a, B, p->b, &beta, C, p->c, C, p->c,
                                        &p->algo, cuda_lt_workspace(), CUDA_LT_WORKSPACE, cuda_stream()));
            return;
        }
        key.has_bias = 0, key.align_bias = 0;
    }
    if (bias) { // no epilogue: start from the broadcast bias and accumulate onto it
        fill_columns_kernel<<<cuda_blocks((size_t)m * n, 256), 256, 0, cuda_stream()>>>(C, bias, m, n, ldc);
        CUDA_CHECK_LAUNCH();
        beta = 1.0f;
    }
    const Plan *p = plan_for(&key, NULL);
    if (p->found)
        CUBLAS_CHECK(cublasLtMatmul(cuda_cublaslt(), p->desc, &alpha, A, p->a, B, p->b, &beta, C, p->c, C, p->c,
                                    &p->algo, cuda_lt_workspace(), CUDA_LT_WORKSPACE, cuda_stream()));
    else
        CUBLAS_CHECK(cublasGemmEx(cuda_cublas(), ta, tb, m, n, k, &alpha, A, CUDA_R_32F, lda, B, CUDA_R_32F, ldb, &beta,
                                  C, CUDA_R_32F, ldc, gemm_compute_type(), CUBLAS_GEMM_DEFAULT));
}

// out (M, N) = inp (M, K) @ weight (N, K)^T + bias (N)
void cuda_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int M, int K, int N) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0) { // an empty product: just the bias
        if (bias) {
            fill_columns_kernel<<<cuda_blocks((size_t)M * N, 256), 256, 0, cuda_stream()>>>(out, bias, N, M, N);
            CUDA_CHECK_LAUNCH();
        } else {
            cuda_zero(out, sizeof(float) * M * N);
        }
        return;
    }
    // column-major out^T (N, M) = weight^T^T (N, K) . inp^T (K, M)
    gemm(CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, weight, K, inp, K, 0.0f, out, N, bias);
}

// The column sums of dout (M, N) in two fixed-order passes, in double like the CPU: first each
// block sums a chunk of COLSUM_ROWS rows for 32 columns (a warp reads 32 consecutive floats of a
// row: coalesced), its 8 row-groups combined in a fixed order; then one thread per column adds the
// chunk partials in chunk order. M N floats read once; no atomics, so the result is reproducible.
enum { COLSUM_ROWS = 256, COLSUM_GROUPS = 8 };

// partial (chunks, N) = sums of dout (M, N) over each chunk of COLSUM_ROWS rows.
__global__ void column_partial_sums_kernel(double *partial, const float *dout, int M, int N) {
    __shared__ double acc[COLSUM_GROUPS][32];
    int col = blockIdx.x * 32 + threadIdx.x;
    int r0 = blockIdx.y * COLSUM_ROWS, r1 = min(M, r0 + COLSUM_ROWS);
    double s = 0.0;
    if (col < N)
        for (int r = r0 + threadIdx.y; r < r1; r += COLSUM_GROUPS) s += dout[(size_t)r * N + col];
    acc[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && col < N) {
        for (int g = 1; g < COLSUM_GROUPS; g++) s += acc[g][threadIdx.x];
        partial[(size_t)blockIdx.y * N + col] = s;
    }
}

// dbias (N) += sum over chunks of partial (chunks, N).
__global__ void column_sums_add_kernel(float *dbias, const double *partial, int chunks, int N) {
    int col = blockIdx.x * blockDim.x + threadIdx.x;
    if (col >= N) return;
    double s = 0.0;
    for (int c = 0; c < chunks; c++) s += partial[(size_t)c * N + col];
    dbias[col] += (float)s;
}

// dinp (M, K) = dout (M, N) @ weight (N, K); dweight (N, K) += dout^T @ inp (M, K);
// dbias (N) += column sums of dout. Each GEMM costs 2 M N K FLOPs.
void cuda_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int M, int K, int N) {
    if (M <= 0) return;
    if (dinp && K > 0) {
        if (N > 0) // column-major dinp^T (K, M) = weight^T (K, N) . dout^T (N, M)
            gemm(CUBLAS_OP_N, CUBLAS_OP_N, K, M, N, weight, K, dout, N, 0.0f, dinp, K, NULL);
        else
            cuda_zero(dinp, sizeof(float) * M * K);
    }
    if (N <= 0) return;
    if (dweight && K > 0) // column-major dweight^T (K, N) += inp^T (K, M) . dout (M, N)
        gemm(CUBLAS_OP_N, CUBLAS_OP_T, K, N, M, inp, K, dout, N, 1.0f, dweight, K, NULL);
    if (dbias) {
        int chunks = (M + COLSUM_ROWS - 1) / COLSUM_ROWS;
        double *partial = (double *)cuda_scratch(sizeof(double) * chunks * N);
        dim3 grid((N + 31) / 32, chunks), block(32, COLSUM_GROUPS);
        column_partial_sums_kernel<<<grid, block, 0, cuda_stream()>>>(partial, dout, M, N);
        CUDA_CHECK_LAUNCH();
        column_sums_add_kernel<<<cuda_blocks(N, 256), 256, 0, cuda_stream()>>>(dbias, partial, chunks, N);
        CUDA_CHECK_LAUNCH();
    }
}
