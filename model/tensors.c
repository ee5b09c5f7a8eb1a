#include "model/tensors.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

static void table_add(TensorTable *t, const char *name, int trainable, int ndim, const int64_t *shape) {
    if (t->count == t->capacity) {
        t->capacity = t->capacity ? 2 * t->capacity : 64;
        t->tensors = xrealloc(t->tensors, (size_t)t->capacity * sizeof(TensorInfo));
    }
    TensorInfo *e = &t->tensors[t->count++];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->ndim = ndim;
    e->numel = 1;
    for (int i = 0; i < ndim; i++) {
        e->shape[i] = shape[i];
        e->numel *= (size_t)shape[i];
    }
    e->offset = t->total;
    e->trainable = trainable;
    t->total += e->numel;
}

#define SHAPE(...) ((const int64_t[]){__VA_ARGS__}), (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))

static void add(TensorTable *t, const char *name, int trainable, const int64_t *shape, int ndim) {
    table_add(t, name, trainable, ndim, shape);
}

// One tensor kind for every block: blocks.{l}.<suffix>.
static void add_stacked(TensorTable *t, int depth, const char *suffix, const int64_t *shape, int ndim) {
    char name[TENSOR_NAME_MAX];
    for (int l = 0; l < depth; l++) {
        snprintf(name, sizeof(name), "blocks.%d.%s", l, suffix);
        table_add(t, name, 1, ndim, shape);
    }
}

TensorTable tensor_table_build(const DitConfig *c) {
    TensorTable t = {0};
    const int64_t D = c->hidden, L = c->depth, M = dit_mlp_hidden(c), T = dit_tokens(c);
    add(&t, "pos_embed", 0, SHAPE(1, T, D));
    t.trainable_begin = t.total;
    add(&t, "x_embedder.proj.weight", 1, SHAPE(D, c->in_channels, c->patch, c->patch));
    add(&t, "x_embedder.proj.bias", 1, SHAPE(D));
    add(&t, "t_embedder.mlp.0.weight", 1, SHAPE(D, c->frequency_size));
    add(&t, "t_embedder.mlp.0.bias", 1, SHAPE(D));
    add(&t, "t_embedder.mlp.2.weight", 1, SHAPE(D, D));
    add(&t, "t_embedder.mlp.2.bias", 1, SHAPE(D));
    add(&t, "y_embedder.embedding_table.weight", 1, SHAPE(dit_label_rows(c), D));
    add_stacked(&t, (int)L, "attn.qkv.weight", SHAPE(3 * D, D));
    add_stacked(&t, (int)L, "attn.qkv.bias", SHAPE(3 * D));
    add_stacked(&t, (int)L, "attn.proj.weight", SHAPE(D, D));
    add_stacked(&t, (int)L, "attn.proj.bias", SHAPE(D));
    add_stacked(&t, (int)L, "mlp.fc1.weight", SHAPE(M, D));
    add_stacked(&t, (int)L, "mlp.fc1.bias", SHAPE(M));
    add_stacked(&t, (int)L, "mlp.fc2.weight", SHAPE(D, M));
    add_stacked(&t, (int)L, "mlp.fc2.bias", SHAPE(D));
    add_stacked(&t, (int)L, "adaLN_modulation.1.weight", SHAPE(6 * D, D));
    add(&t, "final_layer.adaLN_modulation.1.weight", 1, SHAPE(2 * D, D));
    add_stacked(&t, (int)L, "adaLN_modulation.1.bias", SHAPE(6 * D));
    add(&t, "final_layer.adaLN_modulation.1.bias", 1, SHAPE(2 * D));
    add(&t, "final_layer.linear.weight", 1, SHAPE(dit_patch_out(c), D));
    add(&t, "final_layer.linear.bias", 1, SHAPE(dit_patch_out(c)));
    if (c->dynamic) {
        // Each router kind stacked over layers, so one GEMM evaluates every block's router of a kind.
        const int64_t H = c->heads, R = dit_token_router_hidden(c);
        add_stacked(&t, (int)L, "attn_rate.router.weight", SHAPE(H - 1, D));
        add_stacked(&t, (int)L, "attn_rate.router.bias", SHAPE(H - 1));
        add_stacked(&t, (int)L, "mlp_rate.router.weight", SHAPE(H - 1, D));
        add_stacked(&t, (int)L, "mlp_rate.router.bias", SHAPE(H - 1));
        add_stacked(&t, (int)L, "token_selection.mlp_head.0.weight", SHAPE(R, D));
        add_stacked(&t, (int)L, "token_selection.mlp_head.0.bias", SHAPE(R));
        add_stacked(&t, (int)L, "token_selection.mlp_head.2.weight", SHAPE(1, R));
        add_stacked(&t, (int)L, "token_selection.mlp_head.2.bias", SHAPE(1));
    }
    return t;
}

