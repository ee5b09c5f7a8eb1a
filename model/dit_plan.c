// model/dit_plan.c: a DitModel's memory: parameters and gradients, and one planned allocation for
// the activations and gradient scratch of a batch.
#include <string.h>

#include "common/util.h"
#include "model/dit.h"

void dit_model_create(DitModel *m, const DitConfig *cfg, const Ops *ops) {
    memset(m, 0, sizeof(*m));
    m->cfg = *cfg;
    m->ops = ops;
    m->table = tensor_table_build(cfg);
    m->params = ops->alloc(m->table.total * sizeof(float));
    m->grads = ops->alloc(m->table.total * sizeof(float));
    m->w = dit_weights_bind(&m->table, m->params);
    m->g = dit_weights_bind(&m->table, m->grads);
    m->routing = dit_routing_eval();
}

void dit_model_destroy(DitModel *m) {
    const Ops *ops = m->ops;
    ops->release(m->params);
    ops->release(m->grads);
    ops->release(m->arena);
    tensor_table_free(&m->table);
    memset(m, 0, sizeof(*m));
}

// Hands out 64-byte aligned slices of one allocation; with base == NULL it only measures.
typedef struct {
    char *base;
    size_t used;
} Arena;

static void *carve(Arena *a, size_t bytes) {
    void *p = a->base ? a->base + a->used : NULL;
    a->used += (bytes + 63) & ~(size_t)63;
    return p;
}

static void plan_dynamic(Arena *a, const DitConfig *c, int B, DitActivations *act, DitGradients *g) {
    size_t L = (size_t)c->depth, D = (size_t)c->hidden, T = (size_t)dit_tokens(c), M = (size_t)dit_mlp_hidden(c);
    size_t H = (size_t)c->heads, R = (size_t)dit_token_router_hidden(c), f = sizeof(float), Bz = (size_t)B;
    size_t width = Bz * L * (H - 1) * f, masks = Bz * L * H * f, tokens = Bz * L * T * f;
    act->noise_attn = carve(a, width);
    act->noise_mlp = carve(a, width);
    act->noise_token = carve(a, tokens);
    act->attn_logits = carve(a, width);
    act->attn_soft = carve(a, width);
    act->mlp_logits = carve(a, width);
    act->mlp_soft = carve(a, width);
    act->head_mask = carve(a, masks);
    act->chan_mask = carve(a, masks);
    act->token_hidden = carve(a, L * Bz * T * R * f);
    act->token_act = carve(a, L * Bz * T * R * f);
    act->token_logits = carve(a, tokens);
    act->token_soft = carve(a, tokens);
    act->token_mask = carve(a, tokens);
    act->masked = carve(a, Bz * T * (D > M ? D : M) * f);
    act->flops_ratio = carve(a, Bz * f);
    g->dflops = carve(a, Bz * f);
    g->dhead = carve(a, masks);
    g->dchan = carve(a, masks);
    g->dtoken = carve(a, tokens);
    g->dattn_logits = carve(a, width);
    g->dmlp_logits = carve(a, width);
    g->dtoken_logits = carve(a, Bz * T * f);
    g->dtoken_act = carve(a, Bz * T * R * f);
    g->drouter_in = carve(a, Bz * D * f);
    g->drouter_tmp = carve(a, Bz * D * f);
}

