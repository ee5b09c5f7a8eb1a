// bench/train_step.c: wall time of dydit's CPU training step (noise, forward, loss, backward,
// global grad norm, AdamW, EMA) for a model preset, batch and thread count. Prints one JSON line.
// Usage: train_step MODEL INPUT_SIZE BATCH STEPS [WARMUP]
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "kernels/philox.h"
#include "model/init.h"
#include "model/objective.h"
#include "optim/optimizer.h"

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 5) die("usage: train_step MODEL INPUT_SIZE BATCH STEPS [WARMUP]");
    DitConfig cfg = dit_config_default();
    if (dit_config_apply_preset(&cfg, argv[1])) die("unknown model %s", argv[1]);
    cfg.input_size = atoi(argv[2]);
    int B = atoi(argv[3]), steps = atoi(argv[4]), warmup = argc > 5 ? atoi(argv[5]) : 2;
    const Ops *ops = &ops_cpu;

    DitModel m;
    dit_model_create(&m, &cfg, ops);
    dit_model_plan(&m, B);
    size_t total = m.table.total, first = m.table.trainable_begin, trainable = total - first;
    float *host = xmalloc(total * sizeof(float));
    dit_init_host(&cfg, &m.table, host, 0);
    ops->upload(m.params, host, total * sizeof(float));
    free(host);
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

    double *times = xmalloc((size_t)steps * sizeof(double));
    for (int s = -warmup; s < steps; s++) {
        double start = now_seconds();
        uint32_t step = (uint32_t)(s + warmup);
        diffusion_sample_timesteps(t, B, sched.T, 0, step, step * (uint32_t)B);
        for (int b = 0; b < B; b++) y[b] = (int32_t)((step * B + b) % cfg.num_classes);
        ops->randn(obj.noise, 0, RNG_NOISE, step, step * (uint32_t)B, B, obj.sample_numel);
        ops->zero(m.grads, total * sizeof(float));
        objective_run(&obj, &m, &sched, t, y, B, 1.0f / B, NULL);
        double norm = optim_grad_norm(&opt, m.grads + first, trainable);
        optim_step(&opt, step, norm, m.params + first, m.grads + first, am, av, trainable);
        optim_ema_update(&opt, ema + first, m.params + first, trainable);
        ops->synchronize();
        if (s >= 0) times[s] = now_seconds() - start;
    }
    qsort(times, (size_t)steps, sizeof(double), compare_doubles);
    double median = times[steps / 2];
    printf("{\"impl\":\"dydit\",\"model\":\"%s\",\"input_size\":%d,\"batch\":%d,\"threads\":%d,\"steps\":%d,"
           "\"median_step_s\":%.6f,\"images_per_s\":%.3f}\n",
           dit_config_preset_name(&cfg), cfg.input_size, B, omp_get_max_threads(), steps, median, B / median);
    return 0;
}
