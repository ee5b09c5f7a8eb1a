// bench/gpu_train_step.c: images/s and MFU of dydit's training step on the GPU (noise, forward,
// loss, backward, global grad norm, AdamW, EMA; bf16 dense products, fp32 storage) on random
// latents: a DiT, or with --dynamic a DyDiT stage-1 step (router noise, dynamic and complete path,
// FLOPs loss towards --lambda). The DyDiT's routers start from a keep pattern (half the heads,
// every channel group, half the tokens of a calibration batch: a ratio near 0.5, where a lambda 0.5
// fine-tune settles); masks only switch work off in the sampler, so the step's time does not
// depend on them. Prints one JSON line (or one saying why it was skipped: not enough GPU memory).
//
// MFU = images/s * FLOPs per image / peak, FLOPs per image = 3 (forward + backward) x 2 x forward
// MACs of the analytic count (model/flops.h): "static" counts the DiT's MACs, "realised" the MACs
// left by the realised FLOPs ratio, "executed" what a step really computes (DyDiT stage 1: the
// masked dynamic path densely, routers included, plus the complete path).
//
// Usage: gpu_train_step [--device cuda|cpu] [--dynamic] [--lambda F] [--peak-tflops X]
//                       MODEL INPUT_SIZE BATCH STEPS [WARMUP]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/gpu_bench.h"
#include "model/flops.h"
#include "model/objective.h"
#include "optim/optimizer.h"

#ifdef DYDIT_CUDA
#include <cuda_runtime.h>
#endif

typedef struct {
    const char *device;
    int dynamic;
    double lambda, peak_tflops;
    const char *model;
    int input_size, batch, steps, warmup;
} Args;

static Args parse_args(int argc, char **argv) {
    Args a = {.device = "cuda", .lambda = 0.5, .warmup = 3};
    const char *usage = "usage: gpu_train_step [--device cuda|cpu] [--dynamic] [--lambda F] [--peak-tflops X] "
                        "MODEL INPUT_SIZE BATCH STEPS [WARMUP]";
    int i = 1;
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--dynamic") == 0)
            a.dynamic = 1;
        else if (i + 1 < argc && strcmp(argv[i], "--device") == 0)
            a.device = argv[++i];
        else if (i + 1 < argc && strcmp(argv[i], "--lambda") == 0)
            a.lambda = atof(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--peak-tflops") == 0)
            a.peak_tflops = atof(argv[++i]);
        else
            die("%s", usage);
    }
    if (argc - i < 4 || argc - i > 5) die("%s", usage);
    a.model = argv[i];
    a.input_size = atoi(argv[i + 1]);
    a.batch = atoi(argv[i + 2]);
    a.steps = atoi(argv[i + 3]);
    if (argc - i == 5) a.warmup = atoi(argv[i + 4]);
    if (a.batch < 1 || a.steps < 1 || a.warmup < 0) die("%s", usage);
    return a;
}

// Bytes the step holds on the backend: parameters, gradients, EMA, two AdamW moments, activations.
static double step_bytes(const DitConfig *cfg, int B) {
    return 4.0 * (5.0 * (double)dit_param_count(cfg)) + (double)dit_activation_bytes(cfg, B) +
           4.0 * 3.0 * B * cfg->in_channels * cfg->input_size * cfg->input_size;
}

// 1 when the GPU has room for the step (always on the CPU); prints the skip line otherwise.
static int fits(const Args *a, const DitConfig *cfg) {
#ifdef DYDIT_CUDA
    if (strcmp(a->device, "cuda") == 0) {
        size_t free_bytes = 0, total_bytes = 0;
        if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) die("cudaMemGetInfo failed");
        double need = step_bytes(cfg, a->batch);
        if (need > 0.95 * (double)free_bytes) {
            printf(
                "{\"bench\":\"train\",\"impl\":\"dydit\",\"model\":\"%s%s\",\"batch\":%d,\"skipped\":\"needs %.1f GiB, "
                "%.1f GiB free\"}\n",
                a->dynamic ? "Dy" : "", a->model, a->batch, need / (1 << 30), free_bytes / (double)(1 << 30));
            return 0;
        }
    }
#endif
    return 1;
}

static double mfu(double images_per_s, double flops_per_image, double peak_tflops) {
    return peak_tflops > 0 ? images_per_s * flops_per_image / (peak_tflops * 1e12) : -1;
}

static void print_mfu(const char *key, double value) {
    if (value < 0)
        printf(",\"%s\":null", key);
    else
        printf(",\"%s\":%.4f", key, value);
}

