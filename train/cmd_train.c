// train/cmd_train.c: `dydit train`, options -> TrainConfig -> the training loop. Pretraining a
// DiT and fine-tuning it into a DyDiT (--dynamic, or --init from DyDiT weights) share the command.
// Started by mpirun (or srun) it trains data-parallel over the launched processes: the options
// mean the same run whatever the number of processes (--batch is the global batch), so the same
// command line gives the same model on one process or many.
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/output_files.h"
#include "common/util.h"
#include "model/init.h"
#include "model/reorder.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "train/commands.h"
#include "train/device_options.h"
#include "train/dist.h"
#include "train/model_options.h"
#include "train/stop_request.h"
#include "train/trainer.h"

typedef struct {
    ModelOptions model;
    DeviceOptions device;
    const char *data, *init, *log, *out, *resume, *router_input, *stop_after;
    int synthetic_size, steps, batch, warmup, seed, log_every, threads, quiet, checkpoint_every, keep_checkpoints;
    int global_batch, micro_batch, zero;
    double lr, weight_decay, beta1, beta2, adam_eps, clip_grad_norm, skip_grad_norm, ema_decay;
    double bucket_mb, collective_timeout;
    int dynamic, stage, lambda_warmup, lambda_hold, flops_group_size, stratified, reorder_heads;
    int probe_samples, probe_steps;
    double lambda, flops_weight, tau, tau_end, threshold, router_bias, token_router_bias;
} TrainOptions;

enum { TRAIN_OPTIONS_MAX = 64 };

