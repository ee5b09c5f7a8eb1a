// kernels/cpu/matmul.c: Linear layers as cpu_gemm products. Weights are (out, in) row-major like
// PyTorch's nn.Linear, so the forward multiplies by the transposed weight.
#include <string.h>

#include "kernels/cpu/cpu_ops.h"

// out (M, N) = inp (M, K) @ weight (N, K)^T + bias (N)
void cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int M, int K, int N) {
    float beta = 0.0f;
    if (bias) {
        const size_t work = (size_t)M * N;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
        for (int i = 0; i < M; i++) memcpy(out + (size_t)i * N, bias, sizeof(float) * (size_t)N);
        beta = 1.0f;
    }
    cpu_gemm(0, 1, M, N, K, 1.0f, inp, K, weight, K, beta, out, N);
}

// dbias (N) += sum over rows of dout (M, N); each column summed in row order by one thread.
static void column_sums_add(float *dbias, const float *dout, int M, int N) {
    enum { CHUNK = 64 };
    int chunks = (N + CHUNK - 1) / CHUNK;
    const size_t work = (size_t)M * N;
#pragma omp parallel for schedule(static) CPU_PARALLEL_IF(work)
    for (int c = 0; c < chunks; c++) {
        int j0 = c * CHUNK, j1 = j0 + CHUNK < N ? j0 + CHUNK : N;
        double acc[CHUNK] = {0};
        for (int i = 0; i < M; i++) {
            const float *row = dout + (size_t)i * N;
            for (int j = j0; j < j1; j++) acc[j - j0] += row[j];
        }
        for (int j = j0; j < j1; j++) dbias[j] += (float)acc[j - j0];
    }
}

void cpu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int M, int K, int N) {
    if (dinp) // (M, K) = (M, N) @ (N, K)
        cpu_gemm(0, 0, M, K, N, 1.0f, dout, N, weight, K, 0.0f, dinp, K);
    if (dweight) // (N, K) += (M, N)^T @ (M, K)
        cpu_gemm(1, 0, N, K, M, 1.0f, dout, N, inp, K, 1.0f, dweight, K);
    if (dbias) column_sums_add(dbias, dout, M, N);
}
