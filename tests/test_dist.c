// tests/test_dist.c: the pieces of data parallelism that one process can check exactly.
//  - dist_shard cuts any length into contiguous shards that cover it once, for any world size;
//  - the single-process communicator is the identity;
//  - DyDiT's FLOPs loss split over calls (as ranks and micro-batches split a step) gives the
//    gradients and the loss of one call over the whole batch, for groups inside each call, groups
//    whose means are computed ahead (objective_flops_ratios), and groups completed by a reduction
//    during the call (the all-reduce, played here by adding the other calls' sums).
// The multi-process runs themselves are tests/dist.sh.
#include <string.h>

#include "common/util.h"
#include "kernels/philox.h"
#include "model/init.h"
#include "model/objective.h"
#include "tests/check.h"
#include "train/dist.h"

enum { B = 8, CALLS = 4, PER_CALL = B / CALLS };

static void check_shards(void) {
    const size_t lengths[] = {0, 1, 5, 7, 12, 1000003};
    const int worlds[] = {1, 2, 3, 4, 8};
    int ok = 1;
    for (size_t i = 0; i < sizeof(lengths) / sizeof(lengths[0]); i++)
        for (size_t j = 0; j < sizeof(worlds) / sizeof(worlds[0]); j++) {
            size_t n = lengths[i], end = 0, per = (n + (size_t)worlds[j] - 1) / (size_t)worlds[j];
            for (int r = 0; r < worlds[j]; r++) {
                DistShard s = dist_shard(n, worlds[j], r);
                ok &= s.offset == end && s.count <= per;
                end = s.offset + s.count;
            }
            ok &= end == n;
        }
    check_true(ok, "dist.shards_cover_each_element_once");
}

static void check_single(void) {
    Dist *d = dist_open(0); // no launcher variables here: one process
    float full[5] = {1, 2, 3, 4, 5}, shard[5] = {0}, back[5] = {0};
    double sums[2] = {0.5, 1.5};
    dist_allreduce_sum_f32(d, full, 5, 2);
    dist_allreduce_sum_f64(d, sums, 2);
    dist_reduce_scatter_sum_f32(d, full, shard, 5);
    dist_gather_f32(d, shard, back, 5, 0);
    dist_allgather_f32(d, back, 5);
    int ok = d->rank == 0 && d->world == 1 && sums[0] == 0.5 && sums[1] == 1.5 && !memcmp(back, full, sizeof(full));
    check_true(ok, "dist.single_process_is_the_identity");
    dist_close(d);
}

// A tiny DyDiT whose routers switch units on and off, with its inputs for one batch of B.
typedef struct {
    DitModel m;
    Objective obj;
    DiffusionSchedule sched;
    float *x0, *noise;
    int32_t t[B], y[B];
} Setup;

static void setup(Setup *s) {
    DitConfig c = dit_config_default();
    c.depth = 2;
    c.hidden = 32;
    c.heads = 4;
    c.patch = 2;
    c.in_channels = 3;
    c.input_size = 8;
    c.num_classes = 5;
    c.dynamic = 1;
    dit_model_create(&s->m, &c, &ops_cpu);
    dit_model_plan(&s->m, B);
    dit_init_host(&c, &s->m.table, s->m.params, 7);
    dydit_set_router_biases(&s->m.table, s->m.params, 0.5f, 0.5f);
    objective_create(&s->obj, &ops_cpu, &c, B);
    s->sched = diffusion_schedule_linear(1000);
    size_t numel = s->obj.sample_numel;
    s->x0 = xmalloc(B * numel * sizeof(float));
    s->noise = xmalloc(B * numel * sizeof(float));
    ops_cpu.randn(s->x0, 1, RNG_DATA, 0, 0, B, numel);
    ops_cpu.randn(s->noise, 1, RNG_NOISE, 0, 0, B, numel);
    for (int b = 0; b < B; b++) {
        s->t[b] = 37 + 131 * b;
        s->y[b] = b % 5;
    }
}

static void teardown(Setup *s) {
    free(s->x0);
    free(s->noise);
    diffusion_schedule_free(&s->sched);
    objective_destroy(&s->obj);
    dit_model_destroy(&s->m);
}

// Inputs and router noise of samples [first, first + n), keyed by sample index like the trainer's.
static void load(Setup *s, int first, int n) {
    const DitConfig *c = &s->m.cfg;
    size_t numel = s->obj.sample_numel;
    int L = c->depth, H = c->heads, T = dit_tokens(c);
    memcpy(s->obj.x0, s->x0 + first * numel, n * numel * sizeof(float));
    memcpy(s->obj.noise, s->noise + first * numel, n * numel * sizeof(float));
    ops_cpu.rand_logistic(s->m.act.noise_attn, 5, RNG_GUMBEL_ATTN, 0, (uint32_t)first, n, (size_t)L * (H - 1));
    ops_cpu.rand_logistic(s->m.act.noise_mlp, 5, RNG_GUMBEL_MLP, 0, (uint32_t)first, n, (size_t)L * (H - 1));
    ops_cpu.rand_logistic(s->m.act.noise_token, 5, RNG_GUMBEL_TOKEN, 0, (uint32_t)first, n, (size_t)L * T);
}

