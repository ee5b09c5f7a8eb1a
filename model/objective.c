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

// The FLOPs loss over the step's groups of realised ratios (this call's share of it), its gradient
// into grad.dflops, and the keep rates.
static void flops_terms(Objective *o, DitModel *m, const DynamicTerms *dyn, int B, LossTerms *terms) {
    const Ops *ops = o->ops;
    const DitConfig *c = &m->cfg;
    const FlopsGroups *fg = &dyn->groups;
    int L = c->depth, H = c->heads, T = dit_tokens(c);
    int total = fg->batch > 0 ? fg->batch : B, first = fg->batch > 0 ? fg->first : 0;
    int group = dyn->flops_group_size > 0 ? dyn->flops_group_size : total;
    if (total % group) die("the batch (%d) must be a multiple of the FLOPs group size (%d)", total, group);
    if (first < 0 || first + B > total) die("internal: samples %d..%d of a batch of %d", first, first + B, total);
    int groups = total / group;
    float *ratio = xmalloc((size_t)B * sizeof(float)), *dratio = xmalloc((size_t)B * sizeof(float));
    ops->download(ratio, m->act.flops_ratio, (size_t)B * sizeof(float));
    double *mean = xcalloc((size_t)groups, sizeof(double));
    if (fg->group_means) {
        memcpy(mean, fg->group_means, (size_t)groups * sizeof(double));
    } else {
        for (int b = 0; b < B; b++) mean[(first + b) / group] += ratio[b];
        if (fg->reduce) fg->reduce(fg->reduce_ctx, mean, groups);
        for (int g = 0; g < groups; g++) mean[g] /= group;
    }
    double loss = 0, sum = 0;
    for (int g = first / group; g <= (first + B - 1) / group; g++) {
        int lo = g * group > first ? g * group : first, hi = (g + 1) * group < first + B ? (g + 1) * group : first + B;
        double diff = mean[g] - dyn->target;
        loss += dyn->flops_weight * diff * diff / groups * ((double)(hi - lo) / group);
        for (int p = lo; p < hi; p++)
            dratio[p - first] = (float)(2.0 * dyn->flops_weight * diff / ((double)groups * group));
    }
    for (int b = 0; b < B; b++) sum += ratio[b];
    terms->flops_loss = loss;
    terms->flops_ratio = sum / B;
    ops->upload(m->grad.dflops, dratio, (size_t)B * sizeof(float));
    free(mean);

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

// Per-sample coefficients of t, and x_t into the model's input; t_net (B) receives the timesteps the
// network sees (the original ones of a respaced schedule).
static void prepare_inputs(Objective *o, DitModel *m, const DiffusionSchedule *s, const int32_t *t, int B,
                           float *t_net) {
    float *coef = xmalloc((size_t)B * COEF_COUNT * sizeof(float));
    diffusion_gather_coefs(s, t, B, coef);
    o->ops->upload(o->coef, coef, (size_t)B * COEF_COUNT * sizeof(float));
    for (int b = 0; b < B; b++) t_net[b] = (float)s->timestep_map[t[b]];
    o->ops->q_sample(m->act.x, o->x0, o->noise, o->coef, B, o->sample_numel);
    free(coef);
}

static DitRouting routing_of(const DynamicTerms *dyn, float sample_weight) {
    DitRouting routing = dit_routing_eval();
    if (dyn) {
        routing.noisy = dyn->noisy;
        routing.tau = dyn->tau;
        routing.threshold = dyn->threshold;
        routing.flops_gradient = sample_weight != 0.0f;
    }
    return routing;
}

static void check_call(const Objective *o, const DitModel *m, int B, const DynamicTerms *dyn) {
    if (B > o->capacity || B > m->capacity) die("internal: batch %d exceeds the planned capacity", B);
    if (!dyn != !m->cfg.dynamic) die("internal: DyDiT terms must be given exactly for a DyDiT");
}

LossTerms objective_run(Objective *o, DitModel *m, const DiffusionSchedule *s, const int32_t *t, const int32_t *y,
                        int B, float sample_weight, const DynamicTerms *dyn) {
    check_call(o, m, B, dyn);
    const Ops *ops = o->ops;
    LossTerms terms;
    memset(&terms, 0, sizeof(terms));

    float *host = xmalloc((size_t)B * sizeof(float)), *t_net = xmalloc((size_t)B * sizeof(float));
    for (int b = 0; b < B; b++) host[b] = sample_weight;
    ops->upload(o->dloss, host, (size_t)B * sizeof(float));
    prepare_inputs(o, m, s, t, B, t_net);

    DitRouting routing = routing_of(dyn, sample_weight);
    diffusion_pass(o, m, t_net, y, B, sample_weight, &routing, &terms.mse, &terms.vb);
    if (dyn) flops_terms(o, m, dyn, B, &terms);
    if (sample_weight != 0.0f) dit_backward(m, B);

    if (dyn && dyn->stage == 1) { // the complete path on the same x_t (act.x is left intact)
        DitRouting complete = routing;
        complete.complete = 1;
        complete.flops_gradient = 0;
        diffusion_pass(o, m, t_net, dyn->y_complete ? dyn->y_complete : y, B, sample_weight, &complete,
                       &terms.complete_mse, &terms.complete_vb);
        if (sample_weight != 0.0f) dit_backward(m, B);
    }
    terms.loss = terms.mse + terms.vb + terms.complete_mse + terms.complete_vb + terms.flops_loss;
    free(host);
    free(t_net);
    return terms;
}

void objective_flops_ratios(Objective *o, DitModel *m, const DiffusionSchedule *s, const int32_t *t, const int32_t *y,
                            int B, const DynamicTerms *dyn, float *ratio) {
    check_call(o, m, B, dyn);
    if (!dyn) die("internal: FLOPs ratios of a DiT");
    float *t_net = xmalloc((size_t)B * sizeof(float));
    prepare_inputs(o, m, s, t, B, t_net);
    DitRouting routing = routing_of(dyn, 0.0f);
    dit_forward(m, t_net, y, B, &routing);
    o->ops->download(ratio, m->act.flops_ratio, (size_t)B * sizeof(float));
    free(t_net);
}
