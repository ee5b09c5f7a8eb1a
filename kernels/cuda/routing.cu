// kernels/cuda/routing.cu: DyDiT's routing ops with the arithmetic of kernels/cpu/routing.c: ReLU
// for the token router, the straight-through Gumbel-sigmoid, head / channel-group masks and the
// realised FLOPs ratio (docs/algorithm.md 3, 4.1). Sums are in double by fixed trees.
#include "kernels/cuda/map.cuh"
#include "kernels/cuda/reduce.cuh"

enum { ROUTING_THREADS = 256 };

struct ReluOp {
    __device__ float operator()(float x) const { return x > 0.0f ? x : 0.0f; }
};

struct ReluGradOp {
    __device__ float operator()(float dout, float x) const { return x > 0.0f ? dout : 0.0f; }
};

// out, x (n): 8 n bytes.
void cuda_relu_forward(float *out, const float *x, size_t n) { map_unary(out, x, n, ReluOp{}); }
// din, dout, x (n): 12 n bytes; din may alias dout.
void cuda_relu_backward(float *din, const float *dout, const float *x, size_t n) {
    map_binary(din, dout, x, n, ReluGradOp{});
}

// logits, soft (rows, cols); hard, noise rows at their strides. hard = [z > threshold] and
// soft = sigmoid(z / tau), z = logit + noise. 16 rows cols bytes.
__global__ void st_gate_forward_kernel(float *hard, int hard_stride, float *soft, const float *logits,
                                       const float *noise, int noise_stride, int cols, size_t total, float tau,
                                       float threshold) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    size_t r = i / cols, c = i % cols;
    float z = logits[i] + (noise ? noise[r * noise_stride + c] : 0.0f);
    soft[i] = 1.0f / (1.0f + expf(-z / tau));
    hard[r * hard_stride + c] = z > threshold ? 1.0f : 0.0f;
}

void cuda_st_gate_forward(float *hard, int hard_stride, float *soft, const float *logits, const float *noise,
                          int noise_stride, int rows, int cols, float tau, float threshold) {
    size_t total = (size_t)rows * cols;
    if (total == 0) return;
    st_gate_forward_kernel<<<cuda_blocks(total, ROUTING_THREADS), ROUTING_THREADS, 0, cuda_stream()>>>(
        hard, hard_stride, soft, logits, noise, noise_stride, cols, total, tau, threshold);
    CUDA_CHECK_LAUNCH();
}

// dlogits (rows, cols) = dhard * soft * (1 - soft) / tau, dhard rows at hard_stride: 12 rows cols bytes.
__global__ void st_gate_backward_kernel(float *dlogits, const float *dhard, int hard_stride, const float *soft,
                                        int cols, size_t total, float tau) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    size_t r = i / cols, c = i % cols;
    dlogits[i] = dhard[r * hard_stride + c] * soft[i] * (1.0f - soft[i]) / tau;
}

void cuda_st_gate_backward(float *dlogits, const float *dhard, int hard_stride, const float *soft, int rows, int cols,
                           float tau) {
    size_t total = (size_t)rows * cols;
    if (total == 0) return;
    st_gate_backward_kernel<<<cuda_blocks(total, ROUTING_THREADS), ROUTING_THREADS, 0, cuda_stream()>>>(
        dlogits, dhard, hard_stride, soft, cols, total, tau);
    CUDA_CHECK_LAUNCH();
}

// out, x (B, T, G * S): out = x * mask[b * mask_stride + g] on channel g * S + s; one block per token
// row (V == 4 needs S % 4 == 0, so a vector never straddles two groups). out may alias x.
// 8 B T G S bytes.
template <int V>
__global__ void group_mask_forward_kernel(float *out, const float *x, const float *mask, int mask_stride, int T, int G,
                                          int S) {
    size_t row = blockIdx.x, at = row * G * S;
    const float *m = mask + row / T * mask_stride;
    for (int c = threadIdx.x * V; c < G * S; c += blockDim.x * V) {
        float v[V];
        load_vec<V>(v, x + at + c);
        float mg = m[c / S];
        for (int j = 0; j < V; j++) v[j] = v[j] * mg;
        store_vec<V>(out + at + c, v);
    }
}

void cuda_group_mask_forward(float *out, const float *x, const float *mask, int mask_stride, int B, int T, int G,
                             int S) {
    size_t rows = (size_t)B * T;
    if (rows == 0 || G == 0 || S == 0) return;
    if (S % 4 == 0 && aligned16(out) && aligned16(x))
        group_mask_forward_kernel<4>
            <<<(unsigned)rows, ROUTING_THREADS, 0, cuda_stream()>>>(out, x, mask, mask_stride, T, G, S);
    else
        group_mask_forward_kernel<1>
            <<<(unsigned)rows, ROUTING_THREADS, 0, cuda_stream()>>>(out, x, mask, mask_stride, T, G, S);
    CUDA_CHECK_LAUNCH();
}

