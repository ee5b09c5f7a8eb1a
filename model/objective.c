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

// Batch means of the per-sample mse and vb of the last diffusion_loss_forward.
static void batch_means(Objective *o, int B, double *mse_mean, double *vb_mean) {
    float *v = xmalloc((size_t)B * 2 * sizeof(float));
    o->ops->download(v, o->mse, (size_t)B * sizeof(float));
    o->ops->download(v + B, o->vb, (size_t)B * sizeof(float));
    double m = 0, s = 0;
    for (int b = 0; b < B; b++) {
        m += v[b];
        s += v[B + b];
    }
    *mse_mean = m / B;
    *vb_mean = s / B;
    free(v);
}

// One forward of the network on x_t (already in act.x), its diffusion loss, and with
// sample_weight != 0 the loss gradient into act's dout.
static void diffusion_pass(Objective *o, DitModel *m, const float *t_net, const int32_t *y, int B, float sample_weight,
                           const DitRouting *routing, double *mse, double *vb) {
    const Ops *ops = o->ops;
    const DitConfig *c = &m->cfg;
    size_t hw = (size_t)c->input_size * c->input_size;
    dit_forward(m, t_net, y, B, routing);
    ops->diffusion_loss_forward(o->mse, o->vb, m->act.out, o->x0, m->act.x, o->noise, o->coef, B, c->in_channels, hw,
                                c->learn_sigma);
    batch_means(o, B, mse, vb);
    if (sample_weight != 0.0f)
        ops->diffusion_loss_backward(m->grad.dout, o->dloss, m->act.out, o->x0, m->act.x, o->noise, o->coef, B,
                                     c->in_channels, hw, c->learn_sigma);
}

// The FLOPs loss over groups of the realised ratios, its gradient into grad.dflops, and the keep rates.
static void flops_terms(Objective *o, DitModel *m, const DynamicTerms *dyn, int B, LossTerms *terms) {
    const Ops *ops = o->ops;
    const DitConfig *c = &m->cfg;
    int L = c->depth, H = c->heads, T = dit_tokens(c);
    int group = dyn->flops_group_size > 0 ? dyn->flops_group_size : B;
    if (B % group) die("the batch (%d) must be a multiple of the FLOPs group size (%d)", B, group);
    int groups = B / group;
    float *ratio = xmalloc((size_t)B * sizeof(float)), *dratio = xmalloc((size_t)B * sizeof(float));
    ops->download(ratio, m->act.flops_ratio, (size_t)B * sizeof(float));
    double loss = 0, mean = 0;
    for (int gi = 0; gi < groups; gi++) {
        double gmean = 0;
        for (int b = gi * group; b < (gi + 1) * group; b++) gmean += ratio[b];
        gmean /= group;
        double diff = gmean - dyn->target;
        loss += dyn->flops_weight * diff * diff / groups;
        for (int b = gi * group; b < (gi + 1) * group; b++)
            dratio[b] = (float)(2.0 * dyn->flops_weight * diff / ((double)groups * group));
    }
    for (int b = 0; b < B; b++) mean += ratio[b];
    terms->flops_loss = loss;
    terms->flops_ratio = mean / B;
    ops->upload(m->grad.dflops, dratio, (size_t)B * sizeof(float));

    size_t nh = (size_t)B * L * H, nt = (size_t)B * L * T;
    float *masks = xmalloc((2 * nh + nt) * sizeof(float));
    ops->download(masks, m->act.head_mask, nh * sizeof(float));
    ops->download(masks + nh, m->act.chan_mask, nh * sizeof(float));
    ops->download(masks + 2 * nh, m->act.token_mask, nt * sizeof(float));
    double on[3] = {0, 0, 0};
    for (size_t i = 0; i < nh; i++) {
        on[0] += masks[i];
        on[1] += masks[nh + i];
    }
    for (size_t i = 0; i < nt; i++) on[2] += masks[2 * nh + i];
    terms->head_keep = on[0] / nh;
    terms->group_keep = on[1] / nh;
    terms->token_keep = on[2] / nt;
    free(masks);
    free(ratio);
    free(dratio);
}

LossTerms objective_run(Objective *o, DitModel *m, const DiffusionSchedule *s, const int32_t *t, const int32_t *y,
                        int B, float sample_weight, const DynamicTerms *dyn) {
    if (B > o->capacity || B > m->capacity) die("internal: batch %d exceeds the planned capacity", B);
    if (!dyn != !m->cfg.dynamic) die("internal: DyDiT terms must be given exactly for a DyDiT");
    const Ops *ops = o->ops;
    LossTerms terms;
    memset(&terms, 0, sizeof(terms));

    float *coef = xmalloc((size_t)B * COEF_COUNT * sizeof(float)), *host = xmalloc((size_t)B * sizeof(float));
    diffusion_gather_coefs(s, t, B, coef);
    ops->upload(o->coef, coef, (size_t)B * COEF_COUNT * sizeof(float));
    for (int b = 0; b < B; b++) host[b] = sample_weight;
    ops->upload(o->dloss, host, (size_t)B * sizeof(float));
    for (int b = 0; b < B; b++) host[b] = (float)s->timestep_map[t[b]]; // the network sees original timesteps
    ops->q_sample(m->act.x, o->x0, o->noise, o->coef, B, o->sample_numel);

    DitRouting routing = dit_routing_eval();
    if (dyn) {
        routing.noisy = dyn->noisy;
        routing.tau = dyn->tau;
        routing.threshold = dyn->threshold;
        routing.flops_gradient = sample_weight != 0.0f;
    }
    diffusion_pass(o, m, host, y, B, sample_weight, &routing, &terms.mse, &terms.vb);
    if (dyn) flops_terms(o, m, dyn, B, &terms);
    if (sample_weight != 0.0f) dit_backward(m, B);

    if (dyn && dyn->stage == 1) { // the complete path on the same x_t (act.x is left intact)
        DitRouting complete = routing;
        complete.complete = 1;
        complete.flops_gradient = 0;
        diffusion_pass(o, m, host, dyn->y_complete ? dyn->y_complete : y, B, sample_weight, &complete,
                       &terms.complete_mse, &terms.complete_vb);
        if (sample_weight != 0.0f) dit_backward(m, B);
    }
    terms.loss = terms.mse + terms.vb + terms.complete_mse + terms.complete_vb + terms.flops_loss;
    free(coef);
    free(host);
    return terms;
}
