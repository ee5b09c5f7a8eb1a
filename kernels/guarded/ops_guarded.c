// kernels/guarded/ops_guarded.c: the guarded CPU backend, `--device cpu-guarded`: the CPU
// reference ops, with every buffer inaccessible to the host outside the ops (guarded_memory.h).
// It computes exactly what ops_cpu computes, slower; it exists to prove that the host code reaches
// backend memory only through upload and download, and hands ops only backend pointers, as a GPU
// backend requires.
//
// Each wrapper opens the buffers its pointer arguments lie in (DEV marks them; sum_squares' result
// is a host double), runs the CPU op, and closes them again. The list below generates both the
// wrappers and the table.
#include "kernels/guarded/ops_guarded.h"

#include "kernels/cpu/cpu_ops.h"
#include "kernels/guarded/guarded_memory.h"

#define DEV(ptr) ((__typeof__(ptr))guarded_open((ptr), __func__))

// X(name, parameters, arguments of the CPU op)
#define GUARDED_OPS(X)                                                                                                 \
    X(matmul_forward, (float *out, const float *inp, const float *weight, const float *bias, int M, int K, int N),     \
      (DEV(out), DEV(inp), DEV(weight), DEV(bias), M, K, N))                                                           \
    X(matmul_backward,                                                                                                 \
      (float *dinp, float *dweight, float *dbias, const float *dout, const float *inp, const float *weight, int M,     \
       int K, int N),                                                                                                  \
      (DEV(dinp), DEV(dweight), DEV(dbias), DEV(dout), DEV(inp), DEV(weight), M, K, N))                                \
    X(add, (float *out, const float *a, const float *b, size_t n), (DEV(out), DEV(a), DEV(b), n))                      \
    X(add_broadcast, (float *x, const float *row, int B, size_t n), (DEV(x), DEV(row), B, n))                          \
    X(silu_forward, (float *out, const float *x, size_t n), (DEV(out), DEV(x), n))                                     \
    X(silu_backward, (float *din, const float *dout, const float *x, size_t n), (DEV(din), DEV(dout), DEV(x), n))      \
    X(gelu_forward, (float *out, const float *x, size_t n), (DEV(out), DEV(x), n))                                     \
    X(gelu_backward, (float *din, const float *dout, const float *x, size_t n), (DEV(din), DEV(dout), DEV(x), n))      \
    X(scale, (float *x, float s, size_t n), (DEV(x), s, n))                                                            \
    X(patchify, (float *patches, const float *img, int B, int C, int H, int W, int p),                                 \
      (DEV(patches), DEV(img), B, C, H, W, p))                                                                         \
    X(unpatchify_forward, (float *img, const float *tokens, int B, int C, int H, int W, int p),                        \
      (DEV(img), DEV(tokens), B, C, H, W, p))                                                                          \
    X(unpatchify_backward, (float *dtokens, const float *dimg, int B, int C, int H, int W, int p),                     \
      (DEV(dtokens), DEV(dimg), B, C, H, W, p))                                                                        \
    X(timestep_embedding, (float *out, const float *t, int B, int F, float max_period),                                \
      (DEV(out), DEV(t), B, F, max_period))                                                                            \
    X(embedding_forward, (float *out, const float *table, const int32_t *labels, int B, int D),                        \
      (DEV(out), DEV(table), DEV(labels), B, D))                                                                       \
    X(embedding_backward, (float *dtable, const float *dout, const int32_t *labels, int B, int D),                     \
      (DEV(dtable), DEV(dout), DEV(labels), B, D))                                                                     \
    X(layernorm_modulate_forward,                                                                                      \
      (float *out, float *mean, float *rstd, const float *x, const float *shift, const float *scale, int mod_stride,   \
       int B, int T, int D),                                                                                           \
      (DEV(out), DEV(mean), DEV(rstd), DEV(x), DEV(shift), DEV(scale), mod_stride, B, T, D))                           \
    X(layernorm_modulate_backward,                                                                                     \
      (float *dx, float *dshift, float *dscale, const float *dout, const float *x, const float *mean,                  \
       const float *rstd, const float *scale, int mod_stride, int B, int T, int D),                                    \
      (DEV(dx), DEV(dshift), DEV(dscale), DEV(dout), DEV(x), DEV(mean), DEV(rstd), DEV(scale), mod_stride, B, T, D))   \
    X(gate_residual_forward,                                                                                           \
      (float *out, const float *x, const float *gate, const float *branch, int gate_stride, const float *keep,         \
       int keep_stride, int B, int T, int D),                                                                          \
      (DEV(out), DEV(x), DEV(gate), DEV(branch), gate_stride, DEV(keep), keep_stride, B, T, D))                        \
    X(gate_residual_backward,                                                                                          \
      (float *dbranch, float *dgate, float *dkeep, const float *dout, const float *gate, const float *branch,          \
       int gate_stride, const float *keep, int keep_stride, int B, int T, int D),                                      \
      (DEV(dbranch), DEV(dgate), DEV(dkeep), DEV(dout), DEV(gate), DEV(branch), gate_stride, DEV(keep), keep_stride,   \
       B, T, D))                                                                                                       \
    X(attention_forward, (float *out, float *probs, const float *qkv, int B, int T, int H, int hd),                    \
      (DEV(out), DEV(probs), DEV(qkv), B, T, H, hd))                                                                   \
    X(attention_backward,                                                                                              \
      (float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs, int B, int T, int H,      \
       int hd),                                                                                                        \
      (DEV(dqkv), DEV(scratch), DEV(dout), DEV(qkv), DEV(probs), B, T, H, hd))                                         \
    X(relu_forward, (float *out, const float *x, size_t n), (DEV(out), DEV(x), n))                                     \
    X(relu_backward, (float *din, const float *dout, const float *x, size_t n), (DEV(din), DEV(dout), DEV(x), n))      \
    X(st_gate_forward,                                                                                                 \
      (float *hard, int hard_stride, float *soft, const float *logits, const float *noise, int noise_stride, int rows, \
       int cols, float tau, float threshold),                                                                          \
      (DEV(hard), hard_stride, DEV(soft), DEV(logits), DEV(noise), noise_stride, rows, cols, tau, threshold))          \
    X(st_gate_backward,                                                                                                \
      (float *dlogits, const float *dhard, int hard_stride, const float *soft, int rows, int cols, float tau),         \
      (DEV(dlogits), DEV(dhard), hard_stride, DEV(soft), rows, cols, tau))                                             \
    X(group_mask_forward,                                                                                              \
      (float *out, const float *x, const float *mask, int mask_stride, int B, int T, int G, int S),                    \
      (DEV(out), DEV(x), DEV(mask), mask_stride, B, T, G, S))                                                          \
    X(group_mask_backward,                                                                                             \
      (float *dx, float *dmask, const float *dout, const float *x, const float *mask, int mask_stride, int B, int T,   \
       int G, int S),                                                                                                  \
      (DEV(dx), DEV(dmask), DEV(dout), DEV(x), DEV(mask), mask_stride, B, T, G, S))                                    \
    X(flops_ratio_forward,                                                                                             \
      (float *ratio, const float *head, const float *chan, const float *keep, int B, int L, int H, int T, float attn,  \
       float mlp),                                                                                                     \
      (DEV(ratio), DEV(head), DEV(chan), DEV(keep), B, L, H, T, attn, mlp))                                            \
    X(flops_ratio_backward,                                                                                            \
      (float *dhead, float *dchan, float *dkeep, const float *dratio, const float *chan, const float *keep, int B,     \
       int L, int H, int T, float attn, float mlp),                                                                    \
      (DEV(dhead), DEV(dchan), DEV(dkeep), DEV(dratio), DEV(chan), DEV(keep), B, L, H, T, attn, mlp))                  \
    X(q_sample, (float *xt, const float *x0, const float *noise, const float *coef, int B, size_t n),                  \
      (DEV(xt), DEV(x0), DEV(noise), DEV(coef), B, n))                                                                 \
    X(diffusion_loss_forward,                                                                                          \
      (float *mse, float *vb, const float *model_out, const float *x0, const float *xt, const float *noise,            \
       const float *coef, int B, int C, size_t n, int learn_sigma),                                                    \
      (DEV(mse), DEV(vb), DEV(model_out), DEV(x0), DEV(xt), DEV(noise), DEV(coef), B, C, n, learn_sigma))              \
    X(diffusion_loss_backward,                                                                                         \
      (float *dmodel_out, const float *dloss, const float *model_out, const float *x0, const float *xt,                \
       const float *noise, const float *coef, int B, int C, size_t n, int learn_sigma),                                \
      (DEV(dmodel_out), DEV(dloss), DEV(model_out), DEV(x0), DEV(xt), DEV(noise), DEV(coef), B, C, n, learn_sigma))    \
    X(cfg_combine, (float *model_out, int n, int C_out, size_t hw, int guided, float scale),                           \
      (DEV(model_out), n, C_out, hw, guided, scale))                                                                   \
    X(ddpm_step,                                                                                                       \
      (float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B, int C,     \
       size_t hw, int learn_sigma, int clip),                                                                          \
      (DEV(x_prev), DEV(x), DEV(model_out), DEV(noise), DEV(coef), B, C, hw, learn_sigma, clip))                       \
    X(ddim_step,                                                                                                       \
      (float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B, int C,     \
       size_t hw, int learn_sigma, int clip, float eta),                                                               \
      (DEV(x_prev), DEV(x), DEV(model_out), DEV(noise), DEV(coef), B, C, hw, learn_sigma, clip, eta))                  \
    X(gather_blocks, (float *out, const float *in, const int32_t *blocks, int R, int G, int S, int k),                 \
      (DEV(out), DEV(in), DEV(blocks), R, G, S, k))                                                                    \
    X(gather_layernorm_modulate,                                                                                       \
      (float *out, const float *x, const int32_t *rows, const float *shift, const float *scale, int mod_stride, int T, \
       int K, int D),                                                                                                  \
      (DEV(out), DEV(x), DEV(rows), DEV(shift), DEV(scale), mod_stride, T, K, D))                                      \
    X(gate_scatter_add,                                                                                                \
      (float *x, const float *branch, const int32_t *rows, const float *gate, int gate_stride, int T, int K, int D),   \
      (DEV(x), DEV(branch), DEV(rows), DEV(gate), gate_stride, T, K, D))                                               \
    X(randn, (float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B, size_t n),          \
      (DEV(out), seed, purpose, step, sample0, B, n))                                                                  \
    X(rand_logistic, (float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B, size_t n),  \
      (DEV(out), seed, purpose, step, sample0, B, n))                                                                  \
    X(conv2d_forward,                                                                                                  \
      (float *out, const float *x, const float *weight, const float *bias, int B, int Ci, int H, int W, int Co, int k, \
       int stride, int pad_top, int pad_left, int pad_bottom, int pad_right),                                          \
      (DEV(out), DEV(x), DEV(weight), DEV(bias), B, Ci, H, W, Co, k, stride, pad_top, pad_left, pad_bottom,            \
       pad_right))                                                                                                     \
    X(group_norm_forward,                                                                                              \
      (float *out, const float *x, const float *gamma, const float *beta, int B, int C, size_t n, int groups,          \
       float eps, int silu),                                                                                           \
      (DEV(out), DEV(x), DEV(gamma), DEV(beta), B, C, n, groups, eps, silu))                                           \
    X(upsample_nearest2x, (float *out, const float *x, int B, int C, int H, int W), (DEV(out), DEV(x), B, C, H, W))    \
    X(transpose, (float *out, const float *x, int B, int rows, int cols), (DEV(out), DEV(x), B, rows, cols))           \
    X(clamp, (float *out, const float *x, float lo, float hi, size_t n), (DEV(out), DEV(x), lo, hi, n))                \
    X(sum_squares, (double *out, const float *x, size_t n), (out, DEV(x), n))                                          \
    X(adamw_update,                                                                                                    \
      (float *param, const float *grad, float *m, float *v, size_t n, double lr, double beta1, double beta2,           \
       double eps, double weight_decay, long step),                                                                    \
      (DEV(param), DEV(grad), DEV(m), DEV(v), n, lr, beta1, beta2, eps, weight_decay, step))                           \
    X(ema_update, (float *ema, const float *param, size_t n, double decay), (DEV(ema), DEV(param), n, decay))

