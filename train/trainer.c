#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "data/epoch_order.h"
#include "kernels/philox.h"
#include "model/diffusion.h"
#include "model/init.h"
#include "model/objective.h"
#include "model/weights.h"

// The host side of one batch: latents, labels after dropout, timesteps.
typedef struct {
    float *x0;  // (B, C, H, W)
    int32_t *y; // (B)
    int32_t *t; // (B)
} HostBatch;

static void gather_batch(HostBatch *hb, const TrainConfig *tc, EpochOrder *order, long step, int num_timesteps) {
    const LatentSet *d = tc->data;
    int B = tc->batch;
    size_t numel = latent_set_sample_numel(d);
    uint32_t first = (uint32_t)((uint64_t)step * (uint64_t)B); // global index of the batch's first sample
    for (int b = 0; b < B; b++) {
        uint64_t g = (uint64_t)step * B + b;
        int64_t i = epoch_order_index(order, g);
        memcpy(hb->x0 + (size_t)b * numel, d->latents + (size_t)i * numel, numel * sizeof(float));
        double u = rng_open01(rng_u32(tc->seed, RNG_LABEL_DROP, (uint32_t)step, first + (uint32_t)b, 0));
        hb->y[b] = u < tc->model.class_dropout ? tc->model.num_classes : d->labels[i];
    }
    diffusion_sample_timesteps(hb->t, B, num_timesteps, tc->seed, (uint32_t)step, first);
}

static void check_data(const TrainConfig *tc) {
    const LatentSet *d = tc->data;
    const DitConfig *c = &tc->model;
    if (d->channels != c->in_channels || d->height != c->input_size || d->width != c->input_size)
        die("the data holds %dx%dx%d latents but the model takes %dx%dx%d (C x H x W)", d->channels, d->height,
            d->width, c->in_channels, c->input_size, c->input_size);
    if (d->num_classes > c->num_classes)
        die("the data has %d classes but the model only %d (--num-classes)", d->num_classes, c->num_classes);
    if (tc->batch < 1 || tc->steps < 1) die("--batch and --steps must be at least 1");
}

static void save_weights(const TrainConfig *tc, DitModel *m, const float *buffer, const char *name, long step) {
    if (!tc->out_dir) return;
    if (make_dirs(tc->out_dir)) die("cannot create directory %s", tc->out_dir);
    float *host = xmalloc(m->table.total * sizeof(float));
    m->ops->download(host, buffer, m->table.total * sizeof(float));
    char *path = xasprintf("%s/%s", tc->out_dir, name), step_text[32], err[512];
    snprintf(step_text, sizeof(step_text), "%ld", step);
    WeightsMeta meta[2] = {{"step", step_text}, {"train_options", tc->options_json ? tc->options_json : "{}"}};
    if (weights_save(path, &m->cfg, &m->table, host, meta, 2, err, sizeof(err))) die("%s", err);
    free(path);
    free(host);
}

