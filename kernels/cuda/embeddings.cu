// kernels/cuda/embeddings.cu: timestep frequency features and the class-label table, with the
// arithmetic of kernels/cpu/embeddings.c.
#include <math.h>

#include "kernels/cuda/cuda_common.cuh"

enum { EMBED_THREADS = 256 };

// out (B, F) = [cos(t f_k), sin(t f_k)], k < F/2; float32 in the reference order. Writes 4 B F bytes.
__global__ void timestep_embedding_kernel(float *out, const float *t, int B, int F, int half, float neg_log_period) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * half) return;
    int b = (int)(i / half), k = (int)(i % half);
    float freq = expf(neg_log_period * (float)k / (float)half);
    float arg = t[b] * freq;
    float *o = out + (size_t)b * F;
    o[k] = cosf(arg);
    o[half + k] = sinf(arg);
}

void cuda_timestep_embedding(float *out, const float *t, int B, int F, float max_period) {
    int half = F / 2;
    size_t total = (size_t)B * half;
    if (total == 0) return;
    float neg_log_period = (float)(-log((double)max_period));
    timestep_embedding_kernel<<<cuda_blocks(total, EMBED_THREADS), EMBED_THREADS, 0, cuda_stream()>>>(
        out, t, B, F, half, neg_log_period);
    CUDA_CHECK_LAUNCH();
}

// out (B, D) = table[labels[b]]: 8 B D bytes.
__global__ void embedding_forward_kernel(float *out, const float *table, const int32_t *labels, int B, int D) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (size_t)B * D) return;
    int b = (int)(i / D), d = (int)(i % D);
    out[i] = table[(size_t)labels[b] * D + d];
}

void cuda_embedding_forward(float *out, const float *table, const int32_t *labels, int B, int D) {
    size_t total = (size_t)B * D;
    if (total == 0) return;
    embedding_forward_kernel<<<cuda_blocks(total, EMBED_THREADS), EMBED_THREADS, 0, cuda_stream()>>>(out, table, labels,
                                                                                                     B, D);
    CUDA_CHECK_LAUNCH();
}

// dtable (rows, D) += dout (B, D) scattered by labels (B). The thread of (b, d) where b is the first
// occurrence of its label adds every dout row with that label, in batch order, to a register copy
// of the table entry: the same float additions, in the same order, as the CPU; no atomics. Reads
// 4 B D bytes of dout and at most B D of the table, writes as many.
__global__ void embedding_backward_kernel(float *dtable, const float *dout, const int32_t *labels, int B, int D) {
    int d = blockIdx.x * blockDim.x + threadIdx.x, b = blockIdx.y;
    if (d >= D) return;
    int label = labels[b];
    for (int e = 0; e < b; e++)
        if (labels[e] == label) return; // an earlier sample owns this table row
    float *entry = dtable + (size_t)label * D + d;
    float acc = *entry;
    for (int e = b; e < B; e++)
        if (labels[e] == label) acc += dout[(size_t)e * D + d];
    *entry = acc;
}

void cuda_embedding_backward(float *dtable, const float *dout, const int32_t *labels, int B, int D) {
    if (B == 0 || D == 0) return;
    if (B > 65535) die("embedding_backward: batch %d exceeds the CUDA grid's 65535", B);
    dim3 grid(cuda_blocks((size_t)D, EMBED_THREADS), (unsigned)B);
    embedding_backward_kernel<<<grid, EMBED_THREADS, 0, cuda_stream()>>>(dtable, dout, labels, B, D);
    CUDA_CHECK_LAUNCH();
}
