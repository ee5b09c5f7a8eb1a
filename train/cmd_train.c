// train/cmd_train.c: `dydit train`, options -> TrainConfig -> the training loop.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "model/weights.h"
#include "train/commands.h"
#include "train/model_options.h"
#include "train/trainer.h"

typedef struct {
    ModelOptions model;
    const char *data, *init, *log, *out;
    int synthetic_size, steps, batch, warmup, seed, log_every, threads, quiet;
    double lr, weight_decay, beta1, beta2, adam_eps, clip_grad_norm, skip_grad_norm, ema_decay;
} TrainOptions;

enum { TRAIN_OWN_OPTIONS = 20, TRAIN_OPTIONS = MODEL_OPTION_COUNT + TRAIN_OWN_OPTIONS };

static void add_options(TrainOptions *o, Option *opts) {
    model_options_add(&o->model, opts, 0);
    const Option own[TRAIN_OWN_OPTIONS] = {
        {"data", OPT_STRING, &o->data, "'synthetic', or a safetensors file with latents (N,C,H,W) and labels (N)", NULL,
         0},
        {"synthetic-size", OPT_INT, &o->synthetic_size, "samples generated for --data synthetic", NULL, 0},
        {"init", OPT_STRING, &o->init, "start from these weights (the model shape comes from the file)", "DiT init", 0},
        {"steps", OPT_INT, &o->steps, "training steps", NULL, 0},
        {"batch", OPT_INT, &o->batch, "samples per step", NULL, 0},
        {"lr", OPT_FLOAT, &o->lr, "AdamW learning rate", NULL, 0},
        {"warmup", OPT_INT, &o->warmup, "linear LR warm-up steps (0: constant LR)", NULL, 0},
        {"weight-decay", OPT_FLOAT, &o->weight_decay, "AdamW decoupled weight decay", NULL, 0},
        {"beta1", OPT_FLOAT, &o->beta1, "AdamW first-moment decay", NULL, 0},
        {"beta2", OPT_FLOAT, &o->beta2, "AdamW second-moment decay", NULL, 0},
        {"adam-eps", OPT_FLOAT, &o->adam_eps, "AdamW epsilon", NULL, 0},
        {"clip-grad-norm", OPT_FLOAT, &o->clip_grad_norm, "scale gradients down to this global norm (0: off)", NULL, 0},
        {"skip-grad-norm", OPT_FLOAT, &o->skip_grad_norm, "skip the update when the global norm reaches this (0: off)",
         NULL, 0},
        {"ema-decay", OPT_FLOAT, &o->ema_decay, "EMA decay per step", NULL, 0},
        {"seed", OPT_INT, &o->seed, "seed of every random draw", NULL, 0},
        {"log-every", OPT_INT, &o->log_every, "steps between JSON log lines", NULL, 0},
        {"log", OPT_STRING, &o->log, "JSON-lines log file", "stdout", 0},
        {"out", OPT_STRING, &o->out, "directory for model.safetensors and ema.safetensors", NULL, 0},
        {"threads", OPT_INT, &o->threads, "CPU threads (0: OpenMP's default)", NULL, 0},
        {"quiet", OPT_FLAG, &o->quiet, "no progress lines on stderr", NULL, 0},
    };
    memcpy(opts + MODEL_OPTION_COUNT, own, sizeof(own));
}

