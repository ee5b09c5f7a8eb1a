// tests/emu/test_emu_device.cu: the emulated CUDA device itself (kernels/cuda/emu), built only into
// the emulated build (build-emu/tests/emu/test_emu_device). Without an argument it checks, against
// values worked out on the host: the warp shuffles and ballot, a block barrier, dynamic shared
// memory and its opt-in, the H100 launch limits as cudaGetLastError reports them, the runtime's
// pointer checks, and cuBLAS: every transpose pair with padded leading dimensions and alpha/beta
// against a naive product, bf16 rounding (nearest even) of FAST_16BF inputs, and the arguments
// cuBLAS and cuBLASLt refuse. With a case name it runs one kernel bug that must end the program
// with one error line (tests/cuda_emulated.sh checks the lines).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>
#include <cublas_v2.h>

static int failures;

static void check(bool ok, const char *name, const char *detail = "") {
    printf("%s emu.%s%s%s\n", ok ? "PASS" : "FAIL", name, *detail ? ": " : "", detail);
    failures += !ok;
}

template <class T> static T *device_copy(const T *host, size_t n) {
    T *p;
    cudaMalloc(&p, n * sizeof(T));
    cudaMemcpy(p, host, n * sizeof(T), cudaMemcpyHostToDevice);
    return p;
}

/* ---- warp collectives and barriers ---- */

// out (5, 64): xor 5, down 3, up 2, idx 7 of lane * 10 + warp, and the ballot of odd lanes.
__global__ void shuffles_kernel(int *out) {
    int t = threadIdx.x, v = (t % 32) * 10 + t / 32, n = blockDim.x;
    out[t] = __shfl_xor_sync(0xffffffffu, v, 5);
    out[n + t] = __shfl_down_sync(0xffffffffu, v, 3);
    out[2 * n + t] = __shfl_up_sync(0xffffffffu, v, 2);
    out[3 * n + t] = __shfl_sync(0xffffffffu, v, 7);
    out[4 * n + t] = (int)__ballot_sync(0xffffffffu, t % 2);
}

static void test_shuffles(void) {
    const int n = 64;
    int *d, got[5 * n];
    cudaMalloc(&d, sizeof got);
    shuffles_kernel<<<1, n>>>(d);
    cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost);
    bool ok = true;
    for (int t = 0; t < n; t++) {
        int lane = t % 32, warp = t / 32;
        auto value = [&](int l) { return l * 10 + warp; };
        ok &= got[t] == value(lane ^ 5);
        ok &= got[n + t] == (lane + 3 < 32 ? value(lane + 3) : value(lane));
        ok &= got[2 * n + t] == (lane >= 2 ? value(lane - 2) : value(lane));
        ok &= got[3 * n + t] == value(7);
        ok &= (unsigned)got[4 * n + t] == 0xaaaaaaaau;
    }
    check(ok, "warp_shuffles_and_ballot");
    cudaFree(d);
}

// out[t] = what thread t + 1 (mod n) wrote to shared memory before the barrier.
__global__ void barrier_kernel(int *out) {
    __shared__ int s[256];
    int t = threadIdx.x;
    s[t] = t * t;
    __syncthreads();
    out[t] = s[(t + 1) % blockDim.x];
}

// out[t] = what lane t ^ 1 of the same warp wrote before their __syncwarp.
__global__ void syncwarp_kernel(int *out) {
    __shared__ int s[64];
    int t = threadIdx.x;
    s[t] = 3 * t;
    __syncwarp();
    out[t] = s[t ^ 1];
}

static void test_syncwarp(void) {
    const int n = 64;
    int *d, got[n];
    cudaMalloc(&d, sizeof got);
    syncwarp_kernel<<<1, n>>>(d);
    cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost);
    bool ok = true;
    for (int t = 0; t < n; t++) ok &= got[t] == 3 * (t ^ 1);
    check(ok, "syncwarp_orders_shared_memory_within_a_warp");
    cudaFree(d);
}

static void test_barrier(void) {
    const int n = 256;
    int *d, got[n];
    cudaMalloc(&d, sizeof got);
    barrier_kernel<<<1, n>>>(d);
    cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost);
    bool ok = true;
    for (int t = 0; t < n; t++) ok &= got[t] == (t + 1) % n * ((t + 1) % n);
    check(ok, "block_barrier_exchanges_shared_memory");
    cudaFree(d);
}

