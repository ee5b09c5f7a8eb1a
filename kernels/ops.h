// kernels/ops.h: the op interface every backend implements.
//
// The model layer (model/) expresses the DiT/DyDiT graph only as calls through an Ops table. It
// passes backend pointers and shapes and never reads or writes tensor memory itself, so the same
// orchestration drives the CPU reference (kernels/cpu) and any accelerator backend.
//
// Conventions for every op:
//  - shapes are written in PyTorch order, row-major, innermost last; "(B, N, D)" means B*N*D
//    contiguous floats with D fastest;
//  - forward ops overwrite their outputs;
//  - parameter gradients accumulate (+=); activation gradients overwrite, except the ops that say
//    they add into the residual stream;
//  - a NULL gradient pointer means "not needed" and skips that work;
//  - reductions run in a fixed order with no float atomics, so results are bitwise reproducible
//    for a given backend and machine, whatever the thread count.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Per-sample diffusion coefficients (float32, gathered on the host from the float64 tables).
enum DiffusionCoef {
    COEF_SQRT_ALPHA_BAR,           // sqrt(abar_t)                    q_sample
    COEF_SQRT_ONE_MINUS_ALPHA_BAR, // sqrt(1 - abar_t)                q_sample
    COEF_SQRT_RECIP_ALPHA_BAR,     // sqrt(1 / abar_t)                x0 from eps
    COEF_SQRT_RECIPM1_ALPHA_BAR,   // sqrt(1 / abar_t - 1)            x0 from eps
    COEF_POSTERIOR_MEAN_X0,        // c1_t                            posterior mean
    COEF_POSTERIOR_MEAN_XT,        // c2_t                            posterior mean
    COEF_POSTERIOR_LOGVAR,         // clipped log posterior variance  (min_log)
    COEF_LOG_BETA,                 // log beta_t                      (max_log)
    COEF_IS_FIRST_STEP,            // 1.0 when t == 0 (decoder NLL instead of KL), else 0.0
    COEF_ALPHA_BAR,                // abar_t                          DDIM
    COEF_ALPHA_BAR_PREV,           // abar_{t-1} (1 at t = 0)         DDIM
    COEF_COUNT
};

typedef struct Ops Ops;
struct Ops {
    const char *name;