// dmask[b * mask_stride + g] += sum over t and s of dout * x in double; one block per (g, b).
// Reads 8 B T G S bytes.
__global__ void group_mask_dmask_kernel(float *dmask, const float *dout, const float *x, int mask_stride, int T, int G,
                                        int S) {
    int g = blockIdx.x, b = blockIdx.y;
    int n = T * S;
    double acc = 0.0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        int t = j / S, s = j % S;
        size_t at = (((size_t)b * T + t) * G + g) * S + s;
        acc += (double)dout[at] * x[at];
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0) dmask[(size_t)b * mask_stride + g] += (float)acc;
}

void cuda_group_mask_backward(float *dx, float *dmask, const float *dout, const float *x, const float *mask,
                              int mask_stride, int B, int T, int G, int S) {
    if (dmask && B > 0 && G > 0) { // before dx, which may overwrite dout
        if (B > 65535) die("group_mask_backward: batch %d exceeds the CUDA grid's 65535", B);
        group_mask_dmask_kernel<<<dim3((unsigned)G, (unsigned)B), ROUTING_THREADS, 0, cuda_stream()>>>(
            dmask, dout, x, mask_stride, T, G, S);
        CUDA_CHECK_LAUNCH();
    }
    if (dx) cuda_group_mask_forward(dx, dout, mask, mask_stride, B, T, G, S);
}

// ratio (B) from head, chan (B, L, H) and keep (B, L, T): one block per sample, warp w computing the
// mask means of blocks l = w, w + warps, ...; the per-block terms are then added in order of l.
// Reads 4 B L (2 H + T) bytes.
__global__ void flops_ratio_forward_kernel(float *ratio, const float *head, const float *chan, const float *keep, int L,
                                           int H, int T, double attn, double mlp) {
    extern __shared__ double term[]; // (L)
    int b = blockIdx.x, warp = threadIdx.x / 32, lane = threadIdx.x % 32, warps = blockDim.x / 32;
    for (int l = warp; l < L; l += warps) {
        const float *hb = head + ((size_t)b * L + l) * H, *cb = chan + ((size_t)b * L + l) * H;
        const float *kb = keep + ((size_t)b * L + l) * T;
        double sh = 0.0, sc = 0.0, sk = 0.0;
        for (int h = lane; h < H; h += 32) {
            sh += hb[h];
            sc += cb[h];
        }
        for (int t = lane; t < T; t += 32) sk += kb[t];
        double a = warp_sum(sh) / H, g = warp_sum(sc) / H, k = warp_sum(sk) / T;
        if (lane == 0) term[l] = a * attn + g * k * mlp;
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    double sum = 0.0;
    for (int l = 0; l < L; l++) sum += term[l];
    ratio[b] = (float)(sum / ((double)L * (attn + mlp)));
}

void cuda_flops_ratio_forward(float *ratio, const float *head, const float *chan, const float *keep, int B, int L,
                              int H, int T, float attn, float mlp) {
    if (B == 0) return;
    size_t bytes = sizeof(double) * (size_t)L;
    if (bytes > (48 << 10)) die("flops_ratio_forward: %d blocks exceed the kernel's shared memory", L);
    flops_ratio_forward_kernel<<<(unsigned)B, ROUTING_THREADS, bytes, cuda_stream()>>>(ratio, head, chan, keep, L, H, T,
                                                                                       attn, mlp);
    CUDA_CHECK_LAUNCH();
}

// Adds dratio[b] d ratio[b] / d mask into dhead, dchan (B, L, H) and dkeep (B, L, T); one block per
// (b, l), whose channel and token means are block sums in double. Reads 4 B L (H + T) bytes, adds
// into 4 B L (2 H + T).
__global__ void flops_ratio_backward_kernel(float *dhead, float *dchan, float *dkeep, const float *dratio,
                                            const float *chan, const float *keep, int L, int H, int T, double attn,
                                            double mlp) {
    size_t bl = blockIdx.x, b = bl / L;
    const float *cb = chan + bl * H, *kb = keep + bl * T;
    double sc = 0.0, sk = 0.0;
    for (int h = threadIdx.x; h < H; h += blockDim.x) sc += cb[h];
    for (int t = threadIdx.x; t < T; t += blockDim.x) sk += kb[t];
    double g = block_sum(sc) / H, k = block_sum(sk) / T;
    double scale = dratio[b] / ((double)L * (attn + mlp));
    for (int h = threadIdx.x; h < H; h += blockDim.x) {
        if (dhead) dhead[bl * H + h] += (float)(scale * attn / H);
        if (dchan) dchan[bl * H + h] += (float)(scale * k * mlp / H);
    }
    if (dkeep)
        for (int t = threadIdx.x; t < T; t += blockDim.x) dkeep[bl * T + t] += (float)(scale * g * mlp / T);
}

void cuda_flops_ratio_backward(float *dhead, float *dchan, float *dkeep, const float *dratio, const float *chan,
                               const float *keep, int B, int L, int H, int T, float attn, float mlp) {
    size_t blocks = (size_t)B * L;
    if (blocks == 0) return;
    flops_ratio_backward_kernel<<<(unsigned)blocks, ROUTING_THREADS, 0, cuda_stream()>>>(
        dhead, dchan, dkeep, dratio, chan, keep, L, H, T, attn, mlp);
    CUDA_CHECK_LAUNCH();
}
