// bench/sample_speed.c: sampling speed of a DyDiT with the static engine (the complete network) and
// the dynamic engine (skipping the switched-off heads, channel groups and tokens), same model,
// noise and schedule, back to back. The routers are set to reproduce a keep pattern rather than
// trained: width routers keep the first `heads` heads and `groups` channel groups of every block
// at every timestep, and each block's token-router bias is calibrated on a batch so that about
// `tokens` of the tokens are kept. Prints JSON lines.
// Usage: sample_speed MODEL INPUT_SIZE BATCH STEPS HEAD_FRACTION GROUP_FRACTION TOKEN_FRACTION
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/philox.h"
#include "model/init.h"
#include "model/sampler.h"

static void random_normal(float *x, size_t n, float sd, uint32_t stream) {
    for (size_t i = 0; i < n; i++) x[i] = sd * rng_normal(7, RNG_INIT, 1, stream, i);
}

static int compare_floats(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

// DiT initialisation, then non-zero adaLN and final layers so every block matters, then the routers.
static void build(DitModel *m, double heads, double groups, double tokens) {
    const DitConfig *c = &m->cfg;
    dit_init_host(c, &m->table, m->params, 1);
    for (int i = 0; i < m->table.count; i++) {
        const TensorInfo *t = &m->table.tensors[i];
        if (strstr(t->name, "adaLN") || strstr(t->name, "final_layer"))
            random_normal(m->params + t->offset, t->numel, 0.02f, (uint32_t)i);
    }
    int L = c->depth, H = c->heads, T = dit_tokens(c);
    int keep_heads = (int)lround(heads * H), keep_groups = (int)lround(groups * H);
    memset(m->w.attn_router_w, 0, sizeof(float) * (size_t)L * (H - 1) * c->hidden);
    memset(m->w.mlp_router_w, 0, sizeof(float) * (size_t)L * (H - 1) * c->hidden);
    for (int l = 0; l < L; l++)
        for (int j = 0; j < H - 1; j++) { // routed unit j is unit j + 1
            m->w.attn_router_b[l * (H - 1) + j] = j + 1 < keep_heads ? 8.0f : -8.0f;
            m->w.mlp_router_b[l * (H - 1) + j] = j + 1 < keep_groups ? 8.0f : -8.0f;
        }
    // token routers: calibrate every block's output bias to the wanted quantile of its logits
    int B = 4;
    dit_model_plan(m, B);
    random_normal(m->act.x, (size_t)B * c->in_channels * c->input_size * c->input_size, 1.0f, 99);
    float t[4] = {100, 400, 700, 950};
    int32_t y[4] = {0, 1, 2, 3};
    for (int l = 0; l < L; l++) m->w.token_fc2_b[l] = 1e4f; // keep everything while calibrating
    DitRouting eval = dit_routing_eval();
    for (int l = 0; l < L; l++) {
        dit_forward(m, t, y, B, &eval); // block l's inputs follow from the already calibrated blocks
        float *logits = xmalloc(sizeof(float) * (size_t)B * T);
        memcpy(logits, m->act.token_logits + (size_t)l * B * T, sizeof(float) * (size_t)B * T);
        for (int i = 0; i < B * T; i++) logits[i] -= 1e4f;
        qsort(logits, (size_t)B * T, sizeof(float), compare_floats);
        float threshold = logits[(int)lround((1.0 - tokens) * (B * T - 1))];
        m->w.token_fc2_b[l] = -threshold;
        free(logits);
    }
}

static double run(const DitModel *m, int dynamic, int batch, int steps, SamplerStepStats *stats) {
    char spacing[32];
    snprintf(spacing, sizeof(spacing), "%d", steps);
    SamplerConfig sc = {.kind = SAMPLER_DDPM, .spacing = spacing, .cfg_scale = 1.5f, .seed = 3};
    Sampler *s = sampler_create(m, &sc, batch, dynamic);
    const DitConfig *c = &m->cfg;
    int32_t *y = xmalloc(sizeof(int32_t) * (size_t)batch);
    for (int i = 0; i < batch; i++) y[i] = i % c->num_classes;
    float *x = m->ops->alloc((size_t)batch * c->in_channels * c->input_size * c->input_size * sizeof(float));
    SamplerRecord record = {.stats = stats};
    double start = now_seconds();
    sampler_run(s, y, batch, 0, x, &record);
    double seconds = now_seconds() - start;
    m->ops->release(x);
    free(y);
    sampler_destroy(s);
    return seconds;
}

int main(int argc, char **argv) {
    if (argc != 8) die("usage: sample_speed MODEL INPUT_SIZE BATCH STEPS HEAD_FRACTION GROUP_FRACTION TOKEN_FRACTION");
    DitConfig cfg = dit_config_default();
    if (dit_config_apply_preset(&cfg, argv[1])) die("unknown model %s", argv[1]);
    cfg.input_size = atoi(argv[2]);
    cfg.dynamic = 1;
    int batch = atoi(argv[3]), steps = atoi(argv[4]);
    DitModel m;
    dit_model_create(&m, &cfg, &ops_cpu);
    build(&m, atof(argv[5]), atof(argv[6]), atof(argv[7]));
    SamplerStepStats *st = xcalloc((size_t)steps, sizeof(SamplerStepStats));
    SamplerStepStats *dy = xcalloc((size_t)steps, sizeof(SamplerStepStats));
    double static_s = run(&m, 0, batch, steps, st), dynamic_s = run(&m, 1, batch, steps, dy);
    double macs = 0, heads = 0, groups = 0, tokens = 0;
    for (int i = 0; i < steps; i++) {
        macs += dy[i].macs_per_row / steps;
        heads += dy[i].head_keep / steps;
        groups += dy[i].group_keep / steps;
        tokens += dy[i].token_keep / steps;
    }
    double ratio = macs / st[0].macs_per_row;
    printf("{\"engine\":\"static\",\"model\":\"Dy%s\",\"input_size\":%d,\"batch\":%d,\"guidance_rows\":%d,\"steps\":%d,"
           "\"threads\":%d,\"seconds\":%.3f,\"images_per_s\":%.4g,\"gmacs_per_image_forward\":%.4f}\n",
           argv[1], cfg.input_size, batch, 2 * batch, steps, omp_get_max_threads(), static_s, batch / static_s,
           st[0].macs_per_row / 1e9);
    printf("{\"engine\":\"dynamic\",\"seconds\":%.3f,\"images_per_s\":%.4g,\"gmacs_per_image_forward\":%.4f,"
           "\"flops_ratio\":%.4f,\"head_keep\":%.3f,\"group_keep\":%.3f,\"token_keep\":%.3f}\n",
           dynamic_s, batch / dynamic_s, macs / 1e9, ratio, heads, groups, tokens);
    printf("dynamic / static images/s: %.2fx at a realised FLOPs ratio of %.3f (ideal %.2fx)\n", static_s / dynamic_s,
           ratio, 1 / ratio);
    free(st);
    free(dy);
    dit_model_destroy(&m);
    return 0;
}
