#include "model/router_calibration.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"

static Sampler *probe_sampler(const DitModel *m, const RatioProbe *p) {
    char spacing[32];
    snprintf(spacing, sizeof(spacing), "%d", p->steps);
    SamplerConfig sc = {
        .kind = SAMPLER_DDPM, .spacing = spacing, .cfg_scale = p->cfg_scale, .clip_denoised = p->clip_denoised, .seed = p->seed};
    return sampler_create(m, &sc, p->samples, 1);
}

int ratio_probe_steps(const DitModel *m, const RatioProbe *p) {
    Sampler *s = probe_sampler(m, p);
    int steps = sampler_steps(s);
    sampler_destroy(s);
    return steps;
}

double dydit_sampling_ratio(const DitModel *m, const RatioProbe *p, SamplerStepStats *stats) {
    const DitConfig *c = &m->cfg;
    if (!c->dynamic) die("internal: a realised FLOPs ratio needs a DyDiT");
    // A new engine each time: the engine caches each timestep's width decisions, which a bias
    // shift changes.
    Sampler *s = probe_sampler(m, p);
    int S = sampler_steps(s);
    SamplerStepStats *rows = stats ? stats : xcalloc((size_t)S, sizeof(SamplerStepStats));
    int32_t *y = xmalloc(sizeof(int32_t) * (size_t)p->samples);
    for (int i = 0; i < p->samples; i++) y[i] = i % c->num_classes;
    float *x = m->ops->alloc((size_t)p->samples * c->in_channels * c->input_size * c->input_size * sizeof(float));
    SamplerRecord record = {.stats = rows};
    sampler_run(s, y, p->samples, 0, x, &record);
    double macs = 0;
    for (int i = 0; i < S; i++) macs += rows[i].macs_per_row / S;
    double ratio = macs / rows[0].static_macs_per_row;
    m->ops->release(x);
    free(y);
    if (!stats) free(rows);
    sampler_destroy(s);
    return ratio;
}

double dydit_sampling_ratio_of(const DitModel *m, float *params, const RatioProbe *p) {
    DitModel view = *m; // the engine reads the configuration, the backend and the weights only
    view.params = params;
    view.w = dit_weights_bind(&m->table, params);
    return dydit_sampling_ratio(&view, p, NULL);
}

// The router output biases of every block: head routers (L, H-1), channel-group routers (L, H-1)
// and token routers (L, 1), as (device pointer, count) pairs.
typedef struct {
    float *bias[3];
    size_t count[3];
} RouterBiases;

static RouterBiases router_biases(DitModel *m) {
    size_t L = (size_t)m->cfg.depth, H = (size_t)m->cfg.heads;
    return (RouterBiases){.bias = {m->w.attn_router_b, m->w.mlp_router_b, m->w.token_fc2_b},
                          .count = {L * (H - 1), L * (H - 1), L}};
}

// Sets every router output bias to base + delta (base: the biases before calibration, in the order
// of RouterBiases).
static void set_bias_shift(DitModel *m, const float *base, size_t total, double delta) {
    RouterBiases r = router_biases(m);
    float *shifted = xmalloc(sizeof(float) * total);
    for (size_t i = 0; i < total; i++) shifted[i] = (float)(base[i] + delta);
    for (int k = 0, off = 0; k < 3; off += (int)r.count[k], k++)
        m->ops->upload(r.bias[k], shifted + off, r.count[k] * sizeof(float));
    free(shifted);
}

typedef struct {
    DitModel *m;
    const RatioProbe *p;
    const float *base;
    size_t total;
    void (*progress)(double, double);
    int evaluations;
} Search;

static double ratio_at(Search *s, double delta) {
    set_bias_shift(s->m, s->base, s->total, delta);
    double ratio = dydit_sampling_ratio(s->m, s->p, NULL);
    s->evaluations++;
    if (s->progress) s->progress(delta, ratio);
    return ratio;
}

// Keeps the measurement closest to the target.
static void keep_closest(RouterCalibration *out, double delta, double ratio, double target) {
    if (fabs(ratio - target) < fabs(out->ratio - target)) out->delta = delta, out->ratio = ratio;
}

RouterCalibration dydit_calibrate_routers(DitModel *m, const RatioProbe *p, double target, double tolerance,
                                          void (*progress)(double delta, double ratio)) {
    RouterBiases r = router_biases(m);
    size_t total = r.count[0] + r.count[1] + r.count[2];
    float *base = xmalloc(sizeof(float) * total);
    for (int k = 0, off = 0; k < 3; off += (int)r.count[k], k++)
        m->ops->download(base + off, r.bias[k], r.count[k] * sizeof(float));
    Search s = {.m = m, .p = p, .base = base, .total = total, .progress = progress};

    RouterCalibration out = {.delta = 0, .ratio_before = ratio_at(&s, 0)};
    out.ratio = out.ratio_before;
    // Bracket the target, ratio(low) <= target <= ratio(high): the ratio rises with delta, so step
    // away from 0 towards the target, doubling the step until the target is passed.
    double sign = out.ratio > target ? -1 : 1, inside = 0, passed = 0; // inside: not yet past the target
    for (double step = 0.25; fabs(out.ratio - target) > tolerance; step *= 2) {
        if (step > 64) {
            free(base);
            die("no router bias shift in [-64, 64] brings the realised FLOPs ratio (%.4f at shift 0) to %.4f",
                out.ratio_before, target);
        }
        double delta = sign * step, ratio = ratio_at(&s, delta);
        keep_closest(&out, delta, ratio, target);
        if (sign * (ratio - target) >= 0) {
            passed = delta;
            break;
        }
        inside = delta;
    }
    double low = sign < 0 ? passed : inside, high = sign < 0 ? inside : passed;
    // Bisect the bracket.
    while (fabs(out.ratio - target) > tolerance && high - low > 1e-4) {
        double mid = 0.5 * (low + high), ratio = ratio_at(&s, mid);
        keep_closest(&out, mid, ratio, target);
        if (ratio < target)
            low = mid;
        else
            high = mid;
    }
    set_bias_shift(m, base, total, out.delta);
    out.evaluations = s.evaluations;
    free(base);
    return out;
}
