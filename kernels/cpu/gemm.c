// kernels/cpu/gemm.c: every CPU matrix product, as single-threaded OpenBLAS SGEMMs over a fixed
// grid of output tiles.
//
// OpenBLAS, when it threads one product itself, may pick other micro-kernels for the parts each
// thread gets (seen with its Haswell and Zen kernels: one product gave other low bits on 2 threads
// than on 1). So dydit never lets it thread: the output is cut into tiles whose shapes depend only
// on the product's shape, each tile is one SGEMM issued from inside an OpenMP team (where
// OpenBLAS's OpenMP build runs single-threaded), and the thread count only decides which thread
// computes which tile. Every output element therefore comes from the same call with the same
// arguments on any number of threads, on any CPU.
#include <cblas.h>

#include "kernels/cpu/cpu_ops.h"

// Tiles of 128 rows by 512 columns ran as fast as OpenBLAS's own threading on 2 cores for the
// products of DiT-S (4096 x 384 x 1152 and similar) and faster for small ones.
#define GEMM_TILE_ROWS 128
#define GEMM_TILE_COLS 512

// C (M, N) = alpha * op(A) @ op(B) + beta * C, row-major; op(A) is (M, K), op(B) is (K, N).
void cpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    int row_tiles = (M + GEMM_TILE_ROWS - 1) / GEMM_TILE_ROWS, col_tiles = (N + GEMM_TILE_COLS - 1) / GEMM_TILE_COLS;
    int tiles = row_tiles * col_tiles;
    // No CPU_PARALLEL_IF here: a team of one thread that is not nested in another team would let
    // OpenBLAS thread the tile. Inside an active team this region is nested and runs serially.
#pragma omp parallel for schedule(static)
    for (int t = 0; t < tiles; t++) {
        int i0 = t / col_tiles * GEMM_TILE_ROWS, j0 = t % col_tiles * GEMM_TILE_COLS;
        int m = M - i0 < GEMM_TILE_ROWS ? M - i0 : GEMM_TILE_ROWS;
        int n = N - j0 < GEMM_TILE_COLS ? N - j0 : GEMM_TILE_COLS;
        const float *a = trans_a ? A + i0 : A + (size_t)i0 * lda;
        const float *b = trans_b ? B + (size_t)j0 * ldb : B + j0;
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, m, n, K,
                    alpha, a, lda, b, ldb, beta, C + (size_t)i0 * ldc + j0, ldc);
    }
}