// Fills opts (room for TRAIN_OPTIONS_MAX) and returns how many there are.
static int add_options(TrainOptions *o, Option *opts) {
    model_options_add(&o->model, opts, 0);
    device_options_add(&o->device, opts, MODEL_OPTION_COUNT);
    const Option own[] = {
        {"data", OPT_STRING, &o->data,
         "'synthetic', a directory of latent shards (dydit encode), or one safetensors file with latents "
         "(N,C,H,W) and labels (N)",
         NULL, 0, NO_RANGE},
        {"synthetic-size", OPT_INT, &o->synthetic_size, "samples generated for --data synthetic", NULL, 0,
         RANGE(1, COUNT_MAX)},
        {"init", OPT_STRING, &o->init, "start from these weights (the model shape comes from the file)", "DiT init", 0,
         NO_RANGE},
        {"resume", OPT_STRING, &o->resume,
         "continue from a checkpoint directory, a run directory's newest, or 'latest' (--out's newest)", NULL, 0,
         NO_RANGE},
        {"steps", OPT_INT, &o->steps, "train until this many steps are done", NULL, 0, RANGE(1, INT_MAX)},
        {"stop-after", OPT_STRING, &o->stop_after,
         "stop gracefully (checkpoint, exit 0) once this much wall time has passed: 3h50m, 90m, 45s, or seconds",
         "no limit", 0, NO_RANGE},
        {"batch", OPT_INT, &o->batch, "samples per step, over all processes (the global batch)", NULL, 0,
         RANGE(1, BATCH_MAX)},
        {"global-batch", OPT_INT, &o->global_batch, "the same as --batch, spelled for multi-process runs", "--batch", 0,
         RANGE(1, BATCH_MAX)},
        {"micro-batch", OPT_INT, &o->micro_batch,
         "samples per forward/backward pass; a process accumulates its share of the batch over passes",
         "the process's share", 0, RANGE(0, BATCH_MAX)},
        {"zero", OPT_INT, &o->zero, "1: ZeRO-1, AdamW's moments sharded over the processes", NULL, 0, RANGE(0, 1)},
        {"bucket-mb", OPT_FLOAT, &o->bucket_mb, "MiB of gradients per all-reduce bucket", NULL, 0,
         RANGE_ABOVE(0, 65536)},
        {"collective-timeout", OPT_FLOAT, &o->collective_timeout,
         "seconds a process waits for the others in a collective before ending the job (0: forever)", NULL, 0,
         RANGE(0, 1e6)},
        {"lr", OPT_FLOAT, &o->lr, "AdamW learning rate", NULL, 0, RANGE(0, 1)},
        {"warmup", OPT_INT, &o->warmup, "linear LR warm-up steps (0: constant LR)", NULL, 0, RANGE(0, INT_MAX)},
        {"weight-decay", OPT_FLOAT, &o->weight_decay, "AdamW decoupled weight decay", NULL, 0, RANGE(0, 1)},
        {"beta1", OPT_FLOAT, &o->beta1, "AdamW first-moment decay", NULL, 0, RANGE_BELOW(0, 1)},
        {"beta2", OPT_FLOAT, &o->beta2, "AdamW second-moment decay", NULL, 0, RANGE_BELOW(0, 1)},
        {"adam-eps", OPT_FLOAT, &o->adam_eps, "AdamW epsilon", NULL, 0, RANGE_ABOVE(0, 1)},
        {"clip-grad-norm", OPT_FLOAT, &o->clip_grad_norm, "scale gradients down to this global norm (0: off)", NULL, 0,
         RANGE(0, 1e30)},
        {"skip-grad-norm", OPT_FLOAT, &o->skip_grad_norm, "skip the update when the global norm reaches this (0: off)",
         NULL, 0, RANGE(0, 1e30)},
        {"ema-decay", OPT_FLOAT, &o->ema_decay, "EMA decay per step", NULL, 0, RANGE(0, 1)},
        {"stratified", OPT_INT, &o->stratified, "1: timesteps stratified over the 4 quarters of the schedule",
         "1 for a DyDiT, else 0", 0, RANGE(0, 1)},
        {"seed", OPT_INT, &o->seed, "seed of every random draw", NULL, 0, SEED_RANGE},
        {"log-every", OPT_INT, &o->log_every, "steps between JSON log lines", NULL, 0, RANGE(1, INT_MAX)},
        {"log", OPT_STRING, &o->log, "JSON-lines log file", "stdout", 0, NO_RANGE},
        {"out", OPT_STRING, &o->out, "run directory: model.safetensors, ema.safetensors, checkpoints/", NULL, 0,
         NO_RANGE},
        {"checkpoint-every", OPT_INT, &o->checkpoint_every, "steps between checkpoints (0: only at the end)", NULL, 0,
         RANGE(0, INT_MAX)},
        {"ckpt-every", OPT_INT, &o->checkpoint_every, "the same as --checkpoint-every", NULL, 0, RANGE(0, INT_MAX)},
        {"keep-checkpoints", OPT_INT, &o->keep_checkpoints, "how many checkpoints to keep", NULL, 0, RANGE(1, 1e6)},
        {"threads", OPT_INT, &o->threads, "CPU threads (0: OpenMP's default)", NULL, 0, RANGE(0, THREADS_MAX)},
        {"quiet", OPT_FLAG, &o->quiet, "no progress lines on stderr", NULL, 0, NO_RANGE},
        // DyDiT
        {"dynamic", OPT_FLAG, &o->dynamic, "DyDiT: add routers (to --init DiT weights, or a new model)", NULL, 0,
         NO_RANGE},
        {"router-input", OPT_STRING, &o->router_input, "DyDiT: width routers read 'timestep' (E_t) or 'condition'",
         "timestep", 0, NO_RANGE},
        {"stage", OPT_INT, &o->stage, "DyDiT: 1 adds the complete model's loss (warm-up stage), 2 does not", NULL, 0,
         RANGE(1, 2)},
        {"lambda", OPT_FLOAT, &o->lambda, "DyDiT: target FLOPs ratio of the attention and MLP blocks", NULL, 0,
         RANGE_ABOVE(0, 1)},
        {"lambda-warmup", OPT_INT, &o->lambda_warmup,
         "DyDiT: steps over which the target falls linearly from 1 to lambda (0: at once)", NULL, 0,
         RANGE(0, INT_MAX)},
        {"lambda-hold", OPT_INT, &o->lambda_hold,
         "DyDiT: the target stays 1 for this many steps, then the warm-up ramp starts; -1: the official schedule "
         "(ramp from step 0, target 1 for the first 100 steps regardless)",
         NULL, 0, RANGE(-1, INT_MAX)},
        {"flops-weight", OPT_FLOAT, &o->flops_weight, "DyDiT: weight of the FLOPs loss", NULL, 0, RANGE(0, 1e6)},
        {"flops-group-size", OPT_INT, &o->flops_group_size,
         "DyDiT: FLOPs loss averaged over groups of this many consecutive samples of the global batch (0: all of it)",
         NULL, 0, RANGE(0, BATCH_MAX)},
        {"tau", OPT_FLOAT, &o->tau, "DyDiT: straight-through Gumbel-sigmoid temperature", NULL, 0, RANGE_ABOVE(0, 1e6)},
        {"tau-end", OPT_FLOAT, &o->tau_end, "DyDiT: temperature at the last step (linear schedule)", "--tau", 0,
         RANGE_ABOVE(0, 1e6)},
        {"threshold", OPT_FLOAT, &o->threshold, "DyDiT: a router keeps a unit when logit + noise > this", NULL, 0,
         RANGE(-1e6, 1e6)},
        {"router-bias", OPT_FLOAT, &o->router_bias, "DyDiT: initial bias of new width routers", NULL, 0,
         RANGE(-1e4, 1e4)},
        {"token-router-bias", OPT_FLOAT, &o->token_router_bias, "DyDiT: initial output bias of new token routers", NULL,
         0, RANGE(-1e4, 1e4)},
        {"reorder-heads", OPT_FLAG, &o->reorder_heads,
         "DyDiT: order heads and MLP units by importance before fine-tuning (index 0 = most important)", NULL, 0,
         NO_RANGE},
        {"probe-samples", OPT_INT, &o->probe_samples,
         "DyDiT: at every checkpoint and at the end, log the FLOPs ratio the EMA weights realise when they sample "
         "this many images (0: off)",
         NULL, 0, RANGE(0, 4096)},
        {"probe-steps", OPT_INT, &o->probe_steps, "DyDiT: DDPM steps of that sampling probe", NULL, 0, RANGE(1, 1000)},
    };
    int count = (int)(sizeof(own) / sizeof(own[0]));
    int first = MODEL_OPTION_COUNT + DEVICE_OPTION_COUNT;
    if (first + count > TRAIN_OPTIONS_MAX) die("internal: too many train options");
    memcpy(opts + first, own, sizeof(own));
    return first + count;
}

