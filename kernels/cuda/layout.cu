// kernels/cuda/layout.cu: pure data movement for the SD VAE: nearest-neighbour up-sampling and the
// (C, H*W) <-> (H*W, C) transposes around its attention (kernels/cpu/layout.c).
#include "kernels/cuda/cuda_common.cuh"

enum { UPSAMPLE_THREADS = 256, TILE = 32, TILE_ROWS = 8 };

// x (B, C, H, W) -> out (B, C, 2H, 2W); one thread per output element. 20 B C H W bytes (the
// input mostly from cache).
__global__ void upsample_nearest2x_kernel(float *out, const float *x, int H, int W, size_t total) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    size_t out_plane = (size_t)4 * H * W, plane = i / out_plane, rem = i % out_plane;
    size_t y = rem / (2 * W), col = rem % (2 * W);
    out[i] = x[(plane * H + y / 2) * W + col / 2];
}

void cuda_upsample_nearest2x(float *out, const float *x, int B, int C, int H, int W) {
    size_t total = (size_t)B * C * H * W * 4;
    if (total == 0) return;
    upsample_nearest2x_kernel<<<cuda_blocks(total, UPSAMPLE_THREADS), UPSAMPLE_THREADS, 0, cuda_stream()>>>(out, x, H,
                                                                                                            W, total);
    CUDA_CHECK_LAUNCH();
}

// x (B, rows, cols) -> out (B, cols, rows) through a 32 x 32 shared tile (padded against bank
// conflicts), so both the reads and the writes are coalesced. Block (32, 8), grid (column tiles,
// row tiles, B). 8 B rows cols bytes.
__global__ void transpose_kernel(float *out, const float *x, int rows, int cols) {
    __shared__ float tile[TILE][TILE + 1];
    size_t base = (size_t)blockIdx.z * rows * cols;
    int r0 = blockIdx.y * TILE, c0 = blockIdx.x * TILE;
    for (int dy = threadIdx.y; dy < TILE; dy += TILE_ROWS) {
        int r = r0 + dy, c = c0 + threadIdx.x;
        if (r < rows && c < cols) tile[dy][threadIdx.x] = x[base + (size_t)r * cols + c];
    }
    __syncthreads();
    for (int dy = threadIdx.y; dy < TILE; dy += TILE_ROWS) {
        int c = c0 + dy, r = r0 + threadIdx.x;
        if (r < rows && c < cols) out[base + (size_t)c * rows + r] = tile[threadIdx.x][dy];
    }
}

void cuda_transpose(float *out, const float *x, int B, int rows, int cols) {
    if (B == 0 || rows == 0 || cols == 0) return;
    unsigned row_tiles = cuda_blocks((size_t)rows, TILE), col_tiles = cuda_blocks((size_t)cols, TILE);
    if (B > 65535 || row_tiles > 65535) die("transpose: %d x (%d, %d) exceeds the CUDA grid", B, rows, cols);
    transpose_kernel<<<dim3(col_tiles, row_tiles, (unsigned)B), dim3(TILE, TILE_ROWS), 0, cuda_stream()>>>(out, x, rows,
                                                                                                           cols);
    CUDA_CHECK_LAUNCH();
}
