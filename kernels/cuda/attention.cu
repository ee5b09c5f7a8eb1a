// kernels/cuda/attention.cu: multi-head softmax attention as batched GEMMs over all (sample, head)
// pairs plus row-softmax kernels, the probabilities (B, H, T, T) kept for the backward like the
// CPU twin.
//
// Cost: the forward is 2 products of 2 B H T T hd FLOPs (scores, then probs @ v); the backward 4.
// DiT-XL/2 at batch 32 (B = 32, H = 16, T = 256, hd = 72) does 9.7 GFLOP forward per block against
// 134 MB of probabilities written and read, so the softmax passes weigh as much as the products.
// A fused kernel would avoid that traffic; this version keeps to cuBLAS and simple kernels so that
// each piece can be checked against the CPU on its own.
//
// A head's q, k, v are (T, hd) views with row stride 3 H hd inside qkv; the heads of one sample
// are hd floats apart but samples T 3 H hd apart, so the B H matrices share no single stride and
// go to cublasGemmBatchedEx as pointer arrays, built on the device by one small kernel. cuBLAS is
// column-major: the row-major (T, hd) view is the column-major (hd, T) matrix, its transpose.
#include <math.h>

#include "kernels/cuda/gemm.cuh"

// One family of per-head matrices: matrix (b, h) starts at base + b * per_sample + h * per_head.
typedef struct {
    const float *base;
    long long per_sample, per_head;
} HeadView;

enum { MAX_VIEWS = 9 };
typedef struct {
    HeadView v[MAX_VIEWS];
} HeadViews;

// Entries from one pointer array to the next: cuBLAS wants every pointer array 16-byte aligned, so
// an odd B H gets one unused entry of padding.
static int head_pointer_stride(int B, int H) { return (B * H + 1) / 2 * 2; }

// ptrs (count, stride): the start of every (b, h) matrix of each view; one thread (8 bytes) per
// pointer.
__global__ void head_pointers_kernel(const float **ptrs, HeadViews views, int count, int B, int H, int stride) {
    int i = blockIdx.x * blockDim.x + threadIdx.x, n = B * H;
    if (i >= n * count) return;
    int view = i / n, bh = i % n, b = bh / H, h = bh % H;
    const HeadView *v = &views.v[view];
    ptrs[view * stride + bh] = v->base + b * v->per_sample + h * v->per_head;
}

// True when every (b, h) matrix of the first `count` views starts 16-byte aligned; not so for an odd
// T, whose probability matrices lie T*T floats apart (its products then run in fp32).
static bool head_views_aligned16(const HeadViews *views, int count) {
    for (int j = 0; j < count; j++) {
        const HeadView *v = &views->v[j];
        if ((uintptr_t)v->base % 16 || v->per_sample % 4 || v->per_head % 4) return false;
    }
    return true;
}

// Pointer arrays for `count` views in the backend scratch; array j starts at the result + j stride.
static const float **head_pointers(const HeadViews *views, int count, int B, int H, int stride) {
    size_t n = (size_t)count * B * H;
    const float **ptrs = (const float **)cuda_scratch(sizeof(float *) * count * stride);
    head_pointers_kernel<<<cuda_blocks(n, 256), 256, 0, cuda_stream()>>>(ptrs, *views, count, B, H, stride);
    CUDA_CHECK_LAUNCH();
    return ptrs;
}

enum { SOFTMAX_WARPS = 8 };