static int file_has_routers(const char *path) {
    char err[512];
    StFile *f = st_open(path, err, sizeof(err));
    if (!f) die("%s", err);
    int has = st_find(f, "blocks.0.attn_rate.router.weight") != NULL;
    st_close(f);
    return has;
}

// A resumed run takes its weights, routers and head order from the checkpoint, so a config that
// started the run (--init, router biases, --reorder-heads) also continues it: those options are
// dropped with a note instead of refused.
static void drop_options_fixed_by_checkpoint(TrainOptions *o, const OptionSet *set, int lead) {
    static const char *fixed[] = {"init", "router-bias", "token-router-bias", "reorder-heads"};
    char dropped[128] = "";
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        if (options_was_set(set, fixed[i]))
            snprintf(dropped + strlen(dropped), sizeof(dropped) - strlen(dropped), "%s--%s", *dropped ? ", " : "",
                     fixed[i]);
    if (!*dropped) return;
    o->init = NULL;
    o->reorder_heads = 0;
    if (lead) fprintf(stderr, "note: resuming, so %s ignored: the checkpoint fixes the weights\n", dropped);
}

// A resumed run keeps the checkpoint's model: model options may repeat it (the config that started
// the run names the shape), never change it.
static void require_checkpoint_model(const ModelOptions *mo, const OptionSet *set, const DitConfig *kept) {
    DitConfig preset = dit_config_default();
    if (options_was_set(set, "model") &&
        (dit_config_apply_preset(&preset, mo->model) || preset.depth != kept->depth || preset.hidden != kept->hidden ||
         preset.heads != kept->heads || preset.patch != kept->patch))
        die("--model %s is not the checkpoint's model; a resumed run keeps its model", mo->model);
    const struct {
        const char *name;
        double given, kept;
    } shape[] = {{"depth", mo->depth, kept->depth},
                 {"hidden", mo->hidden, kept->hidden},
                 {"heads", mo->heads, kept->heads},
                 {"patch", mo->patch, kept->patch},
                 {"in-channels", mo->in_channels, kept->in_channels},
                 {"input-size", mo->input_size, kept->input_size},
                 {"num-classes", mo->num_classes, kept->num_classes},
                 {"learn-sigma", mo->learn_sigma != 0, kept->learn_sigma},
                 {"mlp-ratio", (float)mo->mlp_ratio, kept->mlp_ratio},
                 {"class-dropout", (float)mo->class_dropout, kept->class_dropout}};
    for (size_t i = 0; i < sizeof(shape) / sizeof(shape[0]); i++)
        if (options_was_set(set, shape[i].name) && shape[i].given != shape[i].kept)
            die("--%s %g differs from the checkpoint's %g; a resumed run keeps its model", shape[i].name,
                shape[i].given, shape[i].kept);
}