// out[t] = the float thread (blockDim - 1 - t) stored in dynamic shared memory, `floats` per thread.
__global__ void dynamic_shared_kernel(float *out, int floats) {
    extern __shared__ float dyn[];
    int t = threadIdx.x;
    for (int i = 0; i < floats; i++) dyn[t * floats + i] = (float)(t + i);
    __syncthreads();
    out[t] = dyn[(blockDim.x - 1 - t) * floats];
}

static void test_dynamic_shared(void) {
    const int threads = 128, floats = 200; // 100 KiB: over the default 48 KiB
    size_t bytes = sizeof(float) * threads * floats;
    float *d, got[threads];
    cudaMalloc(&d, sizeof got);
    dynamic_shared_kernel<<<1, threads, bytes>>>(d, floats);
    check(cudaGetLastError() == cudaErrorInvalidValue, "shared_memory_over_48k_needs_the_attribute");
    cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
    dynamic_shared_kernel<<<1, threads, bytes>>>(d, floats);
    check(cudaGetLastError() == cudaSuccess, "shared_memory_over_48k_with_the_attribute");
    cudaMemcpy(got, d, sizeof got, cudaMemcpyDeviceToHost);
    bool ok = true;
    for (int t = 0; t < threads; t++) ok &= got[t] == (float)(threads - 1 - t);
    check(ok, "dynamic_shared_memory_contents");
    check(cudaFuncSetAttribute(dynamic_shared_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, 228 << 10) ==
              cudaErrorInvalidValue,
          "shared_memory_attribute_above_227k_refused");
    cudaGetLastError();
    cudaFree(d);
}

__global__ void empty_kernel(void) {}

static void test_launch_limits(void) {
    empty_kernel<<<1, 1025>>>();
    check(cudaGetLastError() == cudaErrorInvalidConfiguration, "block_of_1025_threads_refused");
    check(cudaGetLastError() == cudaSuccess, "launch_error_cleared_once_read");
    empty_kernel<<<dim3(1, 65536), 32>>>();
    check(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid_y_above_65535_refused");
    empty_kernel<<<dim3(1, 1, 65536), 32>>>();
    check(cudaGetLastError() == cudaErrorInvalidConfiguration, "grid_z_above_65535_refused");
    empty_kernel<<<dim3(1, 65535), dim3(32, 32)>>>();
    check(cudaGetLastError() == cudaSuccess, "grid_y_65535_of_1024_threads_runs");
    empty_kernel<<<1, dim3(1, 1, 65)>>>();
    check(cudaGetLastError() == cudaErrorInvalidConfiguration, "block_z_above_64_refused");
}

static void test_runtime_pointers(void) {
    float host[4] = {0}, *d;
    cudaMalloc(&d, sizeof host);
    check(cudaMemcpy(host, host, sizeof host, cudaMemcpyHostToDevice) == cudaErrorInvalidValue,
          "copy_to_host_memory_as_device_refused");
    check(cudaMemcpy(d, d, 2 * sizeof host, cudaMemcpyDeviceToDevice) == cudaErrorInvalidValue,
          "copy_past_an_allocation_refused");
    check(cudaFree(host) == cudaErrorInvalidValue, "free_of_host_memory_refused");
    cudaGetLastError();
    cudaFree(d);
}

/* ---- cuBLAS ---- */

// Column-major C (m, n) = alpha op(A) op(B) + beta C in double, the reference.
static void naive_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
                       int ldb, float beta, float *C, int ldc) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)A[ta ? i * lda + p : p * lda + i] * B[tb ? p * ldb + j : j * ldb + p];
            C[j * ldc + i] = (float)(alpha * s + beta * C[j * ldc + i]);
        }
}

static float random_float(void) { return (float)rand() / RAND_MAX * 2 - 1; }

static void test_gemm_semantics(cublasHandle_t h) {
    const int m = 7, n = 5, k = 9, pad = 3;
    bool ok = true;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int lda = (ta ? k : m) + pad, ldb = (tb ? n : k) + pad, ldc = m + pad;
            float A[(k + pad) * (k + pad)], B[(k + pad) * (k + pad)], C[ldc * n], want[ldc * n], got[ldc * n];
            for (float &x : A) x = random_float();
            for (float &x : B) x = random_float();
            for (float &x : C) x = random_float();
            memcpy(want, C, sizeof C);
            float alpha = 0.75f, beta = -0.5f;
            naive_gemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, want, ldc);
            float *dA = device_copy(A, sizeof A / 4), *dB = device_copy(B, sizeof B / 4), *dC = device_copy(C, ldc * n);
            cublasStatus_t st = cublasGemmEx(h, ta ? CUBLAS_OP_T : CUBLAS_OP_N, tb ? CUBLAS_OP_T : CUBLAS_OP_N, m, n, k,
                                             &alpha, dA, CUDA_R_32F, lda, dB, CUDA_R_32F, ldb, &beta, dC, CUDA_R_32F,
                                             ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
            cudaMemcpy(got, dC, sizeof got, cudaMemcpyDeviceToHost);
            ok &= st == CUBLAS_STATUS_SUCCESS;
            for (int j = 0; j < n; j++)
                for (int i = 0; i < ldc; i++) {
                    float w = i < m ? want[j * ldc + i] : C[j * ldc + i]; // the padding is left alone
                    ok &= fabsf(got[j * ldc + i] - w) <= 1e-5f * (1 + fabsf(w));
                }
            cudaFree(dA), cudaFree(dB), cudaFree(dC);
        }
    check(ok, "gemm_transposes_leading_dimensions_alpha_beta");
}

