// model/objective.h: the diffusion training objective on one batch (docs/algorithm.md 2.2-2.3), and DyDiT's
// fine-tuning objective (docs/algorithm.md 4.1, 4.3): x_t = q_sample(x0, noise, t), out = DiT(x_t, t, y),
// per-sample mse and vb, for a DyDiT the FLOPs loss on the realised compute ratio and in stage 1
// the complete path's loss, and the gradient of the weighted total into every parameter.
#pragma once
#include <stdint.h>

#include "model/diffusion.h"
#include "model/dit.h"

typedef struct {
    const Ops *ops;
    int capacity;
    size_t sample_numel; // C * H * W of one latent
    float *x0;           // (B, C, H, W) clean latents; the caller fills them
    float *noise;        // (B, C, H, W) epsilon; the caller fills it (e.g. ops->randn)
    float *coef;         // (B, COEF_COUNT)
    float *mse, *vb;     // (B) per-sample loss terms
    float *dloss;        // (B) weight of each sample in the total loss
} Objective;

// Where one call's B samples sit in the step's FLOPs groups when a step's batch is split over ranks
// and micro-batches; all zero when the call holds the whole batch. A group's mean F must be known
// before the backward: it is either given (`group_means`, from a forward-only pass over the
// micro-batches, objective_flops_ratios) or completed during the call by `reduce`, which adds the
// other ranks' per-group sums of F to this call's (an all-reduce).
typedef struct {
    int batch;                 // samples in the step (0: this call's B)
    int first;                 // position of the call's first sample in the step's batch
    const double *group_means; // (batch / group size) mean F of every group, or NULL
    // completes the per-group sums, or NULL: this call holds its groups whole
    void (*reduce)(void *ctx, double *sums, int count);
    void *reduce_ctx;
} FlopsGroups;

// DyDiT's terms. The router noise, when used, is in the model's act.noise_* (the caller fills it).
typedef struct {
    int stage;                 // 1: dynamic + complete path + FLOPs loss; 2: dynamic + FLOPs loss
    float target;              // the FLOPs target of this step (lambda after its warm-up)
    float flops_weight;        // weight of (mean F - target)^2 (docs/algorithm.md 4.1: 2.0)
    int flops_group_size;      // the FLOPs loss averages (mean_g F - target)^2 over groups of this many
                               // consecutive samples of the step (DDP squares each rank's mean); 0:
                               // one group, the whole step
    FlopsGroups groups;        // a step split over calls
    float tau, threshold;      // straight-through Gumbel-sigmoid
    int noisy;                 // 1: the routers add act.noise_*; 0: deterministic decisions
    const int32_t *y_complete; // (B) labels of the complete path in stage 1; NULL: y
} DynamicTerms;

// One call's terms. For a call holding part of a step, flops_loss is this call's share (the shares
// of a step's calls add up to its FLOPs loss); every other term is a mean over the call's samples.
typedef struct {
    double loss;                              // total: mse + vb (+ complete) + flops_loss
    double mse, vb;                           // batch means of the (dynamic) prediction's terms
    double complete_mse, complete_vb;         // stage 1: the complete path's
    double flops_loss, flops_ratio;           // DyDiT: the FLOPs term and mean_b F
    double head_keep, group_keep, token_keep; // DyDiT: mean fraction of heads, channel groups, tokens on
} LossTerms;

void objective_create(Objective *o, const Ops *ops, const DitConfig *cfg, int capacity);
void objective_destroy(Objective *o);

// Runs the objective for timestep indices t (B) of schedule s and labels y (B) (after any label
// dropout). With sample_weight != 0 it also adds the gradient of
//     sample_weight * sum_b (mse[b] + vb[b] [+ complete terms])  +  flops_loss
// into the model's gradients: sample_weight 1/B gives the gradient of the batch mean. dyn must be
// given for a DyDiT and NULL for a DiT. Returns this batch's terms.
LossTerms objective_run(Objective *o, DitModel *m, const DiffusionSchedule *s, const int32_t *t, const int32_t *y,
                        int B, float sample_weight, const DynamicTerms *dyn);

// DyDiT: ratio (B) = the realised FLOPs ratio of each sample from a forward pass alone, on the same
// inputs objective_run takes; a later objective_run on them realises the same masks.
void objective_flops_ratios(Objective *o, DitModel *m, const DiffusionSchedule *s, const int32_t *t, const int32_t *y,
                            int B, const DynamicTerms *dyn, float *ratio);
