// train/cmd_flops.c: `dydit flops`, parameter and MAC counts of any configuration.
#include <stdio.h>

#include "common/util.h"
#include <stdlib.h>
#include <string.h>

#include "model/flops.h"
#include "model/router_calibration.h"
#include "train/load_model.h"
#include "train/commands.h"
#include "train/device_options.h"
#include "train/model_options.h"

static void print_header(int dynamic) {
    printf("%-10s %14s %14s %10s %14s %14s %7s", "model", "params", "trainable", "GMACs", "block ATTN G", "block MLP G",
           "tokens");
    if (dynamic) printf(" %14s %12s", "router params", "router GMACs");
    printf("\n");
}

// One configuration; for a DyDiT also its routers' parameters and MACs (parameters and trainable
// include them; GMACs is the static forward, which the FLOPs ratio of the routers scales).
static void print_row(const DitConfig *c) {
    BlockMacs b = dit_block_macs(c);
    printf("%-10s %14zu %14zu %10.3f %14.9f %14.9f %7d", dit_config_preset_name(c), dit_param_count(c),
           dit_trainable_param_count(c), dit_forward_macs(c) / 1e9, b.attention / 1e9, b.mlp / 1e9, dit_tokens(c));
    if (c->dynamic) {
        DitConfig plain = *c;
        plain.dynamic = 0;
        printf(" %14zu %12.4f", dit_param_count(c) - dit_param_count(&plain), dydit_router_macs(c) / 1e9);
    }
    printf("\n");
}

// The realised GMACs of a DyDiT checkpoint at every step of a sampling schedule: the widths follow
// from the timestep alone, the token decisions from data, so a few samples are drawn with the
// dynamic engine and their per-step compute averaged.
static int realised_flops(const char *weights, const ModelOptions *mo, const DeviceOptions *dev, const OptionSet *set,
                          int steps, int num, double cfg_scale, int seed) {
    static const char *shape_only[] = {"depth",       "hidden",    "patch", "in-channels", "num-classes",
                                       "learn-sigma", "mlp-ratio", "all",   "dynamic"};
    for (size_t i = 0; i < sizeof(shape_only) / sizeof(shape_only[0]); i++)
        if (options_was_set(set, shape_only[i])) die("--%s does not apply with --weights", shape_only[i]);
    WeightsHints hints = {0};
    if (options_was_set(set, "model")) hints.model = mo->model;
    if (options_was_set(set, "heads")) hints.heads = mo->heads;
    if (options_was_set(set, "input-size")) hints.input_size = mo->input_size;
    Backend backend = device_options_open(dev, 0);
    const Ops *ops = backend.ops;
    DitModel m;
    load_model(&m, weights, &hints, ops);
    const DitConfig *c = &m.cfg;
    if (!c->dynamic) { // a DiT's compute does not depend on the timestep: its static row
        print_header(0);
        print_row(c);
        dit_model_destroy(&m);
        return 0;
    }
    RatioProbe probe = {.samples = num, .steps = steps, .cfg_scale = (float)cfg_scale, .seed = (uint64_t)seed};
    int S = ratio_probe_steps(&m, &probe);
    SamplerStepStats *stats = xcalloc((size_t)S, sizeof(SamplerStepStats));
    double ratio = dydit_sampling_ratio(&m, &probe, stats);
    printf("%6s %9s %10s %8s %8s %8s %8s\n", "step", "timestep", "GMACs", "ratio", "heads", "groups", "tokens");
    double mean = 0;
    for (int i = 0; i < S; i++) {
        const SamplerStepStats *r = &stats[i];
        printf("%6d %9d %10.4f %8.4f %8.4f %8.4f %8.4f\n", i, r->timestep, r->macs_per_row / 1e9,
               r->macs_per_row / r->static_macs_per_row, r->head_keep, r->group_keep, r->token_keep);
        mean += r->macs_per_row / S;
    }
    printf("average %.4f GMACs per image-forward over %d steps and %d samples; static %.4f (ratio %.4f)\n", mean / 1e9,
           S, num, stats[0].static_macs_per_row / 1e9, ratio);
    free(stats);
    dit_model_destroy(&m);
    return 0;
}

int cmd_flops(int argc, char **argv) {
    ModelOptions mo = {0};
    const char *weights = NULL;
    int all = 0, dynamic = 0, steps = 250, num = 4, seed = 0;
    double cfg_scale = 1.5;
    DeviceOptions dev;
    enum { OWN = 7 };
    Option options[MODEL_OPTION_COUNT + OWN + DEVICE_OPTION_COUNT];
    model_options_add(&mo, options, 0);
    const Option own[OWN] = {
        {"all", OPT_FLAG, &all, "every preset S/B/L/XL x 2/4/8 at the given size", NULL, 0, NO_RANGE},
        {"dynamic", OPT_FLAG, &dynamic, "DyDiT: add the routers' parameters and MACs", NULL, 0, NO_RANGE},
        {"weights", OPT_STRING, &weights, "weights: a DiT's counts, or a DyDiT's realised GMACs per sampling timestep",
         NULL, 0, NO_RANGE},
        {"steps", OPT_INT, &steps, "with --weights: sampling steps of the schedule", NULL, 0, RANGE(1, 1000)},
        {"num", OPT_INT, &num, "with --weights: samples whose token decisions are averaged", NULL, 0,
         RANGE(1, BATCH_MAX)},
        {"cfg-scale", OPT_FLOAT, &cfg_scale, "with --weights: guidance scale of the sampling run", NULL, 0,
         GUIDANCE_RANGE},
        {"seed", OPT_INT, &seed, "with --weights: seed of the sampling run", NULL, 0, SEED_RANGE},
    };
    memcpy(options + MODEL_OPTION_COUNT, own, sizeof(own));
    device_options_add(&dev, options, MODEL_OPTION_COUNT + OWN);
    OptionSet set = {
        "flops",
        "Parameters and forward GMACs (multiply-adds, as the DiT papers count them), and the per-block "
        "attention and MLP MACs that DyDiT's FLOPs loss weighs; with --weights, those of a DiT file, or the "
        "realised GMACs of a DyDiT at every step of a sampling schedule.",
        "dydit flops [--model DiT-XL/2 | --depth ... ] [--all] [--dynamic] | --weights W [--steps 250]", options,
        MODEL_OPTION_COUNT + OWN + DEVICE_OPTION_COUNT};
    options_parse(&set, argc, argv);
    if (weights) {
        return realised_flops(weights, &mo, &dev, &set, steps, num, cfg_scale, seed);
    }
    DitConfig base = model_options_config(&mo, &set);
    base.dynamic = dynamic;
    char why[256];
    if (dit_config_validate(&base, why, sizeof(why))) die("invalid model: %s", why);
    if (!all) {
        print_header(dynamic);
        print_row(&base);
        return 0;
    }
    // every preset at the given size, each checked before the first row is printed
    enum { PRESETS = 12 };
    const char *sizes[] = {"S", "B", "L", "XL"};
    DitConfig presets[PRESETS];
    for (int k = 0; k < PRESETS; k++) {
        char name[16];
        snprintf(name, sizeof(name), "DiT-%s/%d", sizes[k / 3], 2 << (k % 3));
        presets[k] = base;
        dit_config_apply_preset(&presets[k], name);
        if (dit_config_validate(&presets[k], why, sizeof(why))) die("invalid model %s: %s", name, why);
    }
    print_header(dynamic);
    for (int k = 0; k < PRESETS; k++) print_row(&presets[k]);
    return 0;
}
