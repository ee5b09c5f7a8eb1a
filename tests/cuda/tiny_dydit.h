// tests/cuda/tiny_dydit.h: the small DyDiTs of the GPU model tests and their random weights. The
// same host parameters go to the CPU and the CUDA model.
#pragma once
#include <string.h>

#include "model/dit.h"
#include "model/init.h"
#include "tests/fd.h"

// A DyDiT on 8x8x4 latents, patch 2 (16 tokens), 5 classes and the null class, learned sigma.
static DitConfig tiny_dydit(int depth, int hidden, int heads) {
    DitConfig c = dit_config_default();
    c.depth = depth;
    c.hidden = hidden;
    c.heads = heads;
    c.patch = 2;
    c.in_channels = 4;
    c.input_size = 8;
    c.num_classes = 5;
    c.frequency_size = 64;
    c.dynamic = 1;
    return c;
}

// DiT's initialisation, then every tensor but pos_embed N(0, 0.8 / fan_in) (DiT's zero-initialised
// adaLN and final layers would hide most of the network): width-router biases N(0, 1) spread the
// head and group decisions, and a small token router with a zero output bias puts token logits
// around 0, so that samples keep different tokens.
static float *tiny_dydit_params(const DitConfig *cfg, const TensorTable *table, uint32_t stream) {
    float *host = xmalloc(table->total * sizeof(float));
    dit_init_host(cfg, table, host, 3);
    for (int i = 0; i < table->count; i++) {
        const TensorInfo *t = &table->tensors[i];
        if (!strcmp(t->name, "pos_embed")) continue;
        double fan_in = t->ndim > 1 ? (double)t->numel / t->shape[0] : 4.0;
        float sd = (float)(0.8 / sqrt(fan_in));
        if (strstr(t->name, "_rate.router.bias")) sd = 1.0f;
        if (strstr(t->name, "token_selection")) sd = strstr(t->name, "mlp_head.2.bias") ? 0.0f : sd * 0.5f;
        fill_normal(host + t->offset, t->numel, sd, stream + (uint32_t)i);
    }
    return host;
}

static __attribute__((unused)) float *tensor_at(const TensorTable *table, float *host, const char *name) {
    const TensorInfo *t = tensor_table_find(table, name);
    if (!t) die("internal: no tensor %s", name);
    return host + t->offset;
}

// Router biases of +-100 that fix every decision whatever the rounding of the logits: each head and
// channel group on or off at random (head and group 0 are always on), each block keeping all its
// tokens or none, alternately. For the bf16 checks, whose logits move by ~1e-2.
static __attribute__((unused)) void force_decisions(const DitConfig *cfg, const TensorTable *table, float *host) {
    int L = cfg->depth, H = cfg->heads;
    float *attn = tensor_at(table, host, "blocks.0.attn_rate.router.bias");
    float *mlp = tensor_at(table, host, "blocks.0.mlp_rate.router.bias");
    float *token = tensor_at(table, host, "blocks.0.token_selection.mlp_head.2.bias");
    for (int i = 0; i < L * (H - 1); i++) {
        attn[i] = rng_u32(11, RNG_DATA, 0, 0, i) & 1 ? 100.0f : -100.0f;
        mlp[i] = rng_u32(11, RNG_DATA, 0, 1, i) & 1 ? 100.0f : -100.0f;
    }
    for (int l = 0; l < L; l++) token[l] = l % 2 ? -100.0f : 100.0f;
}
