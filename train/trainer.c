#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "kernels/philox.h"
#include "model/diffusion.h"
#include "model/init.h"
#include "model/objective.h"
#include "model/weights.h"
#include "train/batch.h"
#include "train/checkpoint.h"

double dydit_target_at(const DyditTraining *d, long step) {
    if (step < 100) return 1.0;
    if (d->lambda_warmup > 0 && step <= d->lambda_warmup)
        return 1.0 - (1.0 - d->lambda) * (double)step / (double)d->lambda_warmup;
    return d->lambda;
}

double dydit_tau_at(const DyditTraining *d, long step, long steps) {
    if (steps <= 1 || d->tau_end == d->tau) return d->tau;
    return d->tau + (d->tau_end - d->tau) * (double)step / (double)(steps - 1);
}

static DataSource *open_data(const TrainConfig *tc) {
    if (tc->batch < 1 || tc->steps < 1) die("--batch and --steps must be at least 1");
    if (tc->stratified && tc->batch % 4) die("stratified timesteps need a batch divisible by 4 (got %d)", tc->batch);
    if (!tc->data == !tc->data_dir) die("internal: exactly one data source");
    char err[1024];
    DataSource *ds = tc->data ? data_source_memory(tc->data, tc->seed)
                              : data_source_shards(tc->data_dir, tc->batch, tc->seed, err, sizeof(err));
    if (!ds) die("%s", err);
    DataShape d = data_source_shape(ds);
    const DitConfig *c = &tc->model;
    if (d.channels != c->in_channels || d.height != c->input_size || d.width != c->input_size)
        die("the data holds %dx%dx%d latents but the model takes %dx%dx%d (C x H x W)", d.channels, d.height, d.width,
            c->in_channels, c->input_size, c->input_size);
    if (d.num_classes > c->num_classes)
        die("the data has %d classes but the model only %d (--num-classes)", d.num_classes, c->num_classes);
    return ds;
}

// Everything the loop updates, on the backend, with the host copies a checkpoint needs.
typedef struct {
    DitModel m;
    float *ema, *adam_m, *adam_v;
    size_t total, first_trainable, trainable;
    Optimizer opt;
    long start_step;
} TrainState;

static void state_create(TrainState *s, const TrainConfig *tc) {
    const Ops *ops = &ops_cpu;
    memset(s, 0, sizeof(*s));
    dit_model_create(&s->m, &tc->model, ops);
    dit_model_plan(&s->m, tc->batch);
    s->total = s->m.table.total;
    s->first_trainable = s->m.table.trainable_begin;
    s->trainable = s->total - s->first_trainable;
    s->ema = ops->alloc(s->total * sizeof(float));
    s->adam_m = ops->alloc(s->trainable * sizeof(float));
    s->adam_v = ops->alloc(s->trainable * sizeof(float));
    optim_init(&s->opt, ops, &tc->optim);

    if (tc->resume) {
        LoadedCheckpoint ck;
        char err[1024];
        if (checkpoint_load(tc->resume, &ck, err, sizeof(err))) die("%s", err);
        if (ck.table.total != s->total) die("%s: the checkpoint's model differs from this run's", tc->resume);
        if (ck.state.seed != tc->seed)
            warn("%s: the checkpoint was trained with seed %llu, this run uses %llu; the data order and noise "
                 "change",
                 tc->resume, (unsigned long long)ck.state.seed, (unsigned long long)tc->seed);
        ops->upload(s->m.params, ck.params, s->total * sizeof(float));
        ops->upload(s->ema, ck.ema, s->total * sizeof(float));
        ops->upload(s->adam_m, ck.adam_m, s->trainable * sizeof(float));
        ops->upload(s->adam_v, ck.adam_v, s->trainable * sizeof(float));
        s->opt.step = ck.state.optimizer_step;
        s->start_step = ck.state.step;
        checkpoint_loaded_free(&ck);
        return;
    }
    float *host = xmalloc(s->total * sizeof(float));
    if (tc->init_params)
        memcpy(host, tc->init_params, s->total * sizeof(float));
    else
        dit_init_host(&tc->model, &s->m.table, host, tc->seed);
    ops->upload(s->m.params, host, s->total * sizeof(float));
    ops->upload(s->ema, host, s->total * sizeof(float)); // the EMA starts as an exact copy
    free(host);
}

static void state_destroy(TrainState *s) {
    const Ops *ops = s->m.ops;
    optim_free(&s->opt);
    ops->release(s->ema);
    ops->release(s->adam_m);
    ops->release(s->adam_v);
    dit_model_destroy(&s->m);
}

static float *download(const TrainState *s, const float *src, size_t n) {
    float *host = xmalloc(n * sizeof(float));
    s->m.ops->download(host, src, n * sizeof(float));
    return host;
}