static DynamicTerms terms_of(int group) {
    DynamicTerms d = {
        .stage = 1, .target = 0.6f, .flops_weight = 2.0f, .flops_group_size = group, .tau = 5.0f, .noisy = 1};
    return d;
}

// Gradients (total floats) and FLOPs loss of the whole batch in one call.
static float *whole_batch(Setup *s, int group, double *flops_loss) {
    DynamicTerms d = terms_of(group);
    load(s, 0, B);
    ops_cpu.zero(s->m.grads, s->m.table.total * sizeof(float));
    *flops_loss = objective_run(&s->obj, &s->m, &s->sched, s->t, s->y, B, 1.0f / B, &d).flops_loss;
    float *g = xmalloc(s->m.table.total * sizeof(float));
    memcpy(g, s->m.grads, s->m.table.total * sizeof(float));
    return g;
}

// The reduction of one call during a split step: adds what the other calls' samples contribute.
typedef struct {
    const double *other_sums; // (groups) per-group sums of F over every sample outside the call
} OtherCalls;

static void add_other_calls(void *ctx, double *sums, int count) {
    const OtherCalls *o = ctx;
    for (int g = 0; g < count; g++) sums[g] += o->other_sums[g];
}

typedef enum { AHEAD, REDUCED } SplitKind;

// The same batch in CALLS calls of PER_CALL samples, accumulating gradients; the groups' means
// either computed ahead or completed by the reduction.
static float *split_batch(Setup *s, int group, SplitKind kind, double *flops_loss) {
    int size = group ? group : B;
    float ratio[B];
    for (int c = 0; c < CALLS; c++) {
        DynamicTerms d = terms_of(group);
        load(s, c * PER_CALL, PER_CALL);
        objective_flops_ratios(&s->obj, &s->m, &s->sched, s->t + c * PER_CALL, s->y + c * PER_CALL, PER_CALL, &d,
                               ratio + c * PER_CALL);
    }
    double means[B] = {0};
    for (int b = 0; b < B; b++) means[b / size] += ratio[b] / size;
    ops_cpu.zero(s->m.grads, s->m.table.total * sizeof(float));
    *flops_loss = 0;
    for (int c = 0; c < CALLS; c++) {
        DynamicTerms d = terms_of(group);
        d.groups = (FlopsGroups){.batch = B, .first = c * PER_CALL};
        double other[B] = {0};
        OtherCalls o = {other};
        for (int b = 0; b < B; b++)
            if (b / PER_CALL != c) other[b / size] += ratio[b];
        if (kind == AHEAD) {
            d.groups.group_means = means;
        } else {
            d.groups.reduce = add_other_calls;
            d.groups.reduce_ctx = &o;
        }
        load(s, c * PER_CALL, PER_CALL);
        *flops_loss +=
            objective_run(&s->obj, &s->m, &s->sched, s->t + c * PER_CALL, s->y + c * PER_CALL, PER_CALL, 1.0f / B, &d)
                .flops_loss;
    }
    float *g = xmalloc(s->m.table.total * sizeof(float));
    memcpy(g, s->m.grads, s->m.table.total * sizeof(float));
    return g;
}

static void check_flops_groups(void) {
    Setup s;
    setup(&s);
    const int groups[] = {0, 2, 4};
    const SplitKind kinds[] = {AHEAD, REDUCED};
    for (int i = 0; i < 3; i++) {
        double whole_loss;
        float *whole = whole_batch(&s, groups[i], &whole_loss), ratio[B], lowest = 1;
        ops_cpu.download(ratio, s.m.act.flops_ratio, sizeof(ratio));
        for (int b = 0; b < B; b++) lowest = ratio[b] < lowest ? ratio[b] : lowest;
        if (i == 0) check(lowest < 0.9f, "dist.flops_groups_masks_mixed", "lowest FLOPs ratio %.3f", lowest);
        for (int k = 0; k < 2; k++) {
            double split_loss;
            float *split = split_batch(&s, groups[i], kinds[k], &split_loss);
            double err = rel_error(split, whole, s.m.table.total);
            char name[96];
            snprintf(name, sizeof(name), "dist.flops_groups_split.group%d.%s", groups[i],
                     kinds[k] == AHEAD ? "means_ahead" : "reduced");
            check(err < 1e-6 && fabs(split_loss - whole_loss) < 1e-7 * (1 + whole_loss) && whole_loss > 0, name,
                  "gradients %.2g relative, FLOPs loss %.9g vs %.9g", err, split_loss, whole_loss);
            free(split);
        }
        free(whole);
    }
    teardown(&s);
}

int main(void) {
    check_shards();
    check_single();
    check_flops_groups();
    return check_exit();
}
