// kernels/cuda/patches.cu: images <-> token sequences, the index maps of kernels/cpu/patches.c.
// The input side follows the patch Conv2d's kernel layout (c, py, px); the output side follows
// DiT's unpatchify, whose tokens hold (py, px, c). One thread per token element (coalesced on the
// token side); each op moves 8 B C H W bytes.
#include "kernels/cuda/cuda_common.cuh"

enum { PATCH_THREADS = 256 };

// img (B, C, H, W) -> patches (B, T, C*p*p), patch vector ordered (c, py, px)
__global__ void patchify_kernel(float *patches, const float *img, int C, int H, int W, int p, int gw, int T,
                                size_t total) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    int P = C * p * p, j = (int)(i % P);
    size_t token = i / P;
    int t = (int)(token % T), b = (int)(token / T);
    int c = j / (p * p), py = j / p % p, px = j % p, gy = t / gw, gx = t % gw;
    patches[i] = img[(((size_t)b * C + c) * H + gy * p + py) * W + gx * p + px];
}

void cuda_patchify(float *patches, const float *img, int B, int C, int H, int W, int p) {
    int gw = W / p, T = (H / p) * gw;
    size_t total = (size_t)B * T * C * p * p;
    if (total == 0) return;
    patchify_kernel<<<cuda_blocks(total, PATCH_THREADS), PATCH_THREADS, 0, cuda_stream()>>>(patches, img, C, H, W, p,
                                                                                            gw, T, total);
    CUDA_CHECK_LAUNCH();
}

// Pixel offset in img (B, C, H, W) of element i of tokens (B, T, p*p*C) ordered (py, px, c).
__device__ __forceinline__ size_t unpatchify_pixel(size_t i, int C, int H, int W, int p, int gw, int T) {
    int P = p * p * C, j = (int)(i % P);
    size_t token = i / P;
    int t = (int)(token % T), b = (int)(token / T);
    int c = j % C, py = j / C / p, px = j / C % p, gy = t / gw, gx = t % gw;
    return (((size_t)b * C + c) * H + gy * p + py) * W + gx * p + px;
}

// to_image: tokens -> img, else img -> tokens (a permutation: the backward is the inverse copy).
__global__ void unpatchify_kernel(float *img, float *tokens, int C, int H, int W, int p, int gw, int T, size_t total,
                                  bool to_image) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    size_t pixel = unpatchify_pixel(i, C, H, W, p, gw, T);
    if (to_image)
        img[pixel] = tokens[i];
    else
        tokens[i] = img[pixel];
}

static void unpatchify_copy(float *img, float *tokens, int B, int C, int H, int W, int p, bool to_image) {
    int gw = W / p, T = (H / p) * gw;
    size_t total = (size_t)B * T * p * p * C;
    if (total == 0) return;
    unpatchify_kernel<<<cuda_blocks(total, PATCH_THREADS), PATCH_THREADS, 0, cuda_stream()>>>(img, tokens, C, H, W, p,
                                                                                              gw, T, total, to_image);
    CUDA_CHECK_LAUNCH();
}

// tokens (B, T, p*p*C) -> img (B, C, H, W)
void cuda_unpatchify_forward(float *img, const float *tokens, int B, int C, int H, int W, int p) {
    unpatchify_copy(img, (float *)tokens, B, C, H, W, p, true);
}

// dimg (B, C, H, W) -> dtokens (B, T, p*p*C)
void cuda_unpatchify_backward(float *dtokens, const float *dimg, int B, int C, int H, int W, int p) {
    unpatchify_copy((float *)dimg, dtokens, B, C, H, W, p, false);
}