int main(int argc, char **argv) {
    Args a = parse_args(argc, argv);
    DitConfig cfg = dit_config_default();
    if (dit_config_apply_preset(&cfg, a.model)) die("unknown model %s", a.model);
    cfg.input_size = a.input_size;
    cfg.dynamic = a.dynamic;
    char why[256];
    if (dit_config_validate(&cfg, why, sizeof(why))) die("%s", why);
    const Ops *ops = bench_backend(a.device);
    if (!fits(&a, &cfg)) return 0;
    int B = a.batch, L = cfg.depth, H = cfg.heads, T = dit_tokens(&cfg);

    DitModel m;
    dit_model_create(&m, &cfg, ops);
    bench_init_weights(&m);
    if (a.dynamic) {
        bench_set_width_pattern(&m, 0.5, 1.0);
        bench_set_token_keep(&m, 0.5);
    }
    dit_model_plan(&m, B);
    size_t total = m.table.total, first = m.table.trainable_begin, trainable = total - first;
    float *ema = ops->alloc(total * sizeof(float)), *am = ops->alloc(trainable * sizeof(float)),
          *av = ops->alloc(trainable * sizeof(float));
    ops->copy(ema, m.params, total * sizeof(float));
    Optimizer opt;
    OptimConfig oc = optim_config_default();
    optim_init(&opt, ops, &oc);
    Objective obj;
    objective_create(&obj, ops, &cfg, B);
    DiffusionSchedule sched = diffusion_schedule_linear(1000);
    int32_t *t = xmalloc((size_t)B * sizeof(int32_t)), *y = xmalloc((size_t)B * sizeof(int32_t));
    ops->randn(obj.x0, 1, RNG_DATA, 0, 0, B, obj.sample_numel);
    DynamicTerms dyn = {.stage = 1, .target = (float)a.lambda, .flops_weight = 2.0f, .tau = 5.0f, .noisy = 1};

    double *times = xmalloc((size_t)a.steps * sizeof(double)), ratio = 0;
    for (int s = -a.warmup; s < a.steps; s++) {
        ops->synchronize();
        double start = now_seconds();
        uint32_t step = (uint32_t)(s + a.warmup), sample0 = step * (uint32_t)B;
        diffusion_sample_timesteps(t, B, sched.T, 0, step, sample0);
        for (int b = 0; b < B; b++) y[b] = (int32_t)((sample0 + (uint32_t)b) % (uint32_t)cfg.num_classes);
        ops->randn(obj.noise, 0, RNG_NOISE, step, sample0, B, obj.sample_numel);
        if (a.dynamic) {
            ops->rand_logistic(m.act.noise_attn, 0, RNG_GUMBEL_ATTN, step, sample0, B, (size_t)L * (H - 1));
            ops->rand_logistic(m.act.noise_mlp, 0, RNG_GUMBEL_MLP, step, sample0, B, (size_t)L * (H - 1));
            ops->rand_logistic(m.act.noise_token, 0, RNG_GUMBEL_TOKEN, step, sample0, B, (size_t)L * T);
        }
        ops->zero(m.grads, total * sizeof(float));
        LossTerms terms = objective_run(&obj, &m, &sched, t, y, B, 1.0f / B, a.dynamic ? &dyn : NULL);
        double norm = optim_grad_norm(&opt, m.grads + first, trainable);
        optim_step(&opt, step, norm, m.params + first, m.grads + first, am, av, trainable);
        optim_ema_update(&opt, ema + first, m.params + first, trainable);
        ops->synchronize();
        if (s < 0) continue;
        times[s] = now_seconds() - start;
        ratio += terms.flops_ratio / a.steps;
    }
    double median = bench_median(times, a.steps), images_per_s = B / median;

    BlockMacs bm = dit_block_macs(&cfg);
    double macs = dit_forward_macs(&cfg), realised = macs, executed = macs;
    if (a.dynamic) {
        realised = macs - L * (bm.attention + bm.mlp) * (1.0 - ratio);
        executed = 2.0 * macs + dydit_router_macs(&cfg); // stage 1: masked dynamic path + complete path
    }
    printf("{\"bench\":\"train\",\"impl\":\"dydit\",\"device\":\"%s\",\"model\":\"%s%s\",\"input_size\":%d,"
           "\"batch\":%d,\"steps\":%d,\"warmup\":%d,\"median_step_s\":%.5f,\"images_per_s\":%.3f,"
           "\"gmacs_forward\":%.2f",
           ops->name, a.dynamic ? "Dy" : "", dit_config_preset_name(&cfg), cfg.input_size, B, a.steps, a.warmup, median,
           images_per_s, macs / 1e9);
    if (a.dynamic)
        printf(",\"stage\":1,\"lambda\":%.3g,\"flops_ratio\":%.4f,\"gmacs_forward_realised\":%.2f", a.lambda, ratio,
               realised / 1e9);
    if (a.peak_tflops > 0) printf(",\"peak_tflops\":%.1f", a.peak_tflops);
    print_mfu("mfu_static", mfu(images_per_s, 6.0 * macs, a.peak_tflops));
    if (a.dynamic) {
        print_mfu("mfu_realised", mfu(images_per_s, 6.0 * realised, a.peak_tflops));
        print_mfu("mfu_executed", mfu(images_per_s, 6.0 * executed, a.peak_tflops));
    }
    printf("}\n");

    free(times);
    free(t);
    free(y);
    objective_destroy(&obj);
    ops->release(ema);
    ops->release(am);
    ops->release(av);
    dit_model_destroy(&m);
    return 0;
}