// The model shape: from --resume's checkpoint or --init's file (model options then only help
// read it), else from the options.
static DitConfig resolve_model(const TrainOptions *o, const OptionSet *set, float **init_params) {
    *init_params = NULL;
    int router_input = router_input_from_name(o->router_input);
    if (router_input < 0) die("--router-input must be 'timestep' or 'condition' (got '%s')", o->router_input);
    int custom_biases =
        !o->resume && (options_was_set(set, "router-bias") || options_was_set(set, "token-router-bias"));
    if (!o->init && !o->resume) {
        DitConfig cfg = model_options_config(&o->model, set);
        cfg.dynamic = o->dynamic;
        cfg.router_input = router_input;
        char why[256];
        if (dit_config_validate(&cfg, why, sizeof(why))) die("invalid model: %s", why);
        if (cfg.dynamic && custom_biases) {
            TensorTable table = tensor_table_build(&cfg);
            *init_params = xmalloc(table.total * sizeof(float));
            dit_init_host(&cfg, &table, *init_params, (uint64_t)o->seed);
            dydit_set_router_biases(&table, *init_params, (float)o->router_bias, (float)o->token_router_bias);
            tensor_table_free(&table);
        }
        return cfg;
    }
    if (custom_biases && file_has_routers(o->init))
        die("--router-bias and --token-router-bias set the biases of new routers; these weights already have routers");
    if (o->resume) {
        LoadedCheckpoint ck;
        char err[1024];
        if (checkpoint_load(o->resume, &ck, err, sizeof(err))) die("%s", err);
        DitConfig cfg = ck.cfg;
        checkpoint_loaded_free(&ck);
        require_checkpoint_model(&o->model, set, &cfg);
        return cfg;
    }
    static const char *shape_only[] = {"depth",       "hidden",      "patch",    "in-channels",
                                       "num-classes", "learn-sigma", "mlp-ratio"};
    for (size_t i = 0; i < sizeof(shape_only) / sizeof(shape_only[0]); i++)
        if (options_was_set(set, shape_only[i]))
            die("--%s conflicts with --init: the model shape comes from the weights", shape_only[i]);
    WeightsHints hints = {.dynamic = o->dynamic};
    if (options_was_set(set, "model")) hints.model = o->model.model;
    if (options_was_set(set, "heads")) hints.heads = o->model.heads;
    if (options_was_set(set, "input-size")) hints.input_size = o->model.input_size;
    if (options_was_set(set, "class-dropout")) {
        hints.has_class_dropout = 1;
        hints.class_dropout = (float)o->model.class_dropout;
    }
    if (options_was_set(set, "router-input")) {
        hints.has_router_input = 1;
        hints.router_input = router_input;
    }
    DitConfig cfg;
    TensorTable table;
    char err[1024];
    if (weights_load_file(o->init, &hints, &cfg, &table, init_params, err, sizeof(err))) die("%s", err);
    if (o->reorder_heads) {
        if (file_has_routers(o->init))
            die("--reorder-heads orders a DiT before fine-tuning; %s already has trained routers", o->init);
        dit_reorder_by_importance(&cfg, &table, *init_params);
    }
    if (cfg.dynamic && custom_biases)
        dydit_set_router_biases(&table, *init_params, (float)o->router_bias, (float)o->token_router_bias);
    tensor_table_free(&table);
    return cfg;
}

