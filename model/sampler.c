#include "model/sampler.h"

#include <string.h>

#include "common/util.h"
#include "kernels/philox.h"

struct Sampler {
    const DitModel *m;
    const Ops *ops;
    SamplerConfig cfg;
    DiffusionSchedule schedule; // respaced
    DitInfer *engine;
    int capacity, guided; // guided: output channels that guidance combines
    size_t sample_numel;  // C * H * W
    float *x, *out, *noise, *coef;
    int32_t *labels;
    float *host_coef;
};

int sampler_clips_pixels(const DitConfig *c) { return c->in_channels == 1 || c->in_channels == 3; }

Sampler *sampler_create(const DitModel *m, const SamplerConfig *cfg, int capacity, int engine_dynamic) {
    const DitConfig *c = &m->cfg;
    Sampler *s = xcalloc(1, sizeof(Sampler));
    s->m = m;
    s->ops = m->ops;
    s->cfg = *cfg;
    s->capacity = capacity;
    DiffusionSchedule base = diffusion_schedule_linear(1000);
    int *steps = xmalloc(sizeof(int) * (size_t)base.T);
    char why[256];
    int count = diffusion_space_timesteps(base.T, cfg->spacing, steps, why, sizeof(why));
    if (count < 0) die("sampling steps '%s': %s", cfg->spacing, why);
    s->schedule = diffusion_schedule_respace(&base, steps, count);
    free(steps);
    diffusion_schedule_free(&base);
    int rows = cfg->cfg_scale > 1.0f ? 2 * capacity : capacity;
    s->engine = dit_infer_create(m, rows, engine_dynamic);
    int C_out = dit_out_channels(c);
    s->guided = cfg->cfg_all_channels ? c->in_channels : (C_out < 3 ? C_out : 3);
    s->sample_numel = (size_t)c->in_channels * c->input_size * c->input_size;
    size_t hw = (size_t)c->input_size * c->input_size;
    s->x = s->ops->alloc((size_t)rows * s->sample_numel * sizeof(float));
    s->out = s->ops->alloc((size_t)rows * C_out * hw * sizeof(float));
    s->noise = s->ops->alloc((size_t)capacity * s->sample_numel * sizeof(float));
    s->coef = s->ops->alloc((size_t)capacity * COEF_COUNT * sizeof(float));
    s->labels = xmalloc((size_t)rows * sizeof(int32_t));
    s->host_coef = xmalloc((size_t)capacity * COEF_COUNT * sizeof(float));
    return s;
}

void sampler_destroy(Sampler *s) {
    if (!s) return;
    dit_infer_destroy(s->engine);
    diffusion_schedule_free(&s->schedule);
    s->ops->release(s->x);
    s->ops->release(s->out);
    s->ops->release(s->noise);
    s->ops->release(s->coef);
    free(s->labels);
    free(s->host_coef);
    free(s);
}

int sampler_steps(const Sampler *s) { return s->schedule.T; }
const DitInfer *sampler_engine(const Sampler *s) { return s->engine; }

void sampler_run(Sampler *s, const int32_t *y, int n, uint32_t first, float *x_out, const SamplerRecord *record) {
    SamplerRecord none = {0};
    if (!record) record = &none;
    float *trace = record->trace;
    if (n > s->capacity) die("internal: %d samples exceed the sampler's %d", n, s->capacity);
    const Ops *ops = s->ops;
    const DitConfig *c = &s->m->cfg;
    int S = s->schedule.T, guidance = s->cfg.cfg_scale > 1.0f, rows = guidance ? 2 * n : n;
    size_t numel = s->sample_numel, hw = (size_t)c->input_size * c->input_size, half = (size_t)n * numel;
    for (int b = 0; b < n; b++) {
        s->labels[b] = y[b];
        if (guidance) s->labels[n + b] = c->num_classes; // the null label
    }
    ops->randn(s->x, s->cfg.seed, RNG_SAMPLE, (uint32_t)S, first, n, numel);
    if (trace) ops->download(trace, s->x, half * sizeof(float));

    for (int k = S - 1; k >= 0; k--) {
        if (guidance) ops->copy(s->x + half, s->x, half * sizeof(float)); // both halves see the same x_t
        float t = (float)s->schedule.timestep_map[k];
        dit_infer_forward(s->engine, s->x, t, s->labels, rows, s->out);
        if (guidance) ops->cfg_combine(s->out, n, dit_out_channels(c), hw, s->guided, s->cfg.cfg_scale);
        if (record->on_step) record->on_step(record->ctx, S - 1 - k, (int)t, s->engine);

        int32_t *ks = xmalloc(sizeof(int32_t) * (size_t)n);
        for (int b = 0; b < n; b++) ks[b] = k;
        diffusion_gather_coefs(&s->schedule, ks, n, s->host_coef);
        free(ks);
        ops->upload(s->coef, s->host_coef, (size_t)n * COEF_COUNT * sizeof(float));
        ops->randn(s->noise, s->cfg.seed, RNG_SAMPLE, (uint32_t)k, first, n, numel);
        if (trace) ops->download(trace + (size_t)(S - k) * half, s->noise, half * sizeof(float));
        if (s->cfg.kind == SAMPLER_DDPM)
            ops->ddpm_step(s->x, s->x, s->out, s->noise, s->coef, n, c->in_channels, hw, c->learn_sigma,
                           s->cfg.clip_denoised);
        else
            ops->ddim_step(s->x, s->x, s->out, s->noise, s->coef, n, c->in_channels, hw, c->learn_sigma,
                           s->cfg.clip_denoised, s->cfg.eta);

        if (record->stats) {
            InferStats st = dit_infer_stats(s->engine);
            SamplerStepStats *row = &record->stats[S - 1 - k];
            row->timestep = (int)t;
            row->macs_per_row = st.macs / rows;
            row->static_macs_per_row = st.static_macs / rows;
            row->head_keep = st.head_keep;
            row->group_keep = st.group_keep;
            row->token_keep = st.token_keep;
        }
    }
    ops->copy(x_out, s->x, half * sizeof(float));
}