static void plan(Arena *a, const DitConfig *c, int B, DitActivations *act, DitGradients *g) {
    size_t L = (size_t)c->depth, D = (size_t)c->hidden, T = (size_t)dit_tokens(c), M = (size_t)dit_mlp_hidden(c);
    size_t H = (size_t)c->heads, F = (size_t)c->frequency_size, MW = (size_t)dit_mod_width(c);
    size_t img_in = (size_t)B * c->in_channels * c->input_size * c->input_size;
    size_t img_out = (size_t)B * dit_out_channels(c) * c->input_size * c->input_size;
    size_t BT = (size_t)B * T, f = sizeof(float);
    act->x = carve(a, img_in * f);
    act->t = carve(a, (size_t)B * f);
    act->y = carve(a, (size_t)B * sizeof(int32_t));
    act->patches = carve(a, BT * dit_patch_in(c) * f);
    act->t_freq = carve(a, (size_t)B * F * f);
    act->t_hidden = carve(a, B * D * f);
    act->t_act = carve(a, B * D * f);
    act->emb_t = carve(a, B * D * f);
    act->emb_y = carve(a, B * D * f);
    act->c = carve(a, B * D * f);
    act->c_act = carve(a, B * D * f);
    act->mod = carve(a, B * MW * f);
    act->residual = carve(a, (L + 1) * BT * D * f);
    act->mid = carve(a, L * BT * D * f);
    act->ln1_mean = carve(a, L * BT * f);
    act->ln1_rstd = carve(a, L * BT * f);
    act->ln1_out = carve(a, L * BT * D * f);
    act->qkv = carve(a, L * BT * 3 * D * f);
    act->probs = carve(a, L * B * H * T * T * f);
    act->att = carve(a, L * BT * D * f);
    act->att_proj = carve(a, L * BT * D * f);
    act->ln2_mean = carve(a, L * BT * f);
    act->ln2_rstd = carve(a, L * BT * f);
    act->ln2_out = carve(a, L * BT * D * f);
    act->fc1 = carve(a, L * BT * M * f);
    act->gelu = carve(a, L * BT * M * f);
    act->fc2 = carve(a, L * BT * D * f);
    act->lnf_mean = carve(a, BT * f);
    act->lnf_rstd = carve(a, BT * f);
    act->lnf_out = carve(a, BT * D * f);
    act->out_tokens = carve(a, BT * dit_patch_out(c) * f);
    act->out = carve(a, img_out * f);

    g->dout = carve(a, img_out * f);
    g->dout_tokens = carve(a, BT * dit_patch_out(c) * f);
    g->dresidual = carve(a, BT * D * f);
    g->dbranch = carve(a, BT * D * f);
    g->dtmp = carve(a, BT * D * f);
    g->dhidden = carve(a, BT * M * f);
    g->dqkv = carve(a, BT * 3 * D * f);
    g->dprobs = carve(a, B * H * T * T * f);
    g->dmod = carve(a, B * MW * f);
    g->dc_act = carve(a, B * D * f);
    g->dc = carve(a, B * D * f);
    g->dt_act = carve(a, B * D * f);
    g->demb_t = carve(a, B * D * f);
    if (c->dynamic) plan_dynamic(a, c, B, act, g);
}

size_t dit_activation_bytes(const DitConfig *cfg, int batch) {
    Arena a = {0};
    DitActivations act;
    DitGradients g;
    plan(&a, cfg, batch, &act, &g);
    return a.used;
}

void dit_model_plan(DitModel *m, int batch) {
    if (batch < 1) die("batch must be at least 1 (got %d)", batch);
    const Ops *ops = m->ops;
    ops->release(m->arena);
    m->arena_bytes = dit_activation_bytes(&m->cfg, batch);
    m->arena = ops->alloc(m->arena_bytes);
    memset(&m->act, 0, sizeof(m->act));
    memset(&m->grad, 0, sizeof(m->grad));
    Arena a = {.base = m->arena};
    plan(&a, &m->cfg, batch, &m->act, &m->grad);
    m->capacity = batch;
    if (m->cfg.dynamic) {
        // Column 0 of the width masks is never written by the routers: head 0 and group 0 stay on.
        size_t n = (size_t)batch * m->cfg.depth * m->cfg.heads;
        float *ones = xmalloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
        ops->upload(m->act.head_mask, ones, n * sizeof(float));
        ops->upload(m->act.chan_mask, ones, n * sizeof(float));
        free(ones);
    }
}
