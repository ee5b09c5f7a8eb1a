// kernels/cpu/cpu_ops.h: the CPU reference implementations behind ops_cpu. Each function has the
// signature and contract of the Ops member of the same name (see kernels/ops.h).
#pragma once
#include "kernels/ops.h"

// Loops with less work than this (in elements touched) run on one thread: starting and joining an
// OpenMP team costs microseconds, and on a busy machine each barrier can wait a whole scheduler
// tick for a descheduled thread, which makes small models many times slower when parallel.
#define CPU_PARALLEL_MIN_WORK 32768
#define CPU_PARALLEL_IF(work) if ((size_t)(work) >= CPU_PARALLEL_MIN_WORK)

void *cpu_alloc(size_t bytes);
void cpu_release(void *ptr);
void cpu_upload(void *dst, const void *host_src, size_t bytes);
void cpu_download(void *host_dst, const void *src, size_t bytes);
void cpu_copy(void *dst, const void *src, size_t bytes);
void cpu_zero(void *dst, size_t bytes);
void cpu_synchronize(void);

// C (M, N) = alpha * op(A) @ op(B) + beta * C, row-major, bitwise the same for any thread count
// (kernels/cpu/gemm.c); every CPU product goes through it.
void cpu_gemm(int trans_a, int trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
              int ldb, float beta, float *C, int ldc);

void cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int M, int K, int N);
void cpu_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int M, int K, int N);

void cpu_add(float *out, const float *a, const float *b, size_t n);
void cpu_add_broadcast(float *x, const float *row, int B, size_t n);
void cpu_silu_forward(float *out, const float *x, size_t n);
void cpu_silu_backward(float *din, const float *dout, const float *x, size_t n);
void cpu_gelu_forward(float *out, const float *x, size_t n);
void cpu_gelu_backward(float *din, const float *dout, const float *x, size_t n);
void cpu_scale(float *x, float s, size_t n);

void cpu_patchify(float *patches, const float *img, int B, int C, int H, int W, int p);
void cpu_unpatchify_forward(float *img, const float *tokens, int B, int C, int H, int W, int p);
void cpu_unpatchify_backward(float *dtokens, const float *dimg, int B, int C, int H, int W, int p);
void cpu_timestep_embedding(float *out, const float *t, int B, int F, float max_period);
void cpu_embedding_forward(float *out, const float *table, const int32_t *labels, int B, int D);
void cpu_embedding_backward(float *dtable, const float *dout, const int32_t *labels, int B, int D);

void cpu_layernorm_modulate_forward(float *out, float *mean, float *rstd, const float *x, const float *shift,
                                    const float *scale, int mod_stride, int B, int T, int D);
void cpu_layernorm_modulate_backward(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                                     const float *mean, const float *rstd, const float *scale, int mod_stride, int B,
                                     int T, int D);
void cpu_gate_residual_forward(float *out, const float *x, const float *gate, const float *branch, int gate_stride,
                               const float *keep, int keep_stride, int B, int T, int D);
void cpu_gate_residual_backward(float *dbranch, float *dgate, float *dkeep, const float *dout, const float *gate,
                                const float *branch, int gate_stride, const float *keep, int keep_stride, int B, int T,
                                int D);
void cpu_attention_forward(float *out, float *probs, const float *qkv, int B, int T, int H, int hd);
void cpu_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs, int B,
                            int T, int H, int hd);

void cpu_relu_forward(float *out, const float *x, size_t n);
void cpu_relu_backward(float *din, const float *dout, const float *x, size_t n);
void cpu_st_gate_forward(float *hard, int hard_stride, float *soft, const float *logits, const float *noise,
                         int noise_stride, int rows, int cols, float tau, float threshold);
void cpu_st_gate_backward(float *dlogits, const float *dhard, int hard_stride, const float *soft, int rows, int cols,
                          float tau);
void cpu_group_mask_forward(float *out, const float *x, const float *mask, int mask_stride, int B, int T, int G, int S);
void cpu_group_mask_backward(float *dx, float *dmask, const float *dout, const float *x, const float *mask,
                             int mask_stride, int B, int T, int G, int S);
void cpu_flops_ratio_forward(float *ratio, const float *head, const float *chan, const float *keep, int B, int L, int H,
                             int T, float attn, float mlp);
void cpu_flops_ratio_backward(float *dhead, float *dchan, float *dkeep, const float *dratio, const float *chan,
                              const float *keep, int B, int L, int H, int T, float attn, float mlp);

void cpu_q_sample(float *xt, const float *x0, const float *noise, const float *coef, int B, size_t n);
void cpu_diffusion_loss_forward(float *mse, float *vb, const float *model_out, const float *x0, const float *xt,
                                const float *noise, const float *coef, int B, int C, size_t n, int learn_sigma);
void cpu_diffusion_loss_backward(float *dmodel_out, const float *dloss, const float *model_out, const float *x0,
                                 const float *xt, const float *noise, const float *coef, int B, int C, size_t n,
                                 int learn_sigma);

void cpu_cfg_combine(float *model_out, int n, int C_out, size_t hw, int guided, float scale);
void cpu_ddpm_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                   int C, size_t hw, int learn_sigma, int clip);
void cpu_ddim_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                   int C, size_t hw, int learn_sigma, int clip, float eta);
void cpu_gather_blocks(float *out, const float *in, const int32_t *blocks, int R, int G, int S, int k);
void cpu_gather_layernorm_modulate(float *out, const float *x, const int32_t *rows, const float *shift,
                                   const float *scale, int mod_stride, int T, int K, int D);
void cpu_gate_scatter_add(float *x, const float *branch, const int32_t *rows, const float *gate, int gate_stride, int T,
                          int K, int D);

void cpu_randn(float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B, size_t n);
void cpu_rand_logistic(float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B, size_t n);

// Convolutional layers (the SD VAE).
void cpu_conv2d_forward(float *out, const float *x, const float *weight, const float *bias, int B, int Ci, int H, int W,
                        int Co, int k, int stride, int pad_top, int pad_left, int pad_bottom, int pad_right);
void cpu_group_norm_forward(float *out, const float *x, const float *gamma, const float *beta, int B, int C, size_t n,
                            int groups, float eps, int silu);
void cpu_upsample_nearest2x(float *out, const float *x, int B, int C, int H, int W);
void cpu_transpose(float *out, const float *x, int B, int rows, int cols);
void cpu_clamp(float *out, const float *x, float lo, float hi, size_t n);

void cpu_sum_squares(double *out, const float *x, size_t n);
void cpu_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, double lr, double beta1,
                      double beta2, double eps, double weight_decay, long step);
void cpu_ema_update(float *ema, const float *param, size_t n, double decay);
