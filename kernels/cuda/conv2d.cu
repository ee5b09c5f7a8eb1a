// kernels/cuda/conv2d.cu: 2-D convolution (the SD VAE's; inference only) as im2col into the
// backend scratch + one strided-batched GEMM per chunk, then the bias.
//
// A convolution costs 2 B Co Ho Wo Ci k k FLOPs. The im2col matrix of one image, (Ci k k, Ho Wo),
// holds k k copies of the input (1.2 GB for a 512x512 image with 128 channels and a 3x3 kernel), so
// it is built for a chunk at a time, at most CONV_SCRATCH_FLOATS: whole images when they fit,
// else runs of output pixels of one image. Writing and re-reading it costs 8 bytes per element
// against that element's 2 Co FLOPs, which for the VAE's 128-512 channels can take as long as the
// product itself; an implicit-GEMM kernel would avoid it.
//
// cuBLAS is column-major: out_b (Co, Ho*Wo) row-major is the column-major (Ho*Wo, Co) matrix
// col_b^T . weight^T, with col_b (Ci*k*k, P) row-major and weight (Co, Ci*k*k) row-major.
#include <algorithm>

#include "kernels/cuda/gemm.cuh"

#define CONV_SCRATCH_FLOATS ((size_t)64 << 20) // 256 MiB

typedef struct {
    int Ci, H, W, k, stride, pad_top, pad_left, Ho, Wo;
} ConvGeom;

// col (images, Ci*k*k, P): row (ci, ky, kx), column j = the input under that kernel tap for output
// pixel p0 + j of image b0 + i of x (B, Ci, H, W), zero in the padding. One thread per element
// (4 bytes written, at most 4 read, mostly from cache: each input is read by k k taps), consecutive
// threads on consecutive pixels, so writes are coalesced and reads stride by `stride`.
__global__ void im2col_kernel(float *col, const float *x, ConvGeom g, int b0, int images, int p0, int P) {
    size_t K = (size_t)g.Ci * g.k * g.k, idx = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (idx >= (size_t)images * K * P) return;
    int j = (int)(idx % P);
    size_t t = idx / P;
    int kk = (int)(t % K), image = b0 + (int)(t / K);
    int ci = kk / (g.k * g.k), ky = kk / g.k % g.k, kx = kk % g.k;
    int p = p0 + j, oy = p / g.Wo, ox = p % g.Wo;
    int iy = oy * g.stride - g.pad_top + ky, ix = ox * g.stride - g.pad_left + kx;
    float v = 0.0f;
    if (iy >= 0 && iy < g.H && ix >= 0 && ix < g.W) v = x[(((size_t)image * g.Ci + ci) * g.H + iy) * g.W + ix];
    col[idx] = v;
}

// out (B, Co, HW) += bias (Co) on every pixel. One thread per element; 8 bytes each.
__global__ void add_channel_bias_kernel(float *out, const float *bias, int Co, size_t HW, size_t total) {
    size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    if (i < total) out[i] += bias[i / HW % Co];
}

// out (B, Co, Ho, Wo) = x (B, Ci, H, W) * weight (Co, Ci, k, k) + bias (Co)
void cuda_conv2d_forward(float *out, const float *x, const float *weight, const float *bias, int B, int Ci, int H,
                         int W, int Co, int k, int stride, int pad_top, int pad_left, int pad_bottom, int pad_right) {
    ConvGeom g = {Ci,
                  H,
                  W,
                  k,
                  stride,
                  pad_top,
                  pad_left,
                  (H + pad_top + pad_bottom - k) / stride + 1,
                  (W + pad_left + pad_right - k) / stride + 1};
    int HoWo = g.Ho * g.Wo, K = Ci * k * k;
    if (B <= 0 || Co <= 0 || HoWo <= 0) return;
    long long out_image = (long long)Co * HoWo;
    if (K <= 0) {
        cuda_zero(out, sizeof(float) * B * out_image);
    } else if (k == 1 && stride == 1 && !pad_top && !pad_left && !pad_bottom && !pad_right) {
        // pointwise: the input itself is the (Ci, H*W) matrix; all images in one product
        gemm_strided_batched(CUBLAS_OP_N, CUBLAS_OP_N, HoWo, Co, Ci, 1.0f, x, HoWo, (long long)Ci * HoWo, weight, Ci, 0,
                             0.0f, out, HoWo, out_image, B);
    } else {
        size_t per_image = (size_t)K * HoWo;
        int images = per_image <= CONV_SCRATCH_FLOATS ? (int)std::min((size_t)B, CONV_SCRATCH_FLOATS / per_image) : 1;
        int P = images > 1 || per_image <= CONV_SCRATCH_FLOATS ? HoWo : (int)(CONV_SCRATCH_FLOATS / K);
        float *col = (float *)cuda_scratch(sizeof(float) * images * (size_t)K * P);
        for (int b0 = 0; b0 < B; b0 += images) {
            int nb = std::min(images, B - b0);
            for (int p0 = 0; p0 < HoWo; p0 += P) {
                int np = std::min(P, HoWo - p0);
                size_t n = (size_t)nb * K * np;
                im2col_kernel<<<cuda_blocks(n, 256), 256, 0, cuda_stream()>>>(col, x, g, b0, nb, p0, np);
                CUDA_CHECK_LAUNCH();
                // column-major out_b^T (np, Co) = col_b^T (np, K) . weight^T (K, Co), per image of the chunk
                gemm_strided_batched(CUBLAS_OP_N, CUBLAS_OP_N, np, Co, K, 1.0f, col, np, (long long)K * np, weight, K,
                                     0, 0.0f, out + b0 * out_image + p0, HoWo, out_image, nb);
            }
        }
    }
    if (bias) {
        size_t total = (size_t)B * out_image;
        add_channel_bias_kernel<<<cuda_blocks(total, 256), 256, 0, cuda_stream()>>>(out, bias, Co, HoWo, total);
        CUDA_CHECK_LAUNCH();
    }
}
