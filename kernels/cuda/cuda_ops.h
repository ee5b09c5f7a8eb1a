// kernels/cuda/cuda_ops.h: the CUDA implementations behind ops_cuda. Each cuda_<name> has the
// signature and contract of the Ops member <name> (kernels/ops.h). Every pointer is device memory
// from cuda_alloc, except host_src/host_dst of upload/download and sum_squares' result (a host
// double). All work is queued on one stream in call order; download and synchronize wait for it.
#pragma once
#include "kernels/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

// Precision of the dense products (GEMMs, attention): bf16 tensor-core inputs with fp32
// accumulation (the default) or full fp32 (for checks). Storage is fp32 either way: parameters,
// gradients, optimizer state and activations; element-wise ops always compute in fp32.
typedef enum { CUDA_PRECISION_BF16, CUDA_PRECISION_FP32 } CudaPrecision;
void cuda_set_precision(CudaPrecision p);
CudaPrecision cuda_get_precision(void);

// Number of usable CUDA devices (0 without a driver or GPU; never fails).
int cuda_device_count(void);
// Binds this process to a device and creates the stream and library handles; 0, or -1 with a
// one-line reason in err. Every other cuda_* function requires it.
int cuda_init(int device, char *err, int err_size);

void *cuda_alloc(size_t bytes);
void cuda_release(void *ptr);
void cuda_upload(void *dst, const void *host_src, size_t bytes);
void cuda_download(void *host_dst, const void *src, size_t bytes);
void cuda_copy(void *dst, const void *src, size_t bytes);
void cuda_zero(void *dst, size_t bytes);
void cuda_synchronize(void);
void cuda_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int M, int K, int N);
void cuda_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int M, int K, int N);
void cuda_add(float *out, const float *a, const float *b, size_t n);
void cuda_add_broadcast(float *x, const float *row, int B, size_t n);
void cuda_silu_forward(float *out, const float *x, size_t n);
void cuda_silu_backward(float *din, const float *dout, const float *x, size_t n);
void cuda_gelu_forward(float *out, const float *x, size_t n);
void cuda_gelu_backward(float *din, const float *dout, const float *x, size_t n);
void cuda_scale(float *x, float s, size_t n);
void cuda_patchify(float *patches, const float *img, int B, int C, int H, int W, int p);
void cuda_unpatchify_forward(float *img, const float *tokens, int B, int C, int H, int W, int p);
void cuda_unpatchify_backward(float *dtokens, const float *dimg, int B, int C, int H, int W, int p);
void cuda_timestep_embedding(float *out, const float *t, int B, int F, float max_period);
void cuda_embedding_forward(float *out, const float *table, const int32_t *labels, int B, int D);
void cuda_embedding_backward(float *dtable, const float *dout, const int32_t *labels, int B, int D);
void cuda_layernorm_modulate_forward(float *out, float *mean, float *rstd, const float *x, const float *shift,
                                    const float *scale, int mod_stride, int B, int T, int D);
void cuda_layernorm_modulate_backward(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                                     const float *mean, const float *rstd, const float *scale, int mod_stride, int B,
                                     int T, int D);
void cuda_gate_residual_forward(float *out, const float *x, const float *gate, const float *branch, int gate_stride,
                               const float *keep, int keep_stride, int B, int T, int D);
void cuda_gate_residual_backward(float *dbranch, float *dgate, float *dkeep, const float *dout, const float *gate,
                                const float *branch, int gate_stride, const float *keep, int keep_stride, int B, int T,
                                int D);
void cuda_attention_forward(float *out, float *probs, const float *qkv, int B, int T, int H, int hd);
void cuda_attention_backward(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs, int B,
                            int T, int H, int hd);
void cuda_relu_forward(float *out, const float *x, size_t n);
void cuda_relu_backward(float *din, const float *dout, const float *x, size_t n);
void cuda_st_gate_forward(float *hard, int hard_stride, float *soft, const float *logits, const float *noise,
                         int noise_stride, int rows, int cols, float tau, float threshold);
void cuda_st_gate_backward(float *dlogits, const float *dhard, int hard_stride, const float *soft, int rows, int cols,
                          float tau);
void cuda_group_mask_forward(float *out, const float *x, const float *mask, int mask_stride, int B, int T, int G, int S);
void cuda_group_mask_backward(float *dx, float *dmask, const float *dout, const float *x, const float *mask,
                             int mask_stride, int B, int T, int G, int S);
void cuda_flops_ratio_forward(float *ratio, const float *head, const float *chan, const float *keep, int B, int L, int H,
                             int T, float attn, float mlp);
void cuda_flops_ratio_backward(float *dhead, float *dchan, float *dkeep, const float *dratio, const float *chan,
                              const float *keep, int B, int L, int H, int T, float attn, float mlp);
void cuda_q_sample(float *xt, const float *x0, const float *noise, const float *coef, int B, size_t n);
void cuda_diffusion_loss_forward(float *mse, float *vb, const float *model_out, const float *x0, const float *xt,
                                const float *noise, const float *coef, int B, int C, size_t n, int learn_sigma);
void cuda_diffusion_loss_backward(float *dmodel_out, const float *dloss, const float *model_out, const float *x0,
                                 const float *xt, const float *noise, const float *coef, int B, int C, size_t n,
                                 int learn_sigma);
void cuda_cfg_combine(float *model_out, int n, int C_out, size_t hw, int guided, float scale);
void cuda_ddpm_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                   int C, size_t hw, int learn_sigma, int clip);
void cuda_ddim_step(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef, int B,
                   int C, size_t hw, int learn_sigma, int clip, float eta);
void cuda_gather_blocks(float *out, const float *in, const int32_t *blocks, int R, int G, int S, int k);
void cuda_gather_layernorm_modulate(float *out, const float *x, const int32_t *rows, const float *shift,
                                   const float *scale, int mod_stride, int T, int K, int D);
void cuda_gate_scatter_add(float *x, const float *branch, const int32_t *rows, const float *gate, int gate_stride, int T,
                          int K, int D);
void cuda_randn(float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B, size_t n);
void cuda_rand_logistic(float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B, size_t n);
void cuda_conv2d_forward(float *out, const float *x, const float *weight, const float *bias, int B, int Ci, int H, int W,
                        int Co, int k, int stride, int pad_top, int pad_left, int pad_bottom, int pad_right);
void cuda_group_norm_forward(float *out, const float *x, const float *gamma, const float *beta, int B, int C, size_t n,
                            int groups, float eps, int silu);
void cuda_upsample_nearest2x(float *out, const float *x, int B, int C, int H, int W);
void cuda_transpose(float *out, const float *x, int B, int rows, int cols);
void cuda_clamp(float *out, const float *x, float lo, float hi, size_t n);
void cuda_sum_squares(double *out, const float *x, size_t n);
void cuda_adamw_update(float *param, const float *grad, float *m, float *v, size_t n, double lr, double beta1,
                      double beta2, double eps, double weight_decay, long step);
void cuda_ema_update(float *ema, const float *param, size_t n, double decay);

#ifdef __cplusplus
}
#endif
