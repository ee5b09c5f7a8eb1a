#include "train/trainer.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "kernels/philox.h"
#include "model/diffusion.h"
#include "model/objective.h"
#include "model/router_calibration.h"
#include "train/batch.h"
#include "train/run_lock.h"
#include "train/stop_request.h"
#include "train/train_state.h"

double dydit_target_at(const DyditTraining *d, long step) {
    long hold = d->lambda_hold;
    if (hold < 0) { // the official schedule: a ramp from step 0, overridden by 1 below step 100
        if (step < 100) return 1.0;
        hold = 0;
    }
    if (step < hold) return 1.0;
    if (d->lambda_warmup > 0 && step - hold <= d->lambda_warmup)
        return 1.0 - (1.0 - d->lambda) * (double)(step - hold) / (double)d->lambda_warmup;
    return d->lambda;
}

double dydit_tau_at(const DyditTraining *d, long step, long steps) {
    if (steps <= 1 || d->tau_end == d->tau) return d->tau;
    return d->tau + (d->tau_end - d->tau) * (double)step / (double)(steps - 1);
}

// How this rank takes part in every step.
typedef struct {
    int global; // B: samples per step over all ranks
    int local;  // B / world: this rank's slice
    int first;  // rank * local: the slice's first position in the step's batch
    int micro;  // samples per forward/backward pass
    int passes; // local / micro
} BatchSplit;

static BatchSplit split_batch(const TrainConfig *tc, const Dist *d) {
    if (tc->batch < 1 || tc->steps < 1) die("--batch and --steps must be at least 1");
    if (tc->batch % d->world)
        die("the global batch (%d) must be a multiple of the number of ranks (%d)", tc->batch, d->world);
    BatchSplit b = {.global = tc->batch, .local = tc->batch / d->world};
    b.first = d->rank * b.local;
    b.micro = tc->micro_batch > 0 ? tc->micro_batch : b.local;
    if (b.local % b.micro)
        die("the micro-batch (%d) must divide each rank's share of the global batch (%d / %d ranks = %d)", b.micro,
            tc->batch, d->world, b.local);
    b.passes = b.local / b.micro;
    if (tc->stratified && tc->batch % 4) die("stratified timesteps need a batch divisible by 4 (got %d)", tc->batch);
    if (tc->model.dynamic && tc->dydit.flops_group_size > 0 && tc->batch % tc->dydit.flops_group_size)
        die("the batch (%d) must be a multiple of the FLOPs group size (%d)", tc->batch, tc->dydit.flops_group_size);
    return b;
}

static DataSource *open_data(const TrainConfig *tc, const Dist *d) {
    if (!tc->data == !tc->data_dir) die("internal: exactly one data source");
    char err[1024];
    DataSource *ds = tc->data
                         ? data_source_memory(tc->data, tc->seed)
                         : data_source_shards(tc->data_dir, tc->batch, d->rank, d->world, tc->seed, err, sizeof(err));
    if (!ds) die("%s", err);
    DataShape shape = data_source_shape(ds);
    const DitConfig *c = &tc->model;
    if (shape.channels != c->in_channels || shape.height != c->input_size || shape.width != c->input_size)
        die("the data holds %dx%dx%d latents but the model takes %dx%dx%d (C x H x W)", shape.channels, shape.height,
            shape.width, c->in_channels, c->input_size, c->input_size);
    if (shape.num_classes > c->num_classes)
        die("the data has %d classes but the model only %d (--num-classes)", shape.num_classes, c->num_classes);
    return ds;
}

// Everything the passes of one step share.
typedef struct {
    const TrainConfig *tc;
    Dist *dist;
    BatchSplit split;
    TrainState *state;
    Objective *obj;
    const DiffusionSchedule *sched;
    const HostBatch *hb; // this rank's slice of the step
} Step;

