// model/dit.h: the DiT / DyDiT network as a sequence of op calls (forward and hand-written
// backward). Nothing here touches tensor memory: all buffers belong to the backend in `ops`.
//
// A DyDiT (cfg.dynamic) runs in training form (docs/algorithm.md 3.1, 3.8): every token and channel is
// computed, and 0/1 masks from the routers switch heads, MLP channel groups and tokens' MLP
// updates off, so that the routers receive gradients through the straight-through estimator.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"
#include "model/config.h"
#include "model/tensors.h"

// Activations saved by the forward for the backward, planned for `capacity` samples. Per-block
// tensors are stacked (L, capacity, ...). Shapes below are per call with batch B <= capacity.
typedef struct {
    float *x;                   // (B, C, H, W) network input (x_t); callers fill it
    float *t;                   // (B) timesteps as float
    int32_t *y;                 // (B) labels (num_classes = null class)
    float *patches;             // (B, T, C*p*p)
    float *t_freq;              // (B, F)
    float *t_hidden, *t_act;    // (B, D) first timestep Linear, and its SiLU
    float *emb_t, *emb_y;       // (B, D) E_t and E_y
    float *c, *c_act;           // (B, D) c = E_t + E_y, and SiLU(c)
    float *mod;                 // (B, L*6D + 2D) every adaLN output; see dit_mod_width
    float *residual;            // (L + 1, B, T, D) the stream entering block l; [L] enters the final layer
    float *mid;                 // (L, B, T, D) the stream after the attention update
    float *ln1_mean, *ln1_rstd; // (L, B, T)
    float *ln1_out;             // (L, B, T, D) modulate(LN(x))
    float *qkv;                 // (L, B, T, 3D)
    float *probs;               // (L, B, H, T, T)
    float *att;                 // (L, B, T, D) heads concatenated
    float *att_proj;            // (L, B, T, D)
    float *ln2_mean, *ln2_rstd; // (L, B, T)
    float *ln2_out;             // (L, B, T, D)
    float *fc1;                 // (L, B, T, M) pre-activation
    float *gelu;                // (L, B, T, M)
    float *fc2;                 // (L, B, T, D)
    float *lnf_mean, *lnf_rstd; // (B, T)
    float *lnf_out;             // (B, T, D)
    float *out_tokens;          // (B, T, p*p*C_out)
    float *out;                 // (B, C_out, H, W) the network output

    // DyDiT only (NULL for a DiT). R = token-router hidden width, G = H channel groups of M / H.
    float *noise_attn, *noise_mlp;    // (B, L, H-1) logistic router noise; callers fill it when noisy
    float *noise_token;               // (B, L, T)
    float *attn_logits, *attn_soft;   // (B, L, H-1) head-router logits and their sigmoid((z + g) / tau)
    float *mlp_logits, *mlp_soft;     // (B, L, H-1) channel-group routers
    float *head_mask, *chan_mask;     // (B, L, H) 0/1, column 0 always 1
    float *token_hidden, *token_act;  // (L, B, T, R) token-router hidden layer, before and after ReLU
    float *token_logits, *token_soft; // (L, B, T)
    float *token_mask;                // (B, L, T) 0/1: the token's MLP update is kept
    float *masked;                    // (B, T, max(D, M)) scratch: the masked attention or fc1 output
    float *flops_ratio;               // (B) realised compute ratio of the attention and MLP blocks
} DitActivations;

// Gradient scratch for the backward, reused across blocks.
typedef struct {
    float *dout;                 // (B, C_out, H, W) gradient of the output; callers fill it
    float *dout_tokens;          // (B, T, p*p*C_out)
    float *dresidual;            // (B, T, D) gradient of the residual stream, walked backwards
    float *dbranch, *dtmp;       // (B, T, D)
    float *dhidden;              // (B, T, M)
    float *dqkv;                 // (B, T, 3D)
    float *dprobs;               // (B, H, T, T)
    float *dmod;                 // (B, L*6D + 2D)
    float *dc_act, *dc, *dt_act; // (B, D)
    float *demb_t;               // (B, D)

    // DyDiT only
    float *dflops;                     // (B) d loss / d flops_ratio[b]; callers fill it (see DitRouting)
    float *dhead, *dchan;              // (B, L, H) gradients of the masks
    float *dtoken;                     // (B, L, T)
    float *dattn_logits, *dmlp_logits; // (B, L, H-1)
    float *dtoken_logits;              // (B, T)
    float *dtoken_act;                 // (B, T, R)
    float *drouter_in, *drouter_tmp;   // (B, D) gradient reaching the width routers' input
} DitGradients;

// How a DyDiT forward treats its routers (ignored for a DiT).
typedef struct {
    int complete;       // 1: the complete path (docs/algorithm.md 3.7): masks are computed but not applied, and the
                        //    backward sends no gradient to the routers
    int noisy;          // 1: add act.noise_* to the logits (training); 0: deterministic decisions
    float tau;          // temperature of the straight-through gradient (docs/algorithm.md 3.3: 5)
    float threshold;    // a mask is on when logit + noise > threshold (docs/algorithm.md 3.3: 0)
    int flops_gradient; // 1: the backward adds grad.dflops through the realised FLOPs ratio
} DitRouting;

// Evaluation routing: deterministic decisions, tau 5, threshold 0, masks applied.
DitRouting dit_routing_eval(void);

typedef struct {
    DitConfig cfg;
    const Ops *ops;
    TensorTable table;
    float *params;   // (table.total) backend buffer
    float *grads;    // (table.total) mirror of params; pos_embed's slot stays zero
    DitWeights w, g; // views of params and grads
    int capacity;    // batch the activations are planned for (0: none yet)
    void *arena;     // the single activation allocation
    size_t arena_bytes;
    DitActivations act;
    DitGradients grad;
    DitRouting routing; // of the last forward; the backward follows it
} DitModel;

// Builds the table and allocates zeroed parameters and gradients on the backend.
void dit_model_create(DitModel *m, const DitConfig *cfg, const Ops *ops);
void dit_model_destroy(DitModel *m);
// Bytes of activations and gradient scratch for a batch.
size_t dit_activation_bytes(const DitConfig *cfg, int batch);
// (Re)plans activations for up to `batch` samples.
void dit_model_plan(DitModel *m, int batch);

// out = DiT(act.x, t, y) into act.out. t_host (B) timesteps (any real value), y_host (B) labels.
// routing: how a DyDiT uses its routers (NULL: dit_routing_eval()); for a DyDiT the forward also
// fills the masks and act.flops_ratio.
void dit_forward(DitModel *m, const float *t_host, const int32_t *y_host, int B, const DitRouting *routing);
// Given grad.dout (and grad.dflops when the forward's routing asked for the FLOPs gradient),
// accumulates every parameter gradient into grads, after the same-B forward.
void dit_backward(DitModel *m, int B);