// The bf16 value nearest to x (ties to even) by arithmetic: x scaled so that its 8 significant
// bits are the integer part, rounded by rint (nearest even in the default mode), scaled back.
static float bf16_reference(float x) {
    int e;
    frexpf(x, &e);
    return ldexpf(rintf(ldexpf(x, 8 - e)), e - 8);
}

static void test_bf16_rounding(cublasHandle_t h) {
    // products of two bf16 values are exact in fp32, so a 1x1x1 product shows the rounding of both
    const int count = 4096;
    float a[count], b[count];
    for (int i = 0; i < count; i++) a[i] = random_float() * 100, b[i] = random_float();
    // ties: 1 + 2^-8 (to 1, even) and 1 + 3 * 2^-8 (to 1 + 2^-6... up to the even neighbour)
    a[0] = 1.0f + 1.0f / 256, a[1] = 1.0f + 3.0f / 256, b[0] = b[1] = 1.0f;
    float *da = device_copy(a, count), *db = device_copy(b, count), *dc;
    cudaMalloc(&dc, sizeof(float) * count);
    float one = 1, zero = 0, got[count];
    cublasStatus_t st = cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 1, 1, 1, &one, da, CUDA_R_32F, 1, 1, db,
                                                   CUDA_R_32F, 1, 1, &zero, dc, CUDA_R_32F, 1, 1, count,
                                                   CUBLAS_COMPUTE_32F_FAST_16BF, CUBLAS_GEMM_DEFAULT);
    cudaMemcpy(got, dc, sizeof got, cudaMemcpyDeviceToHost);
    bool ok = st == CUBLAS_STATUS_SUCCESS;
    for (int i = 0; i < count; i++) ok &= got[i] == bf16_reference(a[i]) * bf16_reference(b[i]);
    ok &= got[0] == 1.0f && got[1] == 1.0f + 4.0f / 256;
    check(ok, "fast_16bf_rounds_inputs_to_nearest_even");
    cudaFree(da), cudaFree(db), cudaFree(dc);
}

static void test_library_refusals(cublasHandle_t h) {
    float one = 1, *d;
    cudaMalloc(&d, sizeof(float) * 64);
    check(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, d, CUDA_R_32F, 3, d, CUDA_R_32F, 4, &one, d,
                       CUDA_R_32F, 4, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_INVALID_VALUE,
          "cublas_lda_below_rows_refused");
    check(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, 4, 4, 4, &one, d, CUDA_R_32F, 4, d, CUDA_R_32F, 4, &one, d,
                       CUDA_R_32F, 4, CUBLAS_COMPUTE_16F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_NOT_SUPPORTED,
          "cublas_fp16_compute_on_fp32_refused");
    cublasLtHandle_t lt;
    cublasLtCreate(&lt);
    cublasLtMatrixLayout_t bad, a;
    check(cublasLtMatrixLayoutCreate(&bad, CUDA_R_32F, 8, 4, 7) == CUBLAS_STATUS_INVALID_VALUE,
          "cublaslt_ld_below_rows_refused");
    cublasLtMatrixLayoutCreate(&a, CUDA_R_32F, 4, 4, 4);
    cublasLtMatmulDesc_t desc;
    cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F_FAST_16BF, CUDA_R_32F);
    cublasLtEpilogue_t bias_epilogue = CUBLASLT_EPILOGUE_BIAS;
    const float *bias = d + 1; // 4-byte aligned only
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &bias_epilogue, sizeof bias_epilogue);
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    cublasLtMatmulPreference_t pref;
    cublasLtMatmulPreferenceCreate(&pref);
    cublasLtMatmulHeuristicResult_t result;
    int returned = 0;
    cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(lt, desc, a, a, a, a, pref, 1, &result, &returned);
    check(st == CUBLAS_STATUS_NOT_SUPPORTED && returned == 0, "cublaslt_misaligned_bias_gets_no_algorithm");
    bias = d;
    cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias);
    st = cublasLtMatmulAlgoGetHeuristic(lt, desc, a, a, a, a, pref, 1, &result, &returned);
    check(st == CUBLAS_STATUS_SUCCESS && returned == 1, "cublaslt_aligned_bias_gets_an_algorithm");
    // the algorithm was chosen for 256-byte aligned matrices; d + 4 is 16-byte aligned only
    st = cublasLtMatmul(lt, desc, &one, d + 4, a, d, a, &one, d + 16, a, d + 16, a, &result.algo, NULL, 0, 0);
    check(st == CUBLAS_STATUS_NOT_SUPPORTED, "cublaslt_pointer_less_aligned_than_promised_refused");
    cublasLtMatmulPreferenceDestroy(pref);
    cublasLtMatmulDescDestroy(desc);
    cublasLtMatrixLayoutDestroy(a);
    cublasLtDestroy(lt);
    cudaFree(d);
}