static void save_checkpoint(const TrainConfig *tc, TrainState *s, long step) {
    CheckpointTensors t = {
        .params = download(s, s->m.params, s->total),
        .ema = download(s, s->ema, s->total),
        .adam_m = download(s, s->adam_m, s->trainable),
        .adam_v = download(s, s->adam_v, s->trainable),
    };
    CheckpointState st = {.step = step, .optimizer_step = s->opt.step, .seed = tc->seed};
    checkpoint_save(tc->out_dir, &st, &s->m.cfg, &s->m.table, &t, tc->options_json, tc->keep_checkpoints);
    free((void *)t.params);
    free((void *)t.ema);
    free((void *)t.adam_m);
    free((void *)t.adam_v);
}

static void save_final_weights(const TrainConfig *tc, TrainState *s, long step) {
    const char *names[2] = {"model.safetensors", "ema.safetensors"};
    const float *buffers[2] = {s->m.params, s->ema};
    char step_text[32], err[1024];
    snprintf(step_text, sizeof(step_text), "%ld", step);
    WeightsMeta meta[2] = {{"step", step_text}, {"train_options", tc->options_json ? tc->options_json : "{}"}};
    for (int i = 0; i < 2; i++) {
        float *host = download(s, buffers[i], s->total);
        char *path = xasprintf("%s/%s", tc->out_dir, names[i]);
        if (weights_save(path, &s->m.cfg, &s->m.table, host, meta, 2, err, sizeof(err))) die("%s", err);
        free(path);
        free(host);
    }
}

static void format_duration(char *out, size_t size, double seconds) {
    long sec = (long)(seconds + 0.5);
    if (sec >= 3600)
        snprintf(out, size, "%ldh%02ldm", sec / 3600, (sec / 60) % 60);
    else if (sec >= 60)
        snprintf(out, size, "%ldm%02lds", sec / 60, sec % 60);
    else
        snprintf(out, size, "%lds", sec);
}

static void log_step(FILE *log, const TrainConfig *tc, long step, const LossTerms *l, const OptimStepInfo *info,
                     double target, double rate, double elapsed) {
    fprintf(log,
            "{\"step\":%ld,\"loss\":%.6g,\"mse\":%.6g,\"vb\":%.6g,\"grad_norm\":%.6g,\"lr\":%.6g,\"updated\":%d,"
            "\"clipped\":%d,\"nonfinite\":%d",
            step, l->loss, l->mse, l->vb, info->grad_norm, info->lr, info->updated, info->clipped, info->nonfinite);
    if (tc->model.dynamic) {
        fprintf(log,
                ",\"diffusion_loss\":%.6g,\"flops_loss\":%.6g,\"target_ratio\":%.6g,\"flops_ratio\":%.6g,"
                "\"head_keep\":%.4g,\"group_keep\":%.4g,\"token_keep\":%.4g,\"tau\":%.4g",
                l->mse + l->vb, l->flops_loss, target, l->flops_ratio, l->head_keep, l->group_keep, l->token_keep,
                dydit_tau_at(&tc->dydit, step, tc->steps));
        if (tc->dydit.stage == 1) fprintf(log, ",\"complete_loss\":%.6g", l->complete_mse + l->complete_vb);
    }
    fprintf(log, ",\"images_per_s\":%.4g,\"elapsed_s\":%.3f}\n", rate, elapsed);
    fflush(log);
}