// The model shape: from --init's file (model options then only help read it), else the options.
static DitConfig resolve_model(const TrainOptions *o, const OptionSet *set, float **init_params) {
    if (!o->init) {
        *init_params = NULL;
        return model_options_config(&o->model, set);
    }
    static const char *shape_only[] = {"depth",       "hidden",      "patch",    "in-channels",
                                       "num-classes", "learn-sigma", "mlp-ratio"};
    for (size_t i = 0; i < sizeof(shape_only) / sizeof(shape_only[0]); i++)
        if (options_was_set(set, shape_only[i]))
            die("--%s conflicts with --init: the model shape comes from the weights file", shape_only[i]);
    WeightsHints hints = {0};
    if (options_was_set(set, "model")) hints.model = o->model.model;
    if (options_was_set(set, "heads")) hints.heads = o->model.heads;
    if (options_was_set(set, "input-size")) hints.input_size = o->model.input_size;
    if (options_was_set(set, "class-dropout")) {
        hints.has_class_dropout = 1;
        hints.class_dropout = (float)o->model.class_dropout;
    }
    DitConfig cfg;
    TensorTable table;
    char err[1024];
    if (weights_load_file(o->init, &hints, &cfg, &table, init_params, err, sizeof(err))) die("%s", err);
    tensor_table_free(&table);
    return cfg;
}

int cmd_train(int argc, char **argv) {
    TrainOptions o = {
        .data = "synthetic",
        .synthetic_size = 512,
        .steps = 1000,
        .batch = 16,
        .lr = 1e-4,
        .beta1 = 0.9,
        .beta2 = 0.999,
        .adam_eps = 1e-8,
        .ema_decay = 0.9999,
        .log_every = 10,
    };
    Option opts[TRAIN_OPTIONS];
    add_options(&o, opts);
    OptionSet set = {"train", "Train a DiT with the diffusion objective (eps-MSE + VB), AdamW and EMA.",
                     "dydit train [--config FILE] [options]", opts, TRAIN_OPTIONS};
    options_parse(&set, argc, argv);
    if (o.clip_grad_norm > 0 && o.skip_grad_norm > 0) die("--clip-grad-norm and --skip-grad-norm exclude each other");
    if (o.log_every < 1) die("--log-every must be at least 1");
    if (o.threads > 0) omp_set_num_threads(o.threads);

    TrainConfig tc = {0};
    float *init_params;
    tc.model = resolve_model(&o, &set, &init_params);
    tc.init_params = init_params;

    LatentSet data;
    char err[1024];
    if (!strcmp(o.data, "synthetic")) {
        if (o.synthetic_size < 1) die("--synthetic-size must be at least 1");
        latent_set_synthetic(&data, o.synthetic_size, tc.model.in_channels, tc.model.input_size, tc.model.num_classes,
                             (uint64_t)o.seed);
    } else if (latent_set_load(&data, o.data, err, sizeof(err))) {
        die("%s", err);
    }

    tc.data = &data;
    tc.steps = o.steps;
    tc.batch = o.batch;
    tc.optim = optim_config_default();
    tc.optim.lr = o.lr;
    tc.optim.beta1 = o.beta1;
    tc.optim.beta2 = o.beta2;
    tc.optim.eps = o.adam_eps;
    tc.optim.weight_decay = o.weight_decay;
    tc.optim.warmup_steps = o.warmup;
    tc.optim.ema_decay = o.ema_decay;
    if (o.clip_grad_norm > 0) {
        tc.optim.policy = GRAD_POLICY_CLIP;
        tc.optim.max_grad_norm = o.clip_grad_norm;
    } else if (o.skip_grad_norm > 0) {
        tc.optim.policy = GRAD_POLICY_SKIP;
        tc.optim.max_grad_norm = o.skip_grad_norm;
    }
    tc.seed = (uint64_t)o.seed;
    tc.log_every = o.log_every;
    tc.log_path = o.log;
    tc.out_dir = o.out;
    tc.quiet = o.quiet;
    char *json = options_to_json(&set);
    tc.options_json = json;
    if (!o.quiet) {
        fprintf(stderr, "dydit train, effective options:\n");
        options_print(&set, stderr, "  ");
    }
    TrainSummary s = train_run(&tc);
    if (!o.quiet)
        fprintf(stderr, "done: loss %.4f -> %.4f (mean of first/last 10%%: %.4f -> %.4f), %.1f img/s, %ld skipped\n",
                s.first_loss, s.last_loss, s.mean_first, s.mean_last, s.images_per_second, s.skipped);
    free(json);
    free(init_params);
    latent_set_free(&data);
    return 0;
}