static void format_duration(char *out, size_t size, double seconds) {
    long s = (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(out, size, "%ldh%02ldm", s / 3600, (s / 60) % 60);
    else if (s >= 60)
        snprintf(out, size, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(out, size, "%lds", s);
}

TrainSummary train_run(const TrainConfig *tc) {
    check_data(tc);
    const Ops *ops = &ops_cpu;
    const int B = tc->batch;
    DitModel m;
    dit_model_create(&m, &tc->model, ops);
    dit_model_plan(&m, B);
    size_t total = m.table.total, first_trainable = m.table.trainable_begin, trainable = total - first_trainable;

    float *host = xmalloc(total * sizeof(float));
    if (tc->init_params)
        memcpy(host, tc->init_params, total * sizeof(float));
    else
        dit_init_host(&tc->model, &m.table, host, tc->seed);
    ops->upload(m.params, host, total * sizeof(float));
    free(host);

    float *ema = ops->alloc(total * sizeof(float));
    ops->copy(ema, m.params, total * sizeof(float));
    float *adam_m = ops->alloc(trainable * sizeof(float)), *adam_v = ops->alloc(trainable * sizeof(float));
    Optimizer opt;
    optim_init(&opt, ops, &tc->optim);
    Objective obj;
    objective_create(&obj, ops, &tc->model, B);
    DiffusionSchedule sched = diffusion_schedule_linear(1000);
    EpochOrder order;
    epoch_order_init(&order, tc->data->count, tc->seed);
    HostBatch hb = {
        .x0 = xmalloc((size_t)B * obj.sample_numel * sizeof(float)),
        .y = xmalloc((size_t)B * sizeof(int32_t)),
        .t = xmalloc((size_t)B * sizeof(int32_t)),
    };
    FILE *log = stdout;
    if (tc->log_path && (make_parent_dirs(tc->log_path) || !(log = fopen(tc->log_path, "w"))))
        die("cannot write log file %s", tc->log_path);

    if (!tc->quiet) {
        char desc[256];
        dit_config_describe(&tc->model, desc, sizeof(desc));
        fprintf(stderr, "model: %s\nparameters: %zu (%zu trainable)\nactivations: %.1f MiB for batch %d\n", desc, total,
                trainable, (double)m.arena_bytes / (1 << 20), B);
    }

    TrainSummary sum = {0};
    long window = tc->steps / 10 > 0 ? tc->steps / 10 : 1;
    double start = now_seconds();
    for (long step = 0; step < tc->steps; step++) {
        gather_batch(&hb, tc, &order, step, sched.T);
        ops->upload(obj.x0, hb.x0, (size_t)B * obj.sample_numel * sizeof(float));
        ops->randn(obj.noise, tc->seed, RNG_NOISE, (uint32_t)step, (uint32_t)((uint64_t)step * B), B, obj.sample_numel);
        ops->zero(m.grads, total * sizeof(float));
        LossTerms loss = objective_run(&obj, &m, &sched, hb.t, hb.y, B, 1.0f / B);

        double norm = optim_grad_norm(&opt, m.grads + first_trainable, trainable);
        OptimStepInfo info = optim_step(&opt, step, norm, m.params + first_trainable, m.grads + first_trainable, adam_m,
                                        adam_v, trainable);
        optim_ema_update(&opt, ema, m.params, total);

        if (step == 0) sum.first_loss = loss.loss;
        sum.last_loss = loss.loss;
        if (step < window) sum.mean_first += loss.loss / window;
        if (step >= tc->steps - window) sum.mean_last += loss.loss / window;
        sum.skipped += !info.updated;

        if (step % tc->log_every == 0 || step == tc->steps - 1) {
            double elapsed = now_seconds() - start, rate = (double)(step + 1) * B / elapsed;
            fprintf(log,
                    "{\"step\":%ld,\"loss\":%.6g,\"mse\":%.6g,\"vb\":%.6g,\"grad_norm\":%.6g,\"lr\":%.6g,"
                    "\"updated\":%d,\"clipped\":%d,\"nonfinite\":%d,\"images_per_s\":%.4g,\"elapsed_s\":%.3f}\n",
                    step, loss.loss, loss.mse, loss.vb, info.grad_norm, info.lr, info.updated, info.clipped,
                    info.nonfinite, rate, elapsed);
            fflush(log);
            if (!tc->quiet) {
                char eta[32];
                format_duration(eta, sizeof(eta), (double)(tc->steps - step - 1) * B / rate);
                fprintf(stderr, "step %ld/%ld  loss %.4f  grad %.3g  %.1f img/s  eta %s\n", step + 1, tc->steps,
                        loss.loss, info.grad_norm, rate, eta);
            }
        }
    }
    sum.images_per_second = (double)tc->steps * B / (now_seconds() - start);
    save_weights(tc, &m, m.params, "model.safetensors", tc->steps);
    save_weights(tc, &m, ema, "ema.safetensors", tc->steps);
    if (tc->out_dir && !tc->quiet)
        fprintf(stderr, "wrote %s/model.safetensors and %s/ema.safetensors\n", tc->out_dir, tc->out_dir);

    if (log != stdout) fclose(log);
    free(hb.x0);
    free(hb.y);
    free(hb.t);
    epoch_order_free(&order);
    diffusion_schedule_free(&sched);
    objective_destroy(&obj);
    optim_free(&opt);
    ops->release(ema);
    ops->release(adam_m);
    ops->release(adam_v);
    dit_model_destroy(&m);
    return sum;
}
