// bench/gpu_bench.h: what the GPU benchmark programs share: the backend (the CUDA backend in bf16,
// or the CPU one to check a program without a GPU at a toy size), medians, and models with random
// weights that make every block matter, a DyDiT's routers set to reproduce a keep pattern instead of
// being trained.
#pragma once
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/cuda/cuda_ops.h"
#include "kernels/philox.h"
#include "model/dit.h"
#include "model/init.h"

// "cuda": device 0 with bf16 dense products (the training default); "cpu": the fp32 reference.
static inline const Ops *bench_backend(const char *device) {
    if (strcmp(device, "cpu") == 0) return &ops_cpu;
    if (strcmp(device, "cuda") != 0) die("unknown device '%s' (want cuda or cpu)", device);
    char err[256];
    if (cuda_init(0, err, sizeof(err))) die("%s", err);
    cuda_set_precision(CUDA_PRECISION_BF16);
    return &ops_cuda;
}

static int bench_compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Median of n values (sorts them).
static inline double bench_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof(double), bench_compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int bench_compare_floats(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

// DiT's initialisation, uploaded, then N(0, 0.02) adaLN and final-layer weights drawn on the backend
// (DiT zeroes them, which would make every block an identity).
static inline void bench_init_weights(DitModel *m) {
    const Ops *ops = m->ops;
    size_t total = m->table.total;
    float *host = xmalloc(total * sizeof(float));
    dit_init_host(&m->cfg, &m->table, host, 1);
    ops->upload(m->params, host, total * sizeof(float));
    free(host);
    for (int i = 0; i < m->table.count; i++) {
        const TensorInfo *t = &m->table.tensors[i];
        if (!strstr(t->name, "adaLN") && !strstr(t->name, "final_layer")) continue;
        ops->randn(m->params + t->offset, 7, RNG_INIT, 1, (uint32_t)i, 1, t->numel);
        ops->scale(m->params + t->offset, 0.02f, t->numel);
    }
}

// A DyDiT's width routers keep the first round(heads * H) heads and round(groups * H) channel
// groups of every block at every timestep: zero weights, biases +-8.
static inline void bench_set_width_pattern(DitModel *m, double heads, double groups) {
    const DitConfig *c = &m->cfg;
    if (!c->dynamic) die("internal: a keep pattern needs a DyDiT");
    int L = c->depth, H = c->heads, keep_heads = (int)lround(heads * H), keep_groups = (int)lround(groups * H);
    size_t weights = (size_t)L * (H - 1) * c->hidden, biases = (size_t)L * (H - 1);
    float *zero = xcalloc(weights, sizeof(float)), *head_b = xmalloc(biases * sizeof(float)),
          *group_b = xmalloc(biases * sizeof(float));
    for (int l = 0; l < L; l++)
        for (int j = 0; j < H - 1; j++) { // routed unit j is unit j + 1
            head_b[l * (H - 1) + j] = j + 1 < keep_heads ? 8.0f : -8.0f;
            group_b[l * (H - 1) + j] = j + 1 < keep_groups ? 8.0f : -8.0f;
        }
    m->ops->upload(m->w.attn_router_w, zero, weights * sizeof(float));
    m->ops->upload(m->w.mlp_router_w, zero, weights * sizeof(float));
    m->ops->upload(m->w.attn_router_b, head_b, biases * sizeof(float));
    m->ops->upload(m->w.mlp_router_b, group_b, biases * sizeof(float));
    free(zero);
    free(head_b);
    free(group_b);
}

// A DyDiT's token routers keep about a `tokens` share of the tokens: each block's output bias is set
// to the quantile of its logits that keeps that share of a calibration batch (4 random latents at 4
// timesteps), block after block so that each sees the already calibrated blocks before it. Replans
// the model for 4 samples.
static inline void bench_set_token_keep(DitModel *m, double tokens) {
    const DitConfig *c = &m->cfg;
    const Ops *ops = m->ops;
    if (!c->dynamic) die("internal: a keep pattern needs a DyDiT");
    int L = c->depth, T = dit_tokens(c), B = 4;
    float *bias = xmalloc((size_t)L * sizeof(float)), *logits = xmalloc(sizeof(float) * (size_t)B * T);
    for (int l = 0; l < L; l++) bias[l] = 1e4f; // keep everything while calibrating
    ops->upload(m->w.token_fc2_b, bias, (size_t)L * sizeof(float));
    dit_model_plan(m, B);
    ops->randn(m->act.x, 99, RNG_DATA, 0, 0, B, (size_t)c->in_channels * c->input_size * c->input_size);
    const float t[4] = {100, 400, 700, 950};
    const int32_t y[4] = {0, 1, 2, 3};
    DitRouting eval = dit_routing_eval();
    for (int l = 0; l < L; l++) {
        dit_forward(m, t, y, B, &eval);
        ops->download(logits, m->act.token_logits + (size_t)l * B * T, sizeof(float) * (size_t)B * T);
        for (int i = 0; i < B * T; i++) logits[i] -= 1e4f;
        qsort(logits, (size_t)B * T, sizeof(float), bench_compare_floats);
        bias[l] = -logits[(int)lround((1.0 - tokens) * (B * T - 1))];
        ops->upload(m->w.token_fc2_b + l, &bias[l], sizeof(float));
    }
    free(logits);
    free(bias);
}