// The files a run writes must not be the ones it reads: --log and the final weights in --out
// against --init, a --data file and the files of the --resume checkpoint.
static void refuse_outputs_over_inputs(const TrainOptions *o) {
    enum { OUTPUTS = 3, CHECKPOINT_FILES = 4, INPUTS = 2 + CHECKPOINT_FILES };
    static const char *checkpoint_files[CHECKPOINT_FILES] = {"state.json", "model.safetensors", "ema.safetensors",
                                                             "optimizer.safetensors"};
    char *model = o->out ? xasprintf("%s/model.safetensors", o->out) : NULL;
    char *ema = o->out ? xasprintf("%s/ema.safetensors", o->out) : NULL;
    char *resumed = o->resume ? checkpoint_resolve(o->resume) : NULL, *resumed_files[CHECKPOINT_FILES] = {0};
    const char *outputs[OUTPUTS][2] = {{"--log", o->log}, {"--out", model}, {"--out", ema}};
    const char *inputs[INPUTS][2] = {{"--init", o->init}, {"--data", o->data}};
    for (int i = 0; i < CHECKPOINT_FILES && resumed; i++) {
        resumed_files[i] = xasprintf("%s/%s", resumed, checkpoint_files[i]);
        inputs[2 + i][0] = "--resume", inputs[2 + i][1] = resumed_files[i];
    }
    for (int i = 0; i < OUTPUTS; i++)
        for (int j = 0; j < INPUTS; j++) refuse_same_file(outputs[i][0], outputs[i][1], inputs[j][0], inputs[j][1]);
    for (int i = 0; i < CHECKPOINT_FILES; i++) free(resumed_files[i]);
    free(resumed);
    free(ema);
    free(model);
}

static void fill_dydit(DyditTraining *d, const TrainOptions *o, const OptionSet *set) {
    d->stage = o->stage;
    d->lambda = o->lambda;
    d->lambda_warmup = o->lambda_warmup;
    d->lambda_hold = o->lambda_hold;
    d->flops_weight = o->flops_weight;
    d->flops_group_size = o->flops_group_size;
    d->tau = o->tau;
    d->tau_end = o->tau_end;
    d->threshold = o->threshold;
}