#define DEFINE_WRAPPER(name, params, args)                                                                             \
    static void guarded_##name params {                                                                                \
        cpu_##name args;                                                                                               \
        guarded_close_all();                                                                                           \
    }
GUARDED_OPS(DEFINE_WRAPPER)

static void guarded_upload(void *dst, const void *host_src, size_t bytes) {
    cpu_upload(DEV(dst), host_src, bytes);
    guarded_close_all();
}

static void guarded_download(void *host_dst, const void *src, size_t bytes) {
    cpu_download(host_dst, DEV(src), bytes);
    guarded_close_all();
}

static void guarded_copy(void *dst, const void *src, size_t bytes) {
    cpu_copy(DEV(dst), DEV(src), bytes);
    guarded_close_all();
}

static void guarded_zero(void *dst, size_t bytes) {
    cpu_zero(DEV(dst), bytes);
    guarded_close_all();
}

#define TABLE_ENTRY(name, params, args) .name = guarded_##name,
const Ops ops_cpu_guarded = {.name = "cpu-guarded",
                             .alloc = guarded_alloc,
                             .release = guarded_release,
                             .upload = guarded_upload,
                             .download = guarded_download,
                             .copy = guarded_copy,
                             .zero = guarded_zero,
                             .synchronize = cpu_synchronize,
                             GUARDED_OPS(TABLE_ENTRY)};