// Uploads pass k's latents and draws its diffusion and router noise by global sample index.
static void load_pass(const Step *st, long step, int k) {
    const Ops *ops = st->obj->ops;
    const TrainConfig *tc = st->tc;
    DitModel *m = &st->state->m;
    int n = st->split.micro, L = tc->model.depth, H = tc->model.heads, T = dit_tokens(&tc->model);
    size_t numel = st->obj->sample_numel, offset = (size_t)k * (size_t)n;
    uint32_t first = (uint32_t)((uint64_t)step * (uint64_t)st->split.global + (uint64_t)st->split.first + offset);
    ops->upload(st->obj->x0, st->hb->x0 + offset * numel, (size_t)n * numel * sizeof(float));
    ops->randn(st->obj->noise, tc->seed, RNG_NOISE, (uint32_t)step, first, n, numel);
    if (!tc->model.dynamic) return;
    ops->rand_logistic(m->act.noise_attn, tc->seed, RNG_GUMBEL_ATTN, (uint32_t)step, first, n, (size_t)L * (H - 1));
    ops->rand_logistic(m->act.noise_mlp, tc->seed, RNG_GUMBEL_MLP, (uint32_t)step, first, n, (size_t)L * (H - 1));
    ops->rand_logistic(m->act.noise_token, tc->seed, RNG_GUMBEL_TOKEN, (uint32_t)step, first, n, (size_t)L * T);
}

static void allreduce_group_sums(void *dist, double *sums, int count) { dist_allreduce_sum_f64(dist, sums, count); }

// The mean F of every FLOPs group of the step from a forward-only pass over this rank's passes,
// summed over ranks when a group spans them: the backward of the first pass already needs the
// means of groups that later passes complete.
static double *group_means_ahead(const Step *st, long step, const DynamicTerms *dyn) {
    int group = dyn->flops_group_size > 0 ? dyn->flops_group_size : st->split.global;
    int groups = st->split.global / group, n = st->split.micro;
    double *means = xcalloc((size_t)groups, sizeof(double));
    float *ratio = xmalloc((size_t)n * sizeof(float));
    for (int k = 0; k < st->split.passes; k++) {
        int offset = k * n;
        load_pass(st, step, k);
        objective_flops_ratios(st->obj, &st->state->m, st->sched, st->hb->t + offset, st->hb->y + offset, n, dyn,
                               ratio);
        for (int b = 0; b < n; b++) means[(st->split.first + offset + b) / group] += ratio[b];
    }
    if (st->split.local % group) dist_allreduce_sum_f64(st->dist, means, (size_t)groups);
    for (int g = 0; g < groups; g++) means[g] /= group;
    free(ratio);
    return means;
}

// Sums over the step's samples of the logged terms (the FLOPs loss: the sum of the passes' shares).
enum { SUM_MSE, SUM_VB, SUM_COMPLETE_MSE, SUM_COMPLETE_VB, SUM_RATIO, SUM_HEAD, SUM_GROUP, SUM_TOKEN, SUM_FLOPS, SUMS };

// How the passes of a step see the FLOPs groups: a group inside every pass needs nothing; with one
// pass per rank, a group spread over ranks has its sums all-reduced during the pass; with several
// passes, a group spread over them has its mean computed ahead. Returns what the caller frees.
static double *plan_flops_groups(const Step *st, long step, DynamicTerms *dyn) {
    const BatchSplit *sp = &st->split;
    int group = dyn->flops_group_size > 0 ? dyn->flops_group_size : sp->global;
    dyn->groups = (FlopsGroups){.batch = sp->global};
    if (sp->micro % group == 0) return NULL;
    if (sp->passes == 1) {
        dyn->groups.reduce = allreduce_group_sums;
        dyn->groups.reduce_ctx = st->dist;
        return NULL;
    }
    double *means = group_means_ahead(st, step, dyn);
    dyn->groups.group_means = means;
    return means;
}

