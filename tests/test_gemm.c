// tests/test_gemm.c: cpu_gemm, the one entry to the CPU's matrix products: every transpose against
// a double-precision loop, with alpha, beta and leading dimensions wider than the matrices, on
// shapes that cut tiles at odd places; and bitwise the same result on 1, 2 and 3 threads.
// tests/blas_kernels.sh runs this program under every OpenBLAS kernel family the CPU supports.
#include <omp.h>
#include <string.h>

#include "kernels/cpu/cpu_ops.h"
#include "kernels/philox.h"
#include "tests/check.h"

static float *random_matrix(size_t n, uint32_t stream) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_open01(rng_u32(7, stream, 0, 0, i)) - 0.5f;
    return x;
}

// max |C - C_ref| / (|alpha| sum_k |a||b| + |beta C0|): the error bound of fp32 accumulation.
static double gemm_error(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                         int ldb, float beta, const float *C0, const float *C, int ldc) {
    double worst = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double acc = 0, mag = 0;
            for (int k = 0; k < K; k++) {
                double a = ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k];
                double b = tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j];
                acc += a * b;
                mag += fabs(a * b);
            }
            double c0 = C0[(size_t)i * ldc + j], want = alpha * acc + beta * c0;
            double err = fabs(C[(size_t)i * ldc + j] - want) / (fabs(alpha) * mag + fabs(beta * c0) + 1e-30);
            if (err > worst) worst = err;
        }
    return worst;
}

int main(void) {
    // (M, N, K): below, at and across the 128 x 512 tiles, and a product large enough for OpenBLAS
    // to thread it if it were asked to.
    static const int shapes[][3] = {{1, 1, 1},     {5, 7, 3},      {128, 512, 64}, {129, 513, 33},
                                    {300, 77, 100}, {17, 1200, 40}, {1024, 768, 256}};
    int nshapes = (int)(sizeof(shapes) / sizeof(shapes[0]));
    for (int s = 0; s < nshapes; s++)
        for (int tr = 0; tr < 4; tr++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = tr & 1, tb = tr >> 1;
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
            size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
            float *A = random_matrix(na, 1), *B = random_matrix(nb, 2), *C0 = random_matrix(nc, 3);
            float *C[3];
            for (int t = 0; t < 3; t++) {
                C[t] = malloc(nc * sizeof(float));
                memcpy(C[t], C0, nc * sizeof(float));
                omp_set_num_threads(t + 1);
                cpu_gemm(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.5f, C[t], ldc);
            }
            char name[96];
            snprintf(name, sizeof(name), "gemm.%s%s_%dx%dx%d", ta ? "T" : "N", tb ? "T" : "N", M, N, K);
            if ((double)M * N * K <= 5e6) {
                double err = gemm_error(ta, tb, M, N, K, 0.75f, A, lda, B, ldb, 0.5f, C0, C[0], ldc);
                char what[160];
                snprintf(what, sizeof(what), "%s.against_double", name);
                check(err < 1e-5, what, "worst error %.3g of the accumulation bound", err);
            }
            char what[160];
            snprintf(what, sizeof(what), "%s.thread_count_independent", name);
            check(memcmp(C[0], C[1], nc * sizeof(float)) == 0 && memcmp(C[0], C[2], nc * sizeof(float)) == 0, what,
                  "%s", "1, 2 and 3 threads bitwise equal");
            for (int t = 0; t < 3; t++) free(C[t]);
            free(A), free(B), free(C0);
        }
    return check_exit();
}