TrainSummary train_run(const TrainConfig *tc) {
    DataSource *data = open_data(tc);
    const Ops *ops = &ops_cpu;
    const int B = tc->batch;
    TrainState s;
    state_create(&s, tc);
    DitModel *m = &s.m;
    const DitConfig *c = &tc->model;
    if (s.start_step >= tc->steps)
        die("the checkpoint is at step %ld, already at --steps %ld", s.start_step, tc->steps);

    Objective obj;
    objective_create(&obj, ops, c, B);
    DiffusionSchedule sched = diffusion_schedule_linear(1000);
    BatchRecipe recipe = {.seed = tc->seed,
                          .batch = B,
                          .num_classes = c->num_classes,
                          .class_dropout = c->class_dropout,
                          .stratified = tc->stratified,
                          .timesteps = sched.T};
    HostBatch hb;
    host_batch_alloc(&hb, B, obj.sample_numel);
    FILE *log = stdout;
    if (tc->log_path && (make_parent_dirs(tc->log_path) || !(log = fopen(tc->log_path, tc->resume ? "a" : "w"))))
        die("cannot write log file %s", tc->log_path);
    if (tc->out_dir && make_dirs(tc->out_dir)) die("cannot create directory %s", tc->out_dir);

    if (!tc->quiet) {
        char desc[320];
        dit_config_describe(c, desc, sizeof(desc));
        fprintf(stderr, "model: %s\nparameters: %zu (%zu trainable)\nactivations: %.1f MiB for batch %d\n", desc,
                s.total, s.trainable, (double)m->arena_bytes / (1 << 20), B);
        if (s.start_step) fprintf(stderr, "resuming at step %ld\n", s.start_step);
    }

    TrainSummary sum = {0};
    long run_steps = tc->steps - s.start_step, window = run_steps / 10 > 0 ? run_steps / 10 : 1;
    int L = c->depth, H = c->heads, T = dit_tokens(c);
    double start = now_seconds();
    for (long step = s.start_step; step < tc->steps; step++) {
        long done = step - s.start_step;
        uint32_t first = (uint32_t)((uint64_t)step * B);
        host_batch_fill(&hb, &recipe, data, step);
        ops->upload(obj.x0, hb.x0, (size_t)B * obj.sample_numel * sizeof(float));
        ops->randn(obj.noise, tc->seed, RNG_NOISE, (uint32_t)step, first, B, obj.sample_numel);
        DynamicTerms dyn = {0};
        double target = 1.0;
        if (c->dynamic) {
            target = dydit_target_at(&tc->dydit, step);
            dyn = (DynamicTerms){.stage = tc->dydit.stage,
                                 .target = (float)target,
                                 .flops_weight = (float)tc->dydit.flops_weight,
                                 .flops_group_size = tc->dydit.flops_group_size,
                                 .tau = (float)dydit_tau_at(&tc->dydit, step, tc->steps),
                                 .threshold = (float)tc->dydit.threshold,
                                 .noisy = 1,
                                 .y_complete = hb.y_complete};
            ops->rand_logistic(m->act.noise_attn, tc->seed, RNG_GUMBEL_ATTN, (uint32_t)step, first, B,
                               (size_t)L * (H - 1));
            ops->rand_logistic(m->act.noise_mlp, tc->seed, RNG_GUMBEL_MLP, (uint32_t)step, first, B,
                               (size_t)L * (H - 1));
            ops->rand_logistic(m->act.noise_token, tc->seed, RNG_GUMBEL_TOKEN, (uint32_t)step, first, B, (size_t)L * T);
        }
        ops->zero(m->grads, s.total * sizeof(float));
        LossTerms loss = objective_run(&obj, m, &sched, hb.t, hb.y, B, 1.0f / B, c->dynamic ? &dyn : NULL);

        float *params = m->params + s.first_trainable, *grads = m->grads + s.first_trainable;
        double norm = optim_grad_norm(&s.opt, grads, s.trainable);
        OptimStepInfo info = optim_step(&s.opt, step, norm, params, grads, s.adam_m, s.adam_v, s.trainable);
        optim_ema_update(&s.opt, s.ema, m->params, s.total);

        if (done == 0) sum.first_loss = loss.loss;
        sum.last_loss = loss.loss;
        if (done < window) sum.mean_first += loss.loss / window;
        if (step >= tc->steps - window) {
            sum.mean_last += loss.loss / window;
            sum.diffusion_last += (loss.mse + loss.vb) / window;
            sum.flops_ratio_last += loss.flops_ratio / window;
        }
        sum.skipped += !info.updated;

        if (step % tc->log_every == 0 || step == tc->steps - 1) {
            double elapsed = now_seconds() - start, rate = (double)(done + 1) * B / elapsed;
            log_step(log, tc, step, &loss, &info, target, rate, elapsed);
            if (!tc->quiet) {
                char eta[32];
                format_duration(eta, sizeof(eta), (double)(tc->steps - step - 1) * B / rate);
                fprintf(stderr, "step %ld/%ld  loss %.4f  grad %.3g", step + 1, tc->steps, loss.loss, info.grad_norm);
                if (c->dynamic) fprintf(stderr, "  flops %.3f (target %.3f)", loss.flops_ratio, target);
                fprintf(stderr, "  %.1f img/s  eta %s\n", rate, eta);
            }
        }
        if (tc->out_dir && tc->checkpoint_every > 0 && (step + 1) % tc->checkpoint_every == 0 && step + 1 < tc->steps)
            save_checkpoint(tc, &s, step + 1);
    }
    sum.images_per_second = (double)run_steps * B / (now_seconds() - start);
    if (tc->out_dir) {
        save_checkpoint(tc, &s, tc->steps);
        save_final_weights(tc, &s, tc->steps);
        if (!tc->quiet)
            fprintf(stderr, "wrote %s/model.safetensors, %s/ema.safetensors and a checkpoint\n", tc->out_dir,
                    tc->out_dir);
    }

    if (log != stdout) fclose(log);
    host_batch_free(&hb);
    data_source_close(data);
    diffusion_schedule_free(&sched);
    objective_destroy(&obj);
    state_destroy(&s);
    return sum;
}
