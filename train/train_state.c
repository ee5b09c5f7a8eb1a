#include "train/train_state.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "model/init.h"
#include "model/weights.h"
#include "train/checkpoint.h"

enum { DEFAULT_BUCKET_MB = 25 };

static void *alloc_floats(const Ops *ops, size_t n) { return ops->alloc((n ? n : 1) * sizeof(float)); }

void train_state_create(TrainState *s, const TrainConfig *tc, Dist *d, int capacity) {
    memset(s, 0, sizeof(*s));
    s->backend = tc->backend ? tc->backend : &backend_cpu;
    const Ops *ops = s->backend->ops;
    dit_model_create(&s->m, &tc->model, ops);
    dit_model_plan(&s->m, capacity);
    s->total = s->m.table.total;
    s->first_trainable = s->m.table.trainable_begin;
    s->trainable = s->total - s->first_trainable;
    s->dist = d;
    s->zero = tc->zero;
    s->shard = tc->zero ? dist_shard(s->trainable, d->world, d->rank) : (DistShard){0, s->trainable};
    double bucket_mb = tc->bucket_mb > 0 ? tc->bucket_mb : DEFAULT_BUCKET_MB;
    s->bucket = (size_t)(bucket_mb * (1 << 20) / sizeof(float));
    if (s->bucket < 1) s->bucket = 1;
    s->ema = alloc_floats(ops, s->total);
    s->adam_m = alloc_floats(ops, s->shard.count);
    s->adam_v = alloc_floats(ops, s->shard.count);
    if (tc->zero) s->grad_shard = alloc_floats(ops, device_shard_capacity(d, s->trainable));
    s->collectives = device_collectives_open(d, s->backend, tc->collective_timeout);
    optim_init(&s->opt, ops, &tc->optim);

    if (tc->resume) {
        LoadedCheckpoint ck;
        char err[1024];
        if (checkpoint_load(tc->resume, &ck, err, sizeof(err))) die("%s", err);
        if (ck.table.total != s->total) die("%s: the checkpoint's model differs from this run's", tc->resume);
        if (ck.state.seed != tc->seed && d->rank == 0)
            warn("%s: the checkpoint was trained with seed %llu, this run uses %llu; the data order and noise "
                 "change",
                 tc->resume, (unsigned long long)ck.state.seed, (unsigned long long)tc->seed);
        if (ck.state.batch && ck.state.batch != tc->batch && d->rank == 0)
            warn("%s: the checkpoint was trained with a global batch of %d, this run uses %d; the data cursor "
                 "(step x batch) and the noise of later steps change",
                 tc->resume, ck.state.batch, tc->batch);
        ops->upload(s->m.params, ck.params, s->total * sizeof(float));
        ops->upload(s->ema, ck.ema, s->total * sizeof(float));
        ops->upload(s->adam_m, ck.adam_m + s->shard.offset, s->shard.count * sizeof(float));
        ops->upload(s->adam_v, ck.adam_v + s->shard.offset, s->shard.count * sizeof(float));
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

void train_state_destroy(TrainState *s) {
    const Ops *ops = s->m.ops;
    ops->release(s->ema);
    ops->release(s->adam_m);
    ops->release(s->adam_v);
    if (s->grad_shard) ops->release(s->grad_shard);
    device_collectives_close(s->collectives);
    dit_model_destroy(&s->m);
}

OptimStepInfo train_state_update(TrainState *s, long step, double loss) {
    Dist *d = s->dist;
    float *params = s->m.params + s->first_trainable, *grads = s->m.grads + s->first_trainable;
    OptimStepInfo info;
    if (s->zero) {
        device_reduce_scatter_sum_f32(s->collectives, grads, s->grad_shard, s->trainable);
        double squares = optim_sum_squares(&s->opt, s->grad_shard, s->shard.count);
        dist_allreduce_sum_f64(d, &squares, 1);
        info = optim_step(&s->opt, step, isfinite(loss) ? sqrt(squares) : NAN, params + s->shard.offset, s->grad_shard,
                          s->adam_m, s->adam_v, s->shard.count);
        if (info.updated) device_allgather_f32(s->collectives, params, s->trainable);
    } else {
        device_allreduce_sum_f32(s->collectives, grads, s->trainable, s->bucket);
        double norm = optim_grad_norm(&s->opt, grads, s->trainable);
        info =
            optim_step(&s->opt, step, isfinite(loss) ? norm : NAN, params, grads, s->adam_m, s->adam_v, s->trainable);
    }
    // Frozen parameters (pos_embed) keep their exact value in the EMA: decay e + (1 - decay) p can
    // round away from p even when e == p, and a loaded file's pos_embed is recomputed exactly.
    optim_ema_update(&s->opt, s->ema + s->first_trainable, params, s->trainable);
    return info;
}

static float *download(const TrainState *s, const float *src, size_t n) {
    float *host = xmalloc((n ? n : 1) * sizeof(float));
    s->m.ops->download(host, src, n * sizeof(float));
    return host;
}

// The whole trainable range of one moment on rank 0 (NULL elsewhere), gathered from the shards.
static float *gather_moment(const TrainState *s, const float *moment) {
    float *mine = download(s, moment, s->shard.count);
    if (!s->zero) {
        if (s->dist->rank == 0) return mine;
        free(mine);
        return NULL;
    }
    float *full = s->dist->rank == 0 ? xmalloc(s->trainable * sizeof(float)) : NULL;
    dist_gather_f32(s->dist, mine, full, s->trainable, 0);
    free(mine);
    return full;
}

static int all_finite(const float *x, size_t n) {
    int ok = 1;
    for (size_t i = 0; i < n; i++) ok &= isfinite(x[i]) != 0;
    return ok;
}

// Rank 0's outcome on every rank.
static int shared_outcome(Dist *d, int rc) {
    double failed = rc != 0;
    dist_allreduce_sum_f64(d, &failed, 1);
    return failed > 0 ? -1 : 0;
}

int train_state_save_checkpoint(TrainState *s, const TrainConfig *tc, long step, char *err, int err_size) {
    float *adam_m = gather_moment(s, s->adam_m), *adam_v = gather_moment(s, s->adam_v);
    if (s->dist->rank != 0) return shared_outcome(s->dist, 0);
    CheckpointTensors t = {
        .params = download(s, s->m.params, s->total),
        .ema = download(s, s->ema, s->total),
        .adam_m = adam_m,
        .adam_v = adam_v,
    };
    CheckpointState st = {.step = step,
                          .optimizer_step = s->opt.step,
                          .seed = tc->seed,
                          .batch = tc->batch,
                          .target_ratio = tc->model.dynamic ? dydit_target_at(&tc->dydit, step) : 1.0,
                          .tau = tc->model.dynamic ? dydit_tau_at(&tc->dydit, step, tc->steps) : 0.0};
    int rc = 0;
    if (!all_finite(t.params, s->total) || !all_finite(t.ema, s->total) || !all_finite(adam_m, s->trainable) ||
        !all_finite(adam_v, s->trainable))
        rc = fail_at(err, err_size, tc->out_dir,
                     "non-finite values in the training state at step %ld; checkpoint "
                     "not written",
                     step);
    else
        rc = checkpoint_save(tc->out_dir, &st, &s->m.cfg, &s->m.table, &t, tc->options_json, tc->keep_checkpoints, err,
                             err_size);
    free((void *)t.params);
    free((void *)t.ema);
    free(adam_m);
    free(adam_v);
    return shared_outcome(s->dist, rc);
}

int train_state_save_weights(TrainState *s, const TrainConfig *tc, long step, char *err, int err_size) {
    if (s->dist->rank != 0) return shared_outcome(s->dist, 0);
    const char *names[2] = {"model.safetensors", "ema.safetensors"};
    const float *buffers[2] = {s->m.params, s->ema};
    char step_text[32];
    snprintf(step_text, sizeof(step_text), "%ld", step);
    WeightsMeta meta[2] = {{"step", step_text}, {"train_options", tc->options_json ? tc->options_json : "{}"}};
    int rc = 0;
    for (int i = 0; i < 2 && !rc; i++) {
        float *host = download(s, buffers[i], s->total);
        char *path = xasprintf("%s/%s", tc->out_dir, names[i]);
        if (!all_finite(host, s->total))
            rc = fail_at(err, err_size, path, "non-finite values in the weights; not written");
        else
            rc = weights_save(path, &s->m.cfg, &s->m.table, host, meta, 2, err, err_size);
        free(path);
        free(host);
    }
    return shared_outcome(s->dist, rc);
}