void tensor_table_free(TensorTable *table) {
    free(table->tensors);
    memset(table, 0, sizeof(*table));
}

const TensorInfo *tensor_table_find(const TensorTable *table, const char *name) {
    for (int i = 0; i < table->count; i++)
        if (strcmp(table->tensors[i].name, name) == 0) return &table->tensors[i];
    return NULL;
}

void tensor_shape_string(const TensorInfo *t, char *out, int size) {
    int n = snprintf(out, (size_t)size, "[");
    for (int i = 0; i < t->ndim && n < size; i++)
        n += snprintf(out + n, (size_t)(size - n), "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (n < size) snprintf(out + n, (size_t)(size - n), "]");
}

static float *at(const TensorTable *table, float *base, const char *name) {
    const TensorInfo *t = tensor_table_find(table, name);
    if (!t) die("internal: tensor table has no '%s'", name);
    return base + t->offset;
}

DitWeights dit_weights_bind(const TensorTable *table, float *base) {
    DitWeights w = {
        .pos_embed = at(table, base, "pos_embed"),
        .x_embed_w = at(table, base, "x_embedder.proj.weight"),
        .x_embed_b = at(table, base, "x_embedder.proj.bias"),
        .t_fc1_w = at(table, base, "t_embedder.mlp.0.weight"),
        .t_fc1_b = at(table, base, "t_embedder.mlp.0.bias"),
        .t_fc2_w = at(table, base, "t_embedder.mlp.2.weight"),
        .t_fc2_b = at(table, base, "t_embedder.mlp.2.bias"),
        .y_table = at(table, base, "y_embedder.embedding_table.weight"),
        .qkv_w = at(table, base, "blocks.0.attn.qkv.weight"),
        .qkv_b = at(table, base, "blocks.0.attn.qkv.bias"),
        .proj_w = at(table, base, "blocks.0.attn.proj.weight"),
        .proj_b = at(table, base, "blocks.0.attn.proj.bias"),
        .fc1_w = at(table, base, "blocks.0.mlp.fc1.weight"),
        .fc1_b = at(table, base, "blocks.0.mlp.fc1.bias"),
        .fc2_w = at(table, base, "blocks.0.mlp.fc2.weight"),
        .fc2_b = at(table, base, "blocks.0.mlp.fc2.bias"),
        .ada_w = at(table, base, "blocks.0.adaLN_modulation.1.weight"),
        .ada_b = at(table, base, "blocks.0.adaLN_modulation.1.bias"),
        .final_w = at(table, base, "final_layer.linear.weight"),
        .final_b = at(table, base, "final_layer.linear.bias"),
    };
    if (tensor_table_find(table, "blocks.0.attn_rate.router.weight")) {
        w.attn_router_w = at(table, base, "blocks.0.attn_rate.router.weight");
        w.attn_router_b = at(table, base, "blocks.0.attn_rate.router.bias");
        w.mlp_router_w = at(table, base, "blocks.0.mlp_rate.router.weight");
        w.mlp_router_b = at(table, base, "blocks.0.mlp_rate.router.bias");
        w.token_fc1_w = at(table, base, "blocks.0.token_selection.mlp_head.0.weight");
        w.token_fc1_b = at(table, base, "blocks.0.token_selection.mlp_head.0.bias");
        w.token_fc2_w = at(table, base, "blocks.0.token_selection.mlp_head.2.weight");
        w.token_fc2_b = at(table, base, "blocks.0.token_selection.mlp_head.2.bias");
    }
    return w;
}
