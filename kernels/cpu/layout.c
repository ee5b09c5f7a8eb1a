// kernels/cpu/layout.c: pure data movement for the SD VAE: nearest-neighbour up-sampling and the
// (C, H*W) <-> (H*W, C) transposes around its attention.
#include "kernels/cpu/cpu_ops.h"

// x (B, C, H, W) -> out (B, C, 2H, 2W)
void cpu_upsample_nearest2x(float *out, const float *x, int B, int C, int H, int W) {
    const size_t work = (size_t)B * C * H * W * 4;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int plane = 0; plane < B * C; plane++)
        for (int y = 0; y < H; y++) {
            const float *src = x + ((size_t)plane * H + y) * W;
            float *top = out + ((size_t)plane * 2 * H + 2 * y) * 2 * W, *bottom = top + 2 * W;
            for (int i = 0; i < W; i++) top[2 * i] = top[2 * i + 1] = src[i];
            for (int i = 0; i < 2 * W; i++) bottom[i] = top[i];
        }
}

// Square blocks keep both the rows read and the rows written in cache.
#define TRANSPOSE_BLOCK 32

// x (B, rows, cols) -> out (B, cols, rows)
void cpu_transpose(float *out, const float *x, int B, int rows, int cols) {
    int row_blocks = (rows + TRANSPOSE_BLOCK - 1) / TRANSPOSE_BLOCK;
    const size_t work = (size_t)B * rows * cols;
#pragma omp parallel for collapse(2) schedule(static) CPU_PARALLEL_IF(work)
    for (int b = 0; b < B; b++)
        for (int rb = 0; rb < row_blocks; rb++) {
            const float *xb = x + (size_t)b * rows * cols;
            float *ob = out + (size_t)b * rows * cols;
            int r0 = rb * TRANSPOSE_BLOCK, r1 = r0 + TRANSPOSE_BLOCK < rows ? r0 + TRANSPOSE_BLOCK : rows;
            for (int c0 = 0; c0 < cols; c0 += TRANSPOSE_BLOCK) {
                int c1 = c0 + TRANSPOSE_BLOCK < cols ? c0 + TRANSPOSE_BLOCK : cols;
                for (int r = r0; r < r1; r++)
                    for (int c = c0; c < c1; c++) ob[(size_t)c * rows + r] = xb[(size_t)r * cols + c];
            }
        }
}