/* ---- kernel bugs the device must report (one per run) ---- */

__global__ void race_kernel(int *out) {
    __shared__ int s[32];
    if (threadIdx.x == 0) s[0] = 1;
    out[threadIdx.x] = s[0]; // no barrier between thread 0's write and the others' reads
}

// Thread 1 reads s[0] after the barrier; thread 0, held back by a warp sync of its own lane only,
// then overwrites it without a second barrier.
__global__ void write_after_read_kernel(int *out) {
    __shared__ int s[32];
    s[threadIdx.x] = (int)threadIdx.x;
    __syncthreads();
    if (threadIdx.x == 1) out[1] = s[0];
    if (threadIdx.x == 0) {
        __syncwarp(1u);
        s[0] = 7;
    }
}

__global__ void uninitialised_kernel(int *out) {
    __shared__ int s[32];
    out[threadIdx.x] = s[threadIdx.x];
}

__global__ void past_end_kernel(float *x, int n) { x[threadIdx.x + n - 1] = 1.0f; }

// Every block adds into x[0]: without atomics, the blocks' order decides the result.
__global__ void blocks_race_kernel(float *x) {
    if (threadIdx.x == 0) x[0] += 1.0f;
}

__global__ void host_pointer_kernel(float *out, const float *host) { out[threadIdx.x] = host[threadIdx.x]; }

__global__ void shuffle_kernel(int *out) { out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1); }

__global__ void exited_lane_kernel(int *out) {
    if (threadIdx.x == 5) return;
    out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, (int)threadIdx.x, 1);
}

__global__ void divergent_barrier_kernel(void) {
    if (threadIdx.x == 0)
        __syncwarp();
    else
        __syncthreads();
}

static int run_bug(const char *name) {
    int *out;
    float *x;
    cudaMalloc(&out, sizeof(int) * 64);
    cudaMalloc(&x, sizeof(float) * 64);
    float host[64] = {0};
    if (!strcmp(name, "race"))
        race_kernel<<<1, 32>>>(out);
    else if (!strcmp(name, "write_after_read"))
        write_after_read_kernel<<<1, 32>>>(out);
    else if (!strcmp(name, "uninitialised"))
        uninitialised_kernel<<<1, 32>>>(out);
    else if (!strcmp(name, "past_end"))
        past_end_kernel<<<1, 2>>>(x, 64);
    else if (!strcmp(name, "blocks_race"))
        blocks_race_kernel<<<2, 32>>>(x);
    else if (!strcmp(name, "host_pointer"))
        host_pointer_kernel<<<1, 32>>>(x, host);
    else if (!strcmp(name, "partial_warp"))
        shuffle_kernel<<<1, 48>>>(out);
    else if (!strcmp(name, "exited_lane"))
        exited_lane_kernel<<<1, 32>>>(out);
    else if (!strcmp(name, "divergent_barrier"))
        divergent_barrier_kernel<<<1, 64>>>();
    else {
        fprintf(stderr, "error: unknown case '%s'\n", name);
        return 2;
    }
    printf("the kernel ran without a report\n");
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 2) return run_bug(argv[1]);
    test_shuffles();
    test_barrier();
    test_syncwarp();
    test_dynamic_shared();
    test_launch_limits();
    test_runtime_pointers();
    cublasHandle_t h;
    cublasCreate(&h);
    test_gemm_semantics(h);
    test_bf16_rounding(h);
    test_library_refusals(h);
    cublasDestroy(h);
    return failures ? 1 : 0;
}