static void fill_optim(OptimConfig *c, const TrainOptions *o) {
    *c = optim_config_default();
    c->lr = o->lr;
    c->beta1 = o->beta1;
    c->beta2 = o->beta2;
    c->eps = o->adam_eps;
    c->weight_decay = o->weight_decay;
    c->warmup_steps = o->warmup;
    c->ema_decay = o->ema_decay;
    if (o->clip_grad_norm > 0) {
        c->policy = GRAD_POLICY_CLIP;
        c->max_grad_norm = o->clip_grad_norm;
    } else if (o->skip_grad_norm > 0) {
        c->policy = GRAD_POLICY_SKIP;
        c->max_grad_norm = o->skip_grad_norm;
    }
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
        .keep_checkpoints = 3,
        .bucket_mb = 25,
        .collective_timeout = 600,
        .router_input = "timestep",
        .stage = 2,
        .lambda = 0.5,
        .lambda_hold = -1,
        .probe_samples = 8,
        .probe_steps = 10,
        .flops_weight = 2.0,
        .tau = 5.0,
        .stratified = -1,
        .router_bias = DYDIT_WIDTH_ROUTER_BIAS,
        .token_router_bias = DYDIT_TOKEN_ROUTER_BIAS,
    };
    Option opts[TRAIN_OPTIONS_MAX];
    int count = add_options(&o, opts);
    OptionSet set = {
        "train",
        "Train a DiT with the diffusion objective (eps-MSE + VB), AdamW and EMA, or fine-tune a DyDiT with "
        "the FLOPs-constrained loss. One AdamW step per iteration, also in stage 1 (the official DyDiT "
        "stage-1 script takes two by mistake).",
        "dydit train [--config FILE] [options]", opts, count};
    options_parse(&set, argc, argv);
    if (!options_was_set(&set, "tau-end")) o.tau_end = o.tau; // so that the printed options say what runs
    if (options_was_set(&set, "global-batch")) {
        if (options_was_set(&set, "batch") && o.batch != o.global_batch)
            die("--batch %d and --global-batch %d disagree (they name the same number)", o.batch, o.global_batch);
        o.batch = o.global_batch;
    }
    if (o.clip_grad_norm > 0 && o.skip_grad_norm > 0) die("--clip-grad-norm and --skip-grad-norm exclude each other");
    if (o.resume && !o.out) die("--resume needs --out (where the continued run writes)");
    if (o.resume && !strcmp(o.resume, "latest")) o.resume = o.out;
    options_require_utf8(&set);
    refuse_outputs_over_inputs(&o);
    double time_limit = 0;
    if (o.stop_after && parse_duration(o.stop_after, &time_limit))
        die("--stop-after must be a positive duration like 3h50m, 90m, 45s or 3600 (got '%s')", o.stop_after);
    if (o.threads > 0) omp_set_num_threads(o.threads);
    // a stop asked for while the job starts is kept for the first step, and the limit counts the start
    stop_request_install();
    if (time_limit > 0) stop_request_deadline(time_limit);
    // from here on an error on any process ends every process of the job
    Dist *dist = dist_open(o.collective_timeout);
    int quiet = o.quiet || dist->rank != 0;
    if (o.resume) drop_options_fixed_by_checkpoint(&o, &set, dist->rank == 0);
    Backend backend = device_options_open(&o.device, dist->local_rank);

    TrainConfig tc = {0};
    tc.dist = dist;
    tc.collective_timeout = o.collective_timeout;
    tc.backend = &backend;
    float *init_params;
    tc.model = resolve_model(&o, &set, &init_params);
    tc.init_params = init_params;
    if (o.reorder_heads && !o.init) die("--reorder-heads needs --init (the pretrained DiT to order)");
    if (tc.model.dynamic) fill_dydit(&tc.dydit, &o, &set);
    tc.stratified = o.stratified >= 0 ? o.stratified : tc.model.dynamic;

    LatentSet data = {0};
    char err[1024];
    if (!strcmp(o.data, "synthetic")) {
        latent_set_synthetic(&data, o.synthetic_size, tc.model.in_channels, tc.model.input_size, tc.model.num_classes,
                             (uint64_t)o.seed);
        tc.data = &data;
    } else if (dir_exists(o.data)) {
        tc.data_dir = o.data; // latent shards from dydit encode
    } else {
        if (latent_set_load(&data, o.data, err, sizeof(err))) die("%s", err);
        tc.data = &data;
    }

    tc.steps = o.steps;
    tc.batch = o.batch;
    tc.micro_batch = o.micro_batch;
    tc.zero = o.zero;
    tc.bucket_mb = o.bucket_mb;
    fill_optim(&tc.optim, &o);
    tc.seed = (uint64_t)o.seed;
    tc.log_every = o.log_every;
    tc.log_path = o.log;
    tc.out_dir = o.out;
    tc.checkpoint_every = o.checkpoint_every;
    tc.keep_checkpoints = o.keep_checkpoints;
    tc.resume = o.resume;
    tc.quiet = o.quiet;
    tc.probe_samples = o.probe_samples;
    tc.probe_steps = o.probe_steps;
    char *json = options_to_json(&set);
    tc.options_json = json;
    if (!quiet) {
        fprintf(stderr, "dydit train, effective options:\n");
        options_print(&set, stderr, "  ");
    }
    TrainSummary s = train_run(&tc);
    if (!quiet && !s.stopped_at) {
        fprintf(stderr, "done: loss %.4f -> %.4f (mean of first/last 10%%: %.4f -> %.4f), %.1f img/s, %ld skipped",
                s.first_loss, s.last_loss, s.mean_first, s.mean_last, s.images_per_second, s.skipped);
        if (tc.model.dynamic) fprintf(stderr, ", realised FLOPs ratio %.3f", s.flops_ratio_last);
        fprintf(stderr, "\n");
    }
    free(json);
    free(init_params);
    latent_set_free(&data);
    dist_close(dist);
    return 0;
}