    // ---- memory ----
    void *(*alloc)(size_t bytes); // zero-filled
    void (*release)(void *ptr);
    void (*upload)(void *dst, const void *host_src, size_t bytes);
    void (*download)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *dst, size_t bytes);
    void (*synchronize)(void);

    // ---- dense layers ----
    // out (M, N) = inp (M, K) @ weight (N, K)^T + bias (N). bias may be NULL.
    void (*matmul_forward)(float *out, const float *inp, const float *weight, const float *bias, int M, int K, int N);
    // dinp (M, K) = dout @ weight; dweight (N, K) += dout^T @ inp; dbias (N) += column sums of dout.
    void (*matmul_backward)(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int M, int K, int N);

    // ---- element-wise ----
    // out = a + b, n elements.
    void (*add)(float *out, const float *a, const float *b, size_t n);
    // x (B, n) += row (n), broadcast over B.
    void (*add_broadcast)(float *x, const float *row, int B, size_t n);
    // out = x * sigmoid(x); din = dout * silu'(x) (din may alias dout).
    void (*silu_forward)(float *out, const float *x, size_t n);
    void (*silu_backward)(float *din, const float *dout, const float *x, size_t n);
    // GELU, tanh approximation: out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    void (*gelu_forward)(float *out, const float *x, size_t n);
    void (*gelu_backward)(float *din, const float *dout, const float *x, size_t n);
    // x *= s
    void (*scale)(float *x, float s, size_t n);

    // ---- embeddings ----
    // img (B, C, H, W) -> patches (B, T, C*p*p), T = (H/p)*(W/p) row-major over the patch grid,
    // each patch vector ordered (c, py, px) like a flattened Conv2d kernel.
    void (*patchify)(float *patches, const float *img, int B, int C, int H, int W, int p);
    // tokens (B, T, p*p*C) with each token ordered (py, px, c) -> img (B, C, H, W); and its adjoint.
    void (*unpatchify_forward)(float *img, const float *tokens, int B, int C, int H, int W, int p);
    void (*unpatchify_backward)(float *dtokens, const float *dimg, int B, int C, int H, int W, int p);
    // out (B, F) = [cos(t * f_k), sin(t * f_k)], f_k = exp(-ln(max_period) k / (F/2)), k < F/2; t (B).
    void (*timestep_embedding)(float *out, const float *t, int B, int F, float max_period);
    // out (B, D) = table[labels[b]]; dtable (rows, D) += scatter of dout (in batch order).
    void (*embedding_forward)(float *out, const float *table, const int32_t *labels, int B, int D);
    void (*embedding_backward)(float *dtable, const float *dout, const int32_t *labels, int B, int D);

    // ---- DiT block pieces ----
    // out (B, T, D) = LN(x) * (1 + scale[b]) + shift[b]; LN without affine, eps 1e-6.
    // shift and scale are rows of D floats, row b at b * mod_stride (they live inside the adaLN
    // output). mean, rstd (B, T) are saved for the backward.
    void (*layernorm_modulate_forward)(float *out, float *mean, float *rstd, const float *x, const float *shift,
                                       const float *scale, int mod_stride, int B, int T, int D);
    // dx (B, T, D) += (adds into the residual stream); dshift, dscale (B, D) at stride mod_stride
    // are overwritten.
    void (*layernorm_modulate_backward)(float *dx, float *dshift, float *dscale, const float *dout, const float *x,
                                        const float *mean, const float *rstd, const float *scale, int mod_stride, int B,
                                        int T, int D);
    // out (B, T, D) = x + keep[b, t] * gate[b] * branch; gate rows at stride gate_stride; keep is a
    // per-token 0/1 mask (DyDiT's token gate) with row b at b * keep_stride, NULL meaning every
    // token. out may alias x.
    void (*gate_residual_forward)(float *out, const float *x, const float *gate, const float *branch, int gate_stride,
                                  const float *keep, int keep_stride, int B, int T, int D);
    // dbranch = keep * gate[b] * dout (overwrite); dgate[b] = sum_t keep * dout * branch (overwrite,
    // stride gate_stride); dkeep[b, t] += sum_d dout * gate * branch (accumulates, like every mask
    // gradient: the masks also receive the FLOPs term; may be NULL). The residual's own gradient is
    // dout itself.
    void (*gate_residual_backward)(float *dbranch, float *dgate, float *dkeep, const float *dout, const float *gate,
                                   const float *branch, int gate_stride, const float *keep, int keep_stride, int B,
                                   int T, int D);
    // Multi-head self-attention core. qkv (B, T, 3*H*hd) holds [q | k | v], each head-major
    // (feature which*H*hd + h*hd + d); out (B, T, H*hd) = softmax(q k^T / sqrt(hd)) v with heads
    // concatenated; probs (B, H, T, T) keeps the softmax for the backward.
    void (*attention_forward)(float *out, float *probs, const float *qkv, int B, int T, int H, int hd);
    // dqkv (B, T, 3*H*hd) overwritten; scratch holds B*H*T*T floats.
    void (*attention_backward)(float *dqkv, float *scratch, const float *dout, const float *qkv, const float *probs,
                               int B, int T, int H, int hd);

    // ---- DyDiT routing (docs/algorithm.md 3) ----
    // out = max(x, 0); din = dout * (x > 0) (din may alias dout).
    void (*relu_forward)(float *out, const float *x, size_t n);
    void (*relu_backward)(float *din, const float *dout, const float *x, size_t n);
    // Straight-through Gumbel-sigmoid over logits (rows, cols): z = logits + noise, noise row r at
    // r * noise_stride (noise may be NULL: none); hard[r * hard_stride + c] = 1 if z > threshold
    // else 0; soft (rows, cols) = sigmoid(z / tau) is kept for the backward, whose gradient is that
    // of soft: dlogits = dhard * soft * (1 - soft) / tau (overwrite).
    void (*st_gate_forward)(float *hard, int hard_stride, float *soft, const float *logits, const float *noise,
                            int noise_stride, int rows, int cols, float tau, float threshold);
    void (*st_gate_backward)(float *dlogits, const float *dhard, int hard_stride, const float *soft, int rows,
                             int cols, float tau);
    // out (B, T, G * S) = x * mask[b * mask_stride + g] on channel g * S + s: the head mask after
    // attention (G heads of S = head_dim) and the channel-group mask after fc1 (G groups of S units).
    // out may alias x.
    void (*group_mask_forward)(float *out, const float *x, const float *mask, int mask_stride, int B, int T, int G,
                               int S);
    // dx = dout * mask (overwrite; dx may alias dout); dmask[b * mask_stride + g] += sum over t and
    // the group's channels of dout * x (accumulates; NULL skips).
    void (*group_mask_backward)(float *dx, float *dmask, const float *dout, const float *x, const float *mask,
                                int mask_stride, int B, int T, int G, int S);
    // Realised compute ratio per sample (docs/algorithm.md 4.1) from hard masks head (B, L, H), chan (B, L, H),
    // keep (B, L, T): ratio[b] = sum_l (mean_h head * attn + mean_h chan * mean_t keep * mlp)
    // / (L (attn + mlp)), attn and mlp being one block's MACs.
    void (*flops_ratio_forward)(float *ratio, const float *head, const float *chan, const float *keep, int B, int L,
                                int H, int T, float attn, float mlp);
    // Adds dratio[b] * d ratio[b] / d(mask) into dhead, dchan, dkeep (same shapes as the masks).
    void (*flops_ratio_backward)(float *dhead, float *dchan, float *dkeep, const float *dratio, const float *chan,
                                 const float *keep, int B, int L, int H, int T, float attn, float mlp);

    // ---- diffusion objective (docs/algorithm.md 2.2, 2.3) ----
    // xt (B, n) = coef[b][SQRT_ALPHA_BAR] * x0 + coef[b][SQRT_ONE_MINUS_ALPHA_BAR] * noise.
    void (*q_sample)(float *xt, const float *x0, const float *noise, const float *coef, int B, size_t n);
    // model_out (B, C_out, n) with C_out = 2C (learned sigma: [eps | v]) or C. Per sample:
    // mse[b] = mean((noise - eps)^2); vb[b] = frozen-mean variational bound in bits (KL for t > 0,
    // discretized Gaussian decoder NLL for t = 0), 0 without learned sigma. coef (B, COEF_COUNT).
    void (*diffusion_loss_forward)(float *mse, float *vb, const float *model_out, const float *x0, const float *xt,
                                   const float *noise, const float *coef, int B, int C, size_t n, int learn_sigma);
    // dmodel_out (B, C_out, n) = dloss[b] * d(mse[b] + vb[b]) / dmodel_out (overwrite); dloss (B)
    // is each sample's weight in the total loss (1/B for a batch mean).
    void (*diffusion_loss_backward)(float *dmodel_out, const float *dloss, const float *model_out, const float *x0,
                                    const float *xt, const float *noise, const float *coef, int B, int C, size_t n,
                                    int learn_sigma);

    // ---- sampling (docs/algorithm.md 2.5-2.7) ----
    // model_out (2n, C_out, hw): rows [0, n) conditional, [n, 2n) unconditional. Rewrites rows
    // [0, n): channels below `guided` become uncond + scale * (cond - uncond), the others keep the
    // conditional values (DiT and DyDiT guide channels 0-2 only).
    void (*cfg_combine)(float *model_out, int n, int C_out, size_t hw, int guided, float scale);
    // One ancestral DDPM step: x_prev = mu + [t > 0] exp(logvar / 2) noise from the model output
    // (B, C_out, hw) for x (B, C, hw): eps-parameterised mean, learned-range log variance (or DiT's
    // fixed large variance without learned sigma). clip: the x0 prediction is clamped to [-1, 1]
    // first (for data in that range; DiT's latents are not). coef (B, COEF_COUNT); x_prev may alias x.
    void (*ddpm_step)(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef,
                      int B, int C, size_t hw, int learn_sigma, int clip);
    // One DDIM step with eta from the eps channels of the model output (eta 0: deterministic; noise
    // may then be NULL); clip as for ddpm_step. x_prev may alias x.
    void (*ddim_step)(float *x_prev, const float *x, const float *model_out, const float *noise, const float *coef,
                      int B, int C, size_t hw, int learn_sigma, int clip, float eta);

    // ---- DyDiT inference: narrowed and token-pruned layers (docs/algorithm.md 5) ----
    // out (R, k * S) = column blocks blocks[0..k) (each S wide) of in (R, G * S): packs the weight
    // slices of active heads and channel groups (a row-block gather is the R = 1 case).
    void (*gather_blocks)(float *out, const float *in, const int32_t *blocks, int R, int G, int S, int k);
    // out (K, D) = modulate(LN(x[rows[i]]), shift[b], scale[b]), b = rows[i] / T: the kept tokens'
    // MLP input, gathered from x (B * T, D); shift/scale rows at stride mod_stride.
    void (*gather_layernorm_modulate)(float *out, const float *x, const int32_t *rows, const float *shift,
                                      const float *scale, int mod_stride, int T, int K, int D);
    // x[rows[i]] += gate[b] * branch[i], b = rows[i] / T, for K distinct rows; gate rows at gate_stride.
    void (*gate_scatter_add)(float *x, const float *branch, const int32_t *rows, const float *gate, int gate_stride,
                             int T, int K, int D);

    // ---- randomness ----
    // out (B, n): standard normals from the stream (seed, purpose, step, sample0 + b), element i.
    void (*randn)(float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B, size_t n);
    // out (B, n): standard logistic noise log(u) - log(1 - u) (a difference of two Gumbels), keyed
    // like randn.
    void (*rand_logistic)(float *out, uint64_t seed, uint32_t purpose, uint32_t step, uint32_t sample0, int B,
                          size_t n);

    // ---- convolutional layers (the SD VAE; inference only) ----
    // out (B, Co, Ho, Wo) = conv2d(x (B, Ci, H, W), weight (Co, Ci, k, k)) + bias (Co), stride s,
    // zero padding pad_top/pad_left/pad_bottom/pad_right (asymmetric for the VAE's down-sampling);
    // Ho = (H + pad_top + pad_bottom - k) / s + 1, likewise Wo.
    void (*conv2d_forward)(float *out, const float *x, const float *weight, const float *bias, int B, int Ci, int H,
                           int W, int Co, int k, int stride, int pad_top, int pad_left, int pad_bottom, int pad_right);
    // out (B, C, n) = GroupNorm(x) * gamma[c] + beta[c] over `groups` groups of C / groups channels,
    // statistics over the group's channels and all n positions, eps; then SiLU when silu != 0.
    // out may alias x.
    void (*group_norm_forward)(float *out, const float *x, const float *gamma, const float *beta, int B, int C,
                               size_t n, int groups, float eps, int silu);
    // out (B, C, 2H, 2W): nearest-neighbour up-sampling of x (B, C, H, W) by 2.
    void (*upsample_nearest2x)(float *out, const float *x, int B, int C, int H, int W);
    // out (B, cols, rows) = transpose of each x (B, rows, cols).
    void (*transpose)(float *out, const float *x, int B, int rows, int cols);
    // out = min(max(x, lo), hi), n elements (the posterior's log-variance bounds). out may alias x.
    void (*clamp)(float *out, const float *x, float lo, float hi, size_t n);

    // ---- optimisation (over flat parameter buffers) ----
    // *out = sum of x^2 over n elements, accumulated in double in fixed-size chunks. out is a host
    // pointer: the op has finished when it returns.
    void (*sum_squares)(double *out, const float *x, size_t n);
    // One AdamW step (decoupled weight decay, bias-corrected moments; step counts from 1). Scalars
    // arrive in double so that derived ones (1 - beta2, bias corrections) are rounded once, like
    // PyTorch's Python-float hyper-parameters.
    void (*adamw_update)(float *param, const float *grad, float *m, float *v, size_t n, double lr, double beta1,
                         double beta2, double eps, double weight_decay, long step);
    // ema = decay * ema + (1 - decay) * param, with 1 - decay formed in double.
    void (*ema_update)(float *ema, const float *param, size_t n, double decay);
};

// The fp32 CPU reference backend (OpenMP + OpenBLAS).
extern const Ops ops_cpu;

// The CUDA backend (kernels/cuda), linked when the build found nvcc (DYDIT_CUDA is then defined);
// cuda_init (kernels/cuda/cuda_ops.h) must bind a device before its first use.
extern const Ops ops_cuda;
