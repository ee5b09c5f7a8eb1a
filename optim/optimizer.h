// optim/optimizer.h: one optimisation step on the host side of the Ops table (docs/algorithm.md 4.5).
//
// Per iteration the training loop calls
//     norm = optim_grad_norm(&opt, grad, n);               global L2 norm of the gradients
//     info = optim_step(&opt, iteration, norm, param, grad, m, v, n);   policy + AdamW
//     optim_ema_update(&opt, ema, param, n_ema);            EMA, also after a skipped step
// on flat backend buffers (the tensor table's trainable range for AdamW; DiT's EMA also averages
// the frozen pos_embed, so its range may be the whole buffer). The norm is an argument of
// optim_step so that a caller holding gradient shards can add the shards' optim_sum_squares
// across processes and pass sqrt of the total.
//
// A large gradient either scales the gradients down (clip) or cancels the update (skip); a
// non-finite norm always cancels the update and is reported, whatever the policy. A cancelled
// update leaves parameters, moments and the step count untouched.
#pragma once
#include <stddef.h>

#include "kernels/ops.h"

typedef enum {
    GRAD_POLICY_NONE, // always update with the gradients as they are
    GRAD_POLICY_CLIP, // torch clip_grad_norm_: scale by max / (norm + 1e-6) when that is below 1
    GRAD_POLICY_SKIP, // DyDiT: no update when norm >= max, else an unclipped update
} GradPolicy;

typedef struct {
    double lr;           // learning rate after warm-up
    double beta1, beta2; // moment decay rates
    double eps;          // added to the bias-corrected sqrt(v)
    double weight_decay; // decoupled (AdamW): param *= 1 - lr * weight_decay
    long warmup_steps;   // the LR rises linearly over this many iterations; 0: constant
    GradPolicy policy;
    double max_grad_norm; // the clip / skip threshold
    double ema_decay;     // ema = decay * ema + (1 - decay) * param
} OptimConfig;

// docs/algorithm.md 4.5: lr 1e-4, betas (0.9, 0.999), eps 1e-8, weight decay 0, no warm-up, EMA decay 0.9999;
// policy NONE with max_grad_norm 15 (the DyDiT default threshold, used once a policy is chosen).
OptimConfig optim_config_default(void);

typedef struct {
    const Ops *ops;
    OptimConfig cfg;
    long step; // AdamW updates applied so far (the bias-correction count); checkpointed
} Optimizer;

void optim_init(Optimizer *opt, const Ops *ops, const OptimConfig *cfg);

// LR of iteration `iteration` (counted from 0): lr * (iteration + 1) / warmup_steps during the
// warm-up, lr after it.
double optim_lr_at(const OptimConfig *cfg, long iteration);

// Sum of squares of x[0, n) (backend memory), accumulated in double, on the host.
double optim_sum_squares(Optimizer *opt, const float *x, size_t n);
// sqrt(optim_sum_squares(grad)).
double optim_grad_norm(Optimizer *opt, const float *grad, size_t n);

typedef struct {
    double grad_norm; // the norm passed in (before any clipping)
    double lr;        // LR of the update; 0 when it was cancelled
    int updated;      // 1: AdamW ran
    int clipped;      // 1: the gradients were scaled down first
    int nonfinite;    // 1: the norm was NaN or infinite (the update was cancelled)
} OptimStepInfo;

// Applies the policy to grad (clip scales it in place) and, unless cancelled, one AdamW step to
// param, m, v (n floats each) with step count opt->step + 1.
OptimStepInfo optim_step(Optimizer *opt, long iteration, double grad_norm, float *param, float *grad, float *m,
                         float *v, size_t n);

void optim_ema_update(Optimizer *opt, float *ema, const float *param, size_t n);
