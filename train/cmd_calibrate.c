// train/cmd_calibrate.c: `dydit calibrate`, a DyDiT whose sampling meets its FLOPs target. Shifts
// every router's output bias by one delta (model/router_calibration.h) until the FLOPs ratio the
// dynamic engine realises on a probe of sampling runs is within --tolerance of --lambda, and writes
// the weights with the shift applied.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "model/router_calibration.h"
#include "model/weights.h"
#include "train/commands.h"
#include "train/device_options.h"
#include "train/load_model.h"

static void print_probe(double delta, double ratio) {
    fprintf(stderr, "bias shift %+9.5f: realised ratio %.4f\n", delta, ratio);
}

int cmd_calibrate(int argc, char **argv) {
    const char *weights = NULL, *out = NULL;
    double lambda = -1, tolerance = 0.005, cfg_scale = 1.5;
    int samples = 32, steps = 25, seed = 0, quiet = 0;
    DeviceOptions dev;
    enum { OWN = 9 };
    Option options[OWN + DEVICE_OPTION_COUNT] = {
        {"weights", OPT_STRING, &weights, "the DyDiT weights to calibrate (e.g. a run's ema.safetensors)", NULL, 0,
         NO_RANGE},
        {"out", OPT_STRING, &out, "where to write the calibrated weights", NULL, 0, NO_RANGE},
        {"lambda", OPT_FLOAT, &lambda, "target FLOPs ratio of sampling", "required", 0, RANGE_ABOVE(0, 1)},
        {"tolerance", OPT_FLOAT, &tolerance, "accepted distance of the realised ratio from --lambda", NULL, 0,
         RANGE_ABOVE(0, 0.5)},
        {"samples", OPT_INT, &samples, "images of each probe run (labels 0, 1, ... in turn)", NULL, 0,
         RANGE(1, BATCH_MAX)},
        {"steps", OPT_INT, &steps, "DDPM steps of each probe run (as you will sample)", NULL, 0, RANGE(1, 1000)},
        {"cfg-scale", OPT_FLOAT, &cfg_scale, "guidance scale of each probe run (as you will sample)", NULL, 0,
         GUIDANCE_RANGE},
        {"seed", OPT_INT, &seed, "noise of the probe runs (use another seed than your evaluation's)", NULL, 0,
         SEED_RANGE},
        {"quiet", OPT_FLAG, &quiet, "no line per probe run", NULL, 0, NO_RANGE},
    };
    device_options_add(&dev, options, OWN);
    OptionSet set = {"calibrate",
                     "Makes a DyDiT sample at its FLOPs target: shifts the output bias of every router by one value "
                     "until the FLOPs ratio that sampling realises (deterministic decisions, DDPM with guidance, as "
                     "dydit sample runs) is within the tolerance of --lambda, and writes the shifted weights. "
                     "Training decides with noise and the EMA lags the routers, so a model trained to lambda "
                     "usually samples above it.",
                     "dydit calibrate --weights W --lambda 0.5 --out W_CALIBRATED [--steps 25 --cfg-scale 1.5]",
                     options, OWN + DEVICE_OPTION_COUNT};
    options_parse(&set, argc, argv);
    if (!weights) die("--weights is required");
    if (!out) die("--out is required");
    if (!options_was_set(&set, "lambda")) die("--lambda is required");

    Backend backend = device_options_open(&dev, 0);
    DitModel m;
    load_model(&m, weights, NULL, backend.ops);
    if (!m.cfg.dynamic) die("%s: a DiT has no routers to calibrate (fine-tune it into a DyDiT first)", weights);
    RatioProbe probe = {.samples = samples,
                        .steps = steps,
                        .cfg_scale = (float)cfg_scale,
                        .clip_denoised = sampler_clips_pixels(&m.cfg), // as dydit sample does by default
                        .seed = (uint64_t)seed};
    RouterCalibration cal = dydit_calibrate_routers(&m, &probe, lambda, tolerance, quiet ? NULL : print_probe);

    float *host = xmalloc(sizeof(float) * m.table.total);
    backend.ops->download(host, m.params, m.table.total * sizeof(float));
    char shift[32], before[32], after[32], probe_text[96], err[1024];
    snprintf(shift, sizeof(shift), "%.9g", cal.delta);
    snprintf(before, sizeof(before), "%.6g", cal.ratio_before);
    snprintf(after, sizeof(after), "%.6g", cal.ratio);
    snprintf(probe_text, sizeof(probe_text), "samples=%d steps=%d cfg_scale=%g seed=%d", samples, steps, cfg_scale,
             seed);
    const WeightsMeta meta[] = {{"router_bias_shift", shift},
                                {"calibration_ratio_before", before},
                                {"calibration_ratio", after},
                                {"calibration_probe", probe_text}};
    if (weights_save(out, &m.cfg, &m.table, host, meta, 4, err, sizeof(err))) die("%s", err);
    printf("calibrated %s: router bias shift %+.5f, realised FLOPs ratio %.4f -> %.4f (target %.4f, %d probe runs of "
           "%d samples x %d steps); wrote %s\n",
           weights, cal.delta, cal.ratio_before, cal.ratio, lambda, cal.evaluations, samples, steps, out);
    free(host);
    dit_model_destroy(&m);
    if (fabs(cal.ratio - lambda) > tolerance)
        fprintf(stderr, "warning: the closest realised ratio %.4f is not within %g of %g\n", cal.ratio, tolerance, lambda);
    return 0;
}