// p (rows, T): each row, already scaled by 1/sqrt(hd), becomes softmax(row): max-subtracted expf,
// the sum accumulated in double and its reciprocal applied like the CPU. One warp per row (the row
// is read three times, the re-reads from L1); lanes stride the row, so accesses are coalesced.
// 12 bytes and one expf per element.
__global__ void softmax_forward_kernel(float *p, size_t rows, int T) {
    size_t row = blockIdx.x * (size_t)SOFTMAX_WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;
    float *r = p + row * T;
    float mx = -INFINITY;
    for (int j = lane; j < T; j += 32) mx = fmaxf(mx, r[j]);
    for (int o = 16; o > 0; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
    double sum = 0.0;
    for (int j = lane; j < T; j += 32) {
        float e = expf(r[j] - mx);
        r[j] = e;
        sum += e;
    }
    for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
    float inv = (float)(1.0 / sum);
    for (int j = lane; j < T; j += 32) r[j] *= inv;
}

// ds (rows, T) holds dP on entry and leaves dS = P * (dP - rowsum(P * dP)) (the 1/sqrt(hd) of the
// scores is applied by the products that follow, as on the CPU). One warp per row; 12 bytes per
// element.
__global__ void softmax_backward_kernel(float *ds, const float *p, size_t rows, int T) {
    size_t row = blockIdx.x * (size_t)SOFTMAX_WARPS + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (row >= rows) return;
    float *d = ds + row * T;
    const float *pr = p + row * T;
    double dot = 0.0;
    for (int j = lane; j < T; j += 32) dot += (double)pr[j] * d[j];
    for (int o = 16; o > 0; o /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, o);
    float c = (float)dot;
    for (int j = lane; j < T; j += 32) d[j] = pr[j] * (d[j] - c);
}

static unsigned softmax_blocks(size_t rows) { return (unsigned)((rows + SOFTMAX_WARPS - 1) / SOFTMAX_WARPS); }

enum { F_Q, F_K, F_V, F_PROBS, F_OUT }; // forward views, in HeadViews order

// qkv (B, T, 3*H*hd) -> out (B, T, H*hd), probs (B, H, T, T)
void cuda_attention_forward(float *out, float *probs, const float *qkv, int B, int T, int H, int hd) {
    if (B <= 0 || T <= 0 || H <= 0 || hd <= 0) return;
    long long D = (long long)H * hd, ld = 3 * D, TT = (long long)T * T;
    HeadViews views = {
        {{qkv, T * ld, hd}, {qkv + D, T * ld, hd}, {qkv + 2 * D, T * ld, hd}, {probs, H * TT, TT}, {out, T * D, hd}}};
    int n = B * H, stride = head_pointer_stride(B, H);
    const float **ptr = head_pointers(&views, 5, B, H, stride);
    bool aligned = head_views_aligned16(&views, 5);
    float *const *out_ptrs = (float *const *)(ptr + F_OUT * stride), *const *probs_ptrs =
                                                                         (float *const *)(ptr + F_PROBS * stride);
    // column-major S^T (T, T) = K (T, hd) . Q^T (hd, T), i.e. row-major S = Q K^T, scaled
    gemm_pointer_batched(CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, 1.0f / sqrtf((float)hd), ptr + F_K * stride, (int)ld,
                         ptr + F_Q * stride, (int)ld, 0.0f, probs_ptrs, T, n, aligned);
    size_t rows = (size_t)n * T;
    softmax_forward_kernel<<<softmax_blocks(rows), SOFTMAX_WARPS * 32, 0, cuda_stream()>>>(probs, rows, T);
    CUDA_CHECK_LAUNCH();
    // column-major O^T (hd, T) = V^T (hd, T) . P^T (T, T), i.e. row-major O = P V
    gemm_pointer_batched(CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, 1.0f, ptr + F_V * stride, (int)ld, ptr + F_PROBS * stride,
                         T, 0.0f, out_ptrs, (int)D, n, aligned);
}

enum { B_Q, B_K, B_V, B_PROBS, B_DOUT, B_DQ, B_DK, B_DV, B_DS }; // backward views, in HeadViews order

// dV = P^T dO; dP = dO V^T; dS = P * (dP - rowsum(P * dP)); dQ = s dS K; dK = s dS^T Q, s = 1/sqrt(hd).
void cuda_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                             int B, int T, int H, int hd) {
    if (B <= 0 || T <= 0 || H <= 0 || hd <= 0) return;
    long long D = (long long)H * hd, ld = 3 * D, TT = (long long)T * T;
    HeadViews views = {{{qkv, T * ld, hd},
                        {qkv + D, T * ld, hd},
                        {qkv + 2 * D, T * ld, hd},
                        {probs, H * TT, TT},
                        {dout, T * D, hd},
                        {dqkv, T * ld, hd},
                        {dqkv + D, T * ld, hd},
                        {dqkv + 2 * D, T * ld, hd},
                        {scratch, H * TT, TT}}};
    int n = B * H, stride = head_pointer_stride(B, H);
    const float **ptr = head_pointers(&views, 9, B, H, stride);
    bool aligned = head_views_aligned16(&views, 9);
    float scale = 1.0f / sqrtf((float)hd);
    float *const *dq = (float *const *)(ptr + B_DQ * stride), *const *dk = (float *const *)(ptr + B_DK * stride);
    float *const *dv = (float *const *)(ptr + B_DV * stride), *const *ds = (float *const *)(ptr + B_DS * stride);
    // column-major dV^T (hd, T) = dO^T (hd, T) . P (T, T)
    gemm_pointer_batched(CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, 1.0f, ptr + B_DOUT * stride, (int)D,
                         ptr + B_PROBS * stride, T, 0.0f, dv, (int)ld, n, aligned);
    // column-major dP^T (T, T) = V (T, hd) . dO^T (hd, T), i.e. row-major dP = dO V^T
    gemm_pointer_batched(CUBLAS_OP_T, CUBLAS_OP_N, T, T, hd, 1.0f, ptr + B_V * stride, (int)ld, ptr + B_DOUT * stride,
                         (int)D, 0.0f, ds, T, n, aligned);
    size_t rows = (size_t)n * T;
    softmax_backward_kernel<<<softmax_blocks(rows), SOFTMAX_WARPS * 32, 0, cuda_stream()>>>(scratch, probs, rows, T);
    CUDA_CHECK_LAUNCH();
    // column-major dQ^T (hd, T) = s K^T (hd, T) . dS^T (T, T), i.e. row-major dQ = s dS K
    gemm_pointer_batched(CUBLAS_OP_N, CUBLAS_OP_N, hd, T, T, scale, ptr + B_K * stride, (int)ld, ptr + B_DS * stride, T,
                         0.0f, dq, (int)ld, n, aligned);
    // column-major dK^T (hd, T) = s Q^T (hd, T) . dS (T, T), i.e. row-major dK = s dS^T Q
    gemm_pointer_batched(CUBLAS_OP_N, CUBLAS_OP_T, hd, T, T, scale, ptr + B_Q * stride, (int)ld, ptr + B_DS * stride, T,
                         0.0f, dk, (int)ld, n, aligned);
}
