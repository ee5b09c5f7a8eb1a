// model/objective.h: DiT's diffusion training objective on one batch (SPEC 2.2-2.3):
// x_t = q_sample(x0, noise, t), out = DiT(x_t, t, y), per-sample mse and vb, and the gradient of
// the weighted loss sum into every parameter.
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

typedef struct {
    double loss, mse, vb; // batch means
} LossTerms;

void objective_create(Objective *o, const Ops *ops, const DitConfig *cfg, int capacity);
void objective_destroy(Objective *o);

// Runs the objective for timesteps t (B) and labels y (B) (after any label dropout). With
// sample_weight != 0 it also adds sample_weight * d(mse[b] + vb[b])/d(params), summed over the
// batch, into the model's gradients: 1/B gives the gradient of the batch mean, 1/(global batch)
// that of a global mean in data parallelism. Returns the batch means of this batch.
LossTerms objective_run(Objective *o, DitModel *m, const DiffusionSchedule *s, const int32_t *t, const int32_t *y,
                        int B, float sample_weight);
