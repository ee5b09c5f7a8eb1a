#include "model/objective.h"

#include <string.h>

#include "common/util.h"

void objective_create(Objective *o, const Ops *ops, const DitConfig *cfg, int capacity) {
    memset(o, 0, sizeof(*o));
    o->ops = ops;
    o->capacity = capacity;
    o->sample_numel = (size_t)cfg->in_channels * cfg->input_size * cfg->input_size;
    size_t batch = (size_t)capacity * o->sample_numel * sizeof(float);
    o->x0 = ops->alloc(batch);
    o->noise = ops->alloc(batch);
    o->coef = ops->alloc((size_t)capacity * COEF_COUNT * sizeof(float));
    o->mse = ops->alloc((size_t)capacity * sizeof(float));
    o->vb = ops->alloc((size_t)capacity * sizeof(float));
    o->dloss = ops->alloc((size_t)capacity * sizeof(float));
}

void objective_destroy(Objective *o) {
    const Ops *ops = o->ops;
    ops->release(o->x0);
    ops->release(o->noise);
    ops->release(o->coef);
    ops->release(o->mse);
    ops->release(o->vb);
    ops->release(o->dloss);
    memset(o, 0, sizeof(*o));
}

LossTerms objective_run(Objective *o, DitModel *m, const DiffusionSchedule *s, const int32_t *t, const int32_t *y,
                        int B, float sample_weight) {
    if (B > o->capacity || B > m->capacity) die("internal: batch %d exceeds the planned capacity", B);
    const Ops *ops = o->ops;
    const DitConfig *c = &m->cfg;
    size_t hw = (size_t)c->input_size * c->input_size;

    float *coef = xmalloc((size_t)B * COEF_COUNT * sizeof(float)), *tf = xmalloc((size_t)B * sizeof(float));
    diffusion_gather_coefs(s, t, B, coef);
    for (int b = 0; b < B; b++) tf[b] = (float)s->timestep_map[t[b]];
    ops->upload(o->coef, coef, (size_t)B * COEF_COUNT * sizeof(float));

    ops->q_sample(m->act.x, o->x0, o->noise, o->coef, B, o->sample_numel);
    dit_forward(m, tf, y, B);
    ops->diffusion_loss_forward(o->mse, o->vb, m->act.out, o->x0, m->act.x, o->noise, o->coef, B, c->in_channels, hw,
                                c->learn_sigma);

    float *mse = xmalloc((size_t)B * sizeof(float)), *vb = xmalloc((size_t)B * sizeof(float));
    ops->download(mse, o->mse, (size_t)B * sizeof(float));
    ops->download(vb, o->vb, (size_t)B * sizeof(float));
    LossTerms terms = {0};
    for (int b = 0; b < B; b++) {
        terms.mse += mse[b];
        terms.vb += vb[b];
    }
    terms.mse /= B;
    terms.vb /= B;
    terms.loss = terms.mse + terms.vb;

    if (sample_weight != 0.0f) {
        for (int b = 0; b < B; b++) tf[b] = sample_weight; // reuse as the per-sample weights
        ops->upload(o->dloss, tf, (size_t)B * sizeof(float));
        ops->diffusion_loss_backward(m->grad.dout, o->dloss, m->act.out, o->x0, m->act.x, o->noise, o->coef, B,
                                     c->in_channels, hw, c->learn_sigma);
        dit_backward(m, B);
    }
    free(coef);
    free(tf);
    free(mse);
    free(vb);
    return terms;
}