// The forward and backward passes of one step on this rank, accumulating into m.grads (zeroed
// here) with weight 1 / B per sample; returns the step's terms over all ranks.
static LossTerms run_passes(const Step *st, long step, DynamicTerms *dyn) {
    const BatchSplit *sp = &st->split;
    DitModel *m = &st->state->m;
    double *means = dyn ? plan_flops_groups(st, step, dyn) : NULL;
    m->ops->zero(m->grads, st->state->total * sizeof(float));
    double sums[SUMS] = {0};
    for (int k = 0; k < sp->passes; k++) {
        int offset = k * sp->micro, n = sp->micro;
        load_pass(st, step, k);
        if (dyn) {
            dyn->groups.first = sp->first + offset;
            dyn->y_complete = st->hb->y_complete + offset;
        }
        LossTerms l = objective_run(st->obj, m, st->sched, st->hb->t + offset, st->hb->y + offset, n,
                                    1.0f / (float)sp->global, dyn);
        double means_of_pass[SUM_FLOPS] = {l.mse,         l.vb,        l.complete_mse, l.complete_vb,
                                           l.flops_ratio, l.head_keep, l.group_keep,   l.token_keep};
        for (int i = 0; i < SUM_FLOPS; i++) sums[i] += means_of_pass[i] * n;
        sums[SUM_FLOPS] += l.flops_loss;
    }
    free(means);
    dist_allreduce_sum_f64(st->dist, sums, SUMS);
    double B = sp->global;
    LossTerms t = {.mse = sums[SUM_MSE] / B,
                   .vb = sums[SUM_VB] / B,
                   .complete_mse = sums[SUM_COMPLETE_MSE] / B,
                   .complete_vb = sums[SUM_COMPLETE_VB] / B,
                   .flops_loss = sums[SUM_FLOPS],
                   .flops_ratio = sums[SUM_RATIO] / B,
                   .head_keep = sums[SUM_HEAD] / B,
                   .group_keep = sums[SUM_GROUP] / B,
                   .token_keep = sums[SUM_TOKEN] / B};
    t.loss = t.mse + t.vb + t.complete_mse + t.complete_vb + t.flops_loss;
    return t;
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

// A log that silently loses lines misleads whoever reads it, so a failed write ends the run.
static _Noreturn void die_log_failed(const TrainConfig *tc) {
    die("%s: cannot write the log: %s", tc->log_path ? tc->log_path : "stdout", strerror(errno ? errno : EIO));
}

// The stage a log line belongs to: 0 for a DiT, a DyDiT's fine-tuning stage (1 or 2) otherwise.
static int log_stage(const TrainConfig *tc) { return tc->model.dynamic ? tc->dydit.stage : 0; }

// One JSON line for the step of index `step` (counted from 0). Its "step" is the number of steps
// done, as in the progress lines and the checkpoints' names.
static void log_step(FILE *log, const TrainConfig *tc, long step, const LossTerms *l, const OptimStepInfo *info,
                     double target, double rate, double elapsed) {
    fprintf(log,
            "{\"step\":%ld,\"stage\":%d,\"loss\":%.6g,\"mse\":%.6g,\"vb\":%.6g,\"grad_norm\":%.6g,\"lr\":%.6g,"
            "\"updated\":%d,\"clipped\":%d,\"nonfinite\":%d",
            step + 1, log_stage(tc), l->loss, l->mse, l->vb, info->grad_norm, info->lr, info->updated, info->clipped,
            info->nonfinite);
    if (tc->model.dynamic) {
        fprintf(log,
                ",\"diffusion_loss\":%.6g,\"flops_loss\":%.6g,\"target_ratio\":%.6g,\"flops_ratio\":%.6g,"
                "\"head_keep\":%.4g,\"group_keep\":%.4g,\"token_keep\":%.4g,\"tau\":%.4g",
                l->mse + l->vb, l->flops_loss, target, l->flops_ratio, l->head_keep, l->group_keep, l->token_keep,
                dydit_tau_at(&tc->dydit, step, tc->steps));
        if (tc->dydit.stage == 1) fprintf(log, ",\"complete_loss\":%.6g", l->complete_mse + l->complete_vb);
    }
    fprintf(log, ",\"images_per_s\":%.4g,\"elapsed_s\":%.3f}\n", rate, elapsed);
    if (fflush(log) || ferror(log)) die_log_failed(tc);
}

// How the EMA weights sample after `done` steps, beside the training FLOPs ratio of the last step
// (model/router_calibration.h): deterministic decisions over the same timesteps, labels and noise
// every time, DDPM with the default guidance. Training decides with router noise and the EMA lags
// the routers, so the two differ; dydit calibrate closes the gap.
static void log_ema_probe(FILE *log, const TrainConfig *tc, const TrainState *s, long done, double training_ratio,
                          double target) {
    RatioProbe probe = {.samples = tc->probe_samples,
                        .steps = tc->probe_steps,
                        .cfg_scale = 1.5f,
                        .clip_denoised = sampler_clips_pixels(&s->m.cfg), // as dydit sample does by default
                        .seed = 1234};
    double ratio = dydit_sampling_ratio_of(&s->m, s->ema, &probe);
    fprintf(log,
            "{\"step\":%ld,\"stage\":%d,\"ema_sampling_ratio\":%.6g,\"flops_ratio\":%.6g,\"target_ratio\":%.6g,"
            "\"probe_samples\":%d,\"probe_steps\":%d}\n",
            done, log_stage(tc), ratio, training_ratio, target, tc->probe_samples, tc->probe_steps);
    if (fflush(log) || ferror(log)) die_log_failed(tc);
    if (!tc->quiet)
        fprintf(stderr, "step %ld: the EMA weights sample at a FLOPs ratio of %.4f (training %.4f, target %.4f)\n", done,
                ratio, training_ratio, target);
}

// Opened once the run directory exists and is locked: a run refused earlier truncates nothing.
static FILE *open_log(const TrainConfig *tc) {
    FILE *log = stdout;
    if (tc->log_path && (make_parent_dirs(tc->log_path) || !(log = fopen(tc->log_path, tc->resume ? "a" : "w"))))
        die("%s: cannot open the log: %s", tc->log_path, strerror(errno));
    return log;
}

static void close_log(FILE *log, const TrainConfig *tc) {
    if (fflush(log) || ferror(log) || (log != stdout && fclose(log))) die_log_failed(tc);
}

static void describe_run(const TrainConfig *tc, const TrainState *s, const BatchSplit *sp, const Dist *d) {
    char desc[320];
    dit_config_describe(&tc->model, desc, sizeof(desc));
    fprintf(stderr, "device: %s (%s)\n", s->backend->name, s->backend->precision);
    fprintf(stderr, "model: %s\nparameters: %zu (%zu trainable)\nactivations: %.1f MiB for a pass of %d samples\n",
            desc, s->total, s->trainable, (double)s->m.arena_bytes / (1 << 20), sp->micro);
    if (d->world > 1 || sp->passes > 1)
        fprintf(stderr, "ranks: %d, global batch %d = %d ranks x %d passes x %d samples\n", d->world, sp->global,
                d->world, sp->passes, sp->micro);
    if (tc->zero)
        fprintf(stderr, "ZeRO-1: AdamW moments of %zu of the %zu trainable parameters per rank\n", s->shard.count,
                s->trainable);
    if (s->start_step) fprintf(stderr, "resuming at step %ld\n", s->start_step);
}

// The first reason in why[] that arrived on some rank (the last one when none did).
static StopReason first_reason(const double why[STOP_REASONS]) {
    int r = 0;
    while (r < STOP_REASONS - 1 && !(why[r] > 0)) r++;
    return (StopReason)r;
}

// Whether any rank was asked to stop (a signal, the time limit): one small all-reduce a step, so
// that every rank stops after the same step whichever ranks the request reached. why[] receives
// the reasons that arrived, counted over the ranks.
static int stop_agreed(Dist *d, double why[STOP_REASONS]) {
    stop_requests(why);
    if (d->world > 1) dist_allreduce_sum_f64(d, why, STOP_REASONS);
    return why[first_reason(why)] > 0;
}

TrainSummary train_run(const TrainConfig *tc) {
    Dist *d = tc->dist ? tc->dist : dist_single();
    BatchSplit split = split_batch(tc, d);
    int lead = d->rank == 0; // the rank that prints, logs and writes
    int lock = lead && tc->out_dir ? run_lock_take(tc->out_dir) : -1;
    DataSource *data = open_data(tc, d);
    TrainState s;
    train_state_create(&s, tc, d, split.micro);
    const Ops *ops = s.m.ops;
    const DitConfig *c = &tc->model;
    if (s.start_step >= tc->steps)
        die("the checkpoint is at step %ld, already at --steps %ld", s.start_step, tc->steps);

    Objective obj;
    objective_create(&obj, ops, c, split.micro);
    DiffusionSchedule sched = diffusion_schedule_linear(1000);
    BatchRecipe recipe = {.seed = tc->seed,
                          .global_batch = split.global,
                          .first = split.first,
                          .count = split.local,
                          .num_classes = c->num_classes,
                          .class_dropout = c->class_dropout,
                          .stratified = tc->stratified,
                          .timesteps = sched.T};
    HostBatch hb;
    host_batch_alloc(&hb, split.local, obj.sample_numel);
    Step st = {.tc = tc, .dist = d, .split = split, .state = &s, .obj = &obj, .sched = &sched, .hb = &hb};
    FILE *log = lead ? open_log(tc) : NULL;
    if (lead && !tc->quiet) describe_run(tc, &s, &split, d);

    TrainSummary sum = {0};
    char err[1024] = "";
    stop_request_install();
    const int B = split.global;
    long run_steps = tc->steps - s.start_step, window = run_steps / 10 > 0 ? run_steps / 10 : 1;
    int probe = c->dynamic && tc->probe_samples > 0;
    double last_ratio = 1.0, last_target = 1.0;
    double start = now_seconds(), why[STOP_REASONS] = {0};
    for (long step = s.start_step; step < tc->steps; step++) {
        long done = step - s.start_step;
        int poison = dist_test_fault(d, step);
        host_batch_fill(&hb, &recipe, data, step);
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
                                 .noisy = 1};
        }
        LossTerms loss = run_passes(&st, step, c->dynamic ? &dyn : NULL);
        if (poison) {
            const float nan = NAN;
            ops->upload(s.m.grads + s.first_trainable, &nan, sizeof(float));
        }
        OptimStepInfo info = train_state_update(&s, step, loss.loss);
        int stopping = step + 1 < tc->steps && stop_agreed(d, why);
        if (lead && info.nonfinite)
            warn("step %ld: non-finite %s; the update was skipped", step + 1,
                 isfinite(loss.loss) ? "gradient norm" : "loss");

        if (done == 0) sum.first_loss = loss.loss;
        sum.last_loss = loss.loss;
        if (done < window) sum.mean_first += loss.loss / window;
        if (step >= tc->steps - window) {
            sum.mean_last += loss.loss / window;
            sum.diffusion_last += (loss.mse + loss.vb) / window;
            sum.flops_ratio_last += loss.flops_ratio / window;
        }
        sum.skipped += !info.updated;

        last_ratio = loss.flops_ratio, last_target = target;
        if (lead && ((step + 1) % tc->log_every == 0 || step == 0 || step == tc->steps - 1 || stopping)) {
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
        if (stopping) {
            sum.stopped_at = step + 1;
            run_steps = step + 1 - s.start_step;
            break;
        }
        if (tc->out_dir && tc->checkpoint_every > 0 && (step + 1) % tc->checkpoint_every == 0 && step + 1 < tc->steps) {
            if (train_state_save_checkpoint(&s, tc, step + 1, err, sizeof(err)) && lead)
                warn("%s; the previous checkpoint is intact and training goes on", err);
            if (lead && probe) log_ema_probe(log, tc, &s, step + 1, last_ratio, last_target);
        }
    }
    if (lead && probe && run_steps > 0) log_ema_probe(log, tc, &s, s.start_step + run_steps, last_ratio, last_target);
    sum.images_per_second = (double)run_steps * B / (now_seconds() - start);
    if (tc->out_dir && sum.stopped_at) {
        if (train_state_save_checkpoint(&s, tc, sum.stopped_at, err, sizeof(err)))
            die("%s", lead ? err : "checkpoint failed on rank 0");
        if (lead)
            fprintf(stderr,
                    "stopped by %s after step %ld/%ld: wrote %s/checkpoints/latest; continue with "
                    "--resume latest\n",
                    stop_reason_name(first_reason(why)), sum.stopped_at, tc->steps, tc->out_dir);
    } else if (tc->out_dir) {
        if (train_state_save_checkpoint(&s, tc, tc->steps, err, sizeof(err)) ||
            train_state_save_weights(&s, tc, tc->steps, err, sizeof(err)))
            die("%s", lead ? err : "checkpoint failed on rank 0");
        if (lead && !tc->quiet)
            fprintf(stderr, "wrote %s/model.safetensors, %s/ema.safetensors and a checkpoint\n", tc->out_dir,
                    tc->out_dir);
    } else if (lead && sum.stopped_at) {
        fprintf(stderr, "stopped by %s after step %ld/%ld (no --out: nothing written)\n",
                stop_reason_name(first_reason(why)), sum.stopped_at, tc->steps);
    }
    if (log) close_log(log, tc);
    dist_barrier(d); // every rank returns once the run's files are complete

    run_lock_release(lock);
    host_batch_free(&hb);
    data_source_close(data);
    diffusion_schedule_free(&sched);
    objective_destroy(&obj);
    train_state_destroy(&s);
    return sum;
}
