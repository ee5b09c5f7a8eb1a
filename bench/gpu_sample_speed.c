// bench/gpu_sample_speed.c: DDPM sampling speed with classifier-free guidance on the GPU, a DyDiT
// with the static engine (the complete network: a DiT's compute) and the dynamic engine (skipping
// the switched-off heads, channel groups and tokens), same model, noise and schedule, back to back.
// The routers reproduce a keep pattern rather than being trained: half the heads and every channel
// group in every block, and a token share found by short probe runs of the dynamic sampler so that
// the realised FLOPs ratio (executed over static MACs of the whole network) lands near --target. Each timed run follows
// a two-step warm-up run. Prints one JSON line per engine.
//
// MFU counts the multiply-adds each engine executed (2 FLOPs each) against --peak-tflops.
// Usage: gpu_sample_speed [--device cuda|cpu] [--target R] [--peak-tflops X] MODEL INPUT_SIZE BATCH STEPS
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/gpu_bench.h"
#include "model/flops.h"
#include "model/sampler.h"

enum { PROBE_STEPS = 10, PROBE_BATCH = 4, PROBE_ROUNDS = 4 };

typedef struct {
    double seconds, macs, static_macs; // executed and static multiply-adds of every row of every step
    double heads, groups, tokens;      // mean keep fractions over the steps
    int steps;
} Run;

static Run run(const DitModel *m, int dynamic, int batch, int steps) {
    char spacing[32];
    snprintf(spacing, sizeof(spacing), "%d", steps);
    SamplerConfig sc = {.kind = SAMPLER_DDPM, .spacing = spacing, .cfg_scale = 1.5f, .seed = 3};
    Sampler *s = sampler_create(m, &sc, batch, dynamic);
    const DitConfig *c = &m->cfg;
    int32_t *y = xmalloc(sizeof(int32_t) * (size_t)batch);
    for (int i = 0; i < batch; i++) y[i] = i % c->num_classes;
    float *x = m->ops->alloc((size_t)batch * c->in_channels * c->input_size * c->input_size * sizeof(float));
    int n = sampler_steps(s);
    SamplerStepStats *stats = xcalloc((size_t)n, sizeof(SamplerStepStats));
    SamplerRecord record = {.stats = stats};
    m->ops->synchronize();
    double start = now_seconds();
    sampler_run(s, y, batch, 0, x, &record);
    m->ops->synchronize();
    Run r = {.seconds = now_seconds() - start, .steps = n};
    for (int i = 0; i < n; i++) {
        r.macs += stats[i].macs_per_row * 2 * batch;
        r.static_macs += stats[i].static_macs_per_row * 2 * batch;
        r.heads += stats[i].head_keep / n;
        r.groups += stats[i].group_keep / n;
        r.tokens += stats[i].token_keep / n;
    }
    free(stats);
    m->ops->release(x);
    free(y);
    sampler_destroy(s);
    return r;
}

// Token share that makes the dynamic sampler realise the FLOPs ratio `target` (executed over static
// MACs of the whole network). The ratio is linear in the share of tokens whose MLP runs, so each
// probe corrects the share by its miss over that slope.
static double find_token_share(DitModel *m, double heads, double target) {
    BlockMacs b = dit_block_macs(&m->cfg);
    double L = m->cfg.depth, total = dit_forward_macs(&m->cfg), slope = L * b.mlp / total;
    double share = (target - (total - L * b.mlp - L * (1.0 - heads) * b.attention) / total) / slope;
    for (int round = 0;; round++) {
        share = share < 0.02 ? 0.02 : share > 1.0 ? 1.0 : share;
        bench_set_token_keep(m, share);
        if (round == PROBE_ROUNDS) break;
        Run probe = run(m, 1, PROBE_BATCH, PROBE_STEPS);
        double ratio = probe.macs / probe.static_macs;
        if (fabs(ratio - target) < 0.005) break;
        share += (target - ratio) / slope;
    }
    return share;
}

static void print_run(const char *engine, const Run *r, int batch, double peak_tflops) {
    double images_per_s = batch / r->seconds, tflops = 2.0 * r->macs / r->seconds / 1e12;
    printf(",\"engine\":\"%s\",\"seconds\":%.3f,\"images_per_s\":%.4g,\"gmacs_per_image_forward\":%.3f,"
           "\"tflops\":%.4g",
           engine, r->seconds, images_per_s, r->macs / (2.0 * batch * r->steps) / 1e9, tflops);
    if (peak_tflops > 0)
        printf(",\"mfu\":%.4f", tflops / peak_tflops);
    else
        printf(",\"mfu\":null");
}

int main(int argc, char **argv) {
    const char *device = "cuda", *usage = "usage: gpu_sample_speed [--device cuda|cpu] [--target R] "
                                          "[--peak-tflops X] MODEL INPUT_SIZE BATCH STEPS";
    double target = 0.49, peak_tflops = 0;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--device") == 0)
            device = argv[i + 1];
        else if (strcmp(argv[i], "--target") == 0)
            target = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--peak-tflops") == 0)
            peak_tflops = atof(argv[i + 1]);
        else
            die("%s", usage);
    }
    if (argc - i != 4) die("%s", usage);
    DitConfig cfg = dit_config_default();
    if (dit_config_apply_preset(&cfg, argv[i])) die("unknown model %s", argv[i]);
    cfg.input_size = atoi(argv[i + 1]);
    cfg.dynamic = 1;
    int batch = atoi(argv[i + 2]), steps = atoi(argv[i + 3]);
    if (batch < 1 || steps < 1 || target <= 0 || target > 1) die("%s", usage);
    char why[256];
    if (dit_config_validate(&cfg, why, sizeof(why))) die("%s", why);
    const Ops *ops = bench_backend(device);

    DitModel m;
    dit_model_create(&m, &cfg, ops);
    bench_init_weights(&m);
    const double heads = 0.5;
    bench_set_width_pattern(&m, heads, 1.0);
    double share = find_token_share(&m, heads, target);

    run(&m, 0, batch, 2);
    Run st = run(&m, 0, batch, steps);
    run(&m, 1, batch, 2);
    Run dy = run(&m, 1, batch, steps);
    double ratio = dy.macs / st.macs;

    printf("{\"bench\":\"sample\",\"impl\":\"dydit\",\"device\":\"%s\",\"model\":\"Dy%s\",\"input_size\":%d,"
           "\"batch\":%d,\"guidance_rows\":%d,\"steps\":%d,\"sampler\":\"ddpm\",\"cfg_scale\":1.5",
           ops->name, dit_config_preset_name(&cfg), cfg.input_size, batch, 2 * batch, steps);
    print_run("static", &st, batch, peak_tflops);
    printf("}\n");
    printf("{\"bench\":\"sample\",\"impl\":\"dydit\",\"device\":\"%s\",\"model\":\"Dy%s\",\"input_size\":%d,"
           "\"batch\":%d,\"guidance_rows\":%d,\"steps\":%d,\"sampler\":\"ddpm\",\"cfg_scale\":1.5",
           ops->name, dit_config_preset_name(&cfg), cfg.input_size, batch, 2 * batch, steps);
    print_run("dynamic", &dy, batch, peak_tflops);
    printf(",\"flops_ratio\":%.4f,\"target\":%.3g,\"token_share_calibrated\":%.3f,\"head_keep\":%.3f,"
           "\"group_keep\":%.3f,\"token_keep\":%.3f,\"speedup\":%.3f}\n",
           ratio, target, share, dy.heads, dy.groups, dy.tokens, st.seconds / dy.seconds);
    dit_model_destroy(&m);
    return 0;
}
