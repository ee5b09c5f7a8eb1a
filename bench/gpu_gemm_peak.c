// bench/gpu_gemm_peak.c: the GPU's bf16 GEMM rate through cuBLASLt (bf16 inputs, fp32 accumulation),
// the denominator of every MFU the GPU benchmarks report. Times a large square product and the
// dense products of a DiT-XL/2 training step at 256x256 (batch 32: 8192 token rows), each with the
// best of cuBLASLt's heuristic algorithms, and prints one JSON line per shape and a last line with
// the peak = the highest rate measured.
// Usage: gpu_gemm_peak [REPEATS]
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

enum { MAX_ALGOS = 8 };
#define WORKSPACE_BYTES ((size_t)64 << 20)

#define CHECK_CUDA(call)                                                                                               \
    do {                                                                                                               \
        cudaError_t e_ = (call);                                                                                       \
        if (e_ != cudaSuccess) die("CUDA: %s: %s", #call, cudaGetErrorString(e_));                                     \
    } while (0)
#define CHECK_LT(call)                                                                                                 \
    do {                                                                                                               \
        cublasStatus_t s_ = (call);                                                                                    \
        if (s_ != CUBLAS_STATUS_SUCCESS) die("cuBLASLt: %s: status %d", #call, (int)s_);                               \
    } while (0)

typedef struct {
    const char *name;
    int M, K, N; // out (M, N) = inp (M, K) @ weight (N, K)^T, the Ops matmul convention
} Shape;

// Uniform [-1, 1) bf16 bits (round to nearest even of a float), from a 64-bit LCG.
static uint16_t *random_bf16(size_t n, uint64_t seed) {
    uint16_t *x = xmalloc(n * sizeof(uint16_t));
    uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        float f = (float)((s >> 40) * (1.0 / (1 << 24))) * 2.0f - 1.0f;
        uint32_t bits;
        memcpy(&bits, &f, sizeof(bits));
        x[i] = (uint16_t)((bits + 0x7fff + ((bits >> 16) & 1)) >> 16);
    }
    return x;
}

static void *device_random_bf16(size_t n, uint64_t seed) {
    uint16_t *host = random_bf16(n, seed);
    void *dev;
    CHECK_CUDA(cudaMalloc(&dev, n * sizeof(uint16_t)));
    CHECK_CUDA(cudaMemcpy(dev, host, n * sizeof(uint16_t), cudaMemcpyHostToDevice));
    free(host);
    return dev;
}

// Seconds per product of the best heuristic algorithm, each timed over `repeats` back-to-back calls
// after a warm-up. Column-major view of the row-major product: out^T (N, M) = weight (K, N)^T @ inp
// (K, M), i.e. the "TN" layout with lda = ldb = K and ldc = N.
static double time_shape(cublasLtHandle_t lt, void *workspace, const Shape *s, int repeats, cudaStream_t stream) {
    void *a = device_random_bf16((size_t)s->N * s->K, 1), *b = device_random_bf16((size_t)s->M * s->K, 2), *c;
    CHECK_CUDA(cudaMalloc(&c, (size_t)s->M * s->N * sizeof(uint16_t)));

    cublasLtMatmulDesc_t op;
    CHECK_LT(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
    CHECK_LT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof(transa)));
    CHECK_LT(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof(transb)));
    cublasLtMatrixLayout_t la, lb, lc;
    CHECK_LT(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, s->K, s->N, s->K));
    CHECK_LT(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, s->K, s->M, s->K));
    CHECK_LT(cublasLtMatrixLayoutCreate(&lc, CUDA_R_16BF, s->N, s->M, s->N));
    cublasLtMatmulPreference_t pref;
    CHECK_LT(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = WORKSPACE_BYTES;
    CHECK_LT(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
    cublasLtMatmulHeuristicResult_t algos[MAX_ALGOS];
    int found = 0;
    CHECK_LT(cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, MAX_ALGOS, algos, &found));
    if (found == 0) die("cuBLASLt has no bf16 algorithm for %s (%d x %d x %d)", s->name, s->M, s->K, s->N);

    float alpha = 1.0f, beta = 0.0f;
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    double best = 1e30;
    for (int i = 0; i < found; i++) {
        if (algos[i].state != CUBLAS_STATUS_SUCCESS) continue;
        for (int r = -1; r < repeats; r++) { // r = -1: warm-up, not timed
            if (r == 0) CHECK_CUDA(cudaEventRecord(start, stream));
            CHECK_LT(cublasLtMatmul(lt, op, &alpha, a, la, b, lb, &beta, c, lc, c, lc, &algos[i].algo, workspace, ws,
                                    stream));
        }
        CHECK_CUDA(cudaEventRecord(stop, stream));
        CHECK_CUDA(cudaEventSynchronize(stop));
        float ms;
        CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
        double seconds = ms * 1e-3 / repeats;
        if (seconds < best) best = seconds;
    }
    CHECK_CUDA(cudaEventDestroy(start));
    CHECK_CUDA(cudaEventDestroy(stop));
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatrixLayoutDestroy(la);
    cublasLtMatrixLayoutDestroy(lb);
    cublasLtMatrixLayoutDestroy(lc);
    cublasLtMatmulDescDestroy(op);
    CHECK_CUDA(cudaFree(a));
    CHECK_CUDA(cudaFree(b));
    CHECK_CUDA(cudaFree(c));
    return best;
}

int main(int argc, char **argv) {
    int repeats = argc > 1 ? atoi(argv[1]) : 20;
    if (repeats < 1) die("usage: gpu_gemm_peak [REPEATS >= 1]");
    // DiT-XL/2 at 256: T = 256 tokens, D = 1152, MLP 4608; batch 32 gives 8192 rows.
    const Shape shapes[] = {
        {"square 8192", 8192, 8192, 8192},
        {"qkv", 8192, 1152, 3456},
        {"attn proj", 8192, 1152, 1152},
        {"fc1", 8192, 1152, 4608},
        {"fc2", 8192, 4608, 1152},
        {"fc1 weight grad", 4608, 8192, 1152},
        {"fc2 input grad", 8192, 1152, 4608},
    };
    struct cudaDeviceProp prop;
    CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
    cublasLtHandle_t lt;
    CHECK_LT(cublasLtCreate(&lt));
    cudaStream_t stream;
    CHECK_CUDA(cudaStreamCreate(&stream));
    void *workspace;
    CHECK_CUDA(cudaMalloc(&workspace, WORKSPACE_BYTES));
    double peak = 0;
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        const Shape *s = &shapes[i];
        double seconds = time_shape(lt, workspace, s, repeats, stream);
        double tflops = 2.0 * s->M * s->K * s->N / seconds / 1e12;
        if (tflops > peak) peak = tflops;
        printf("{\"bench\":\"gemm\",\"shape\":\"%s\",\"M\":%d,\"K\":%d,\"N\":%d,\"dtype\":\"bf16 in, fp32 accumulate\","
               "\"ms\":%.4f,\"tflops\":%.1f}\n",
               s->name, s->M, s->K, s->N, seconds * 1e3, tflops);
        fflush(stdout);
    }
    printf("{\"bench\":\"gemm_peak\",\"gpu\":\"%s\",\"peak_tflops\":%.1f,\"repeats\":%d}\n", prop.name, peak, repeats);
    CHECK_CUDA(cudaFree(workspace));
    CHECK_CUDA(cudaStreamDestroy(stream));
    cublasLtDestroy(lt);
    return 0;
}
