// model/dit.c: DiT forward and backward (SPEC 1.3-1.8) as op calls.
#include "model/dit.h"

#include <string.h>

#include "common/util.h"

void dit_model_create(DitModel *m, const DitConfig *cfg, const Ops *ops) {
    memset(m, 0, sizeof(*m));
    m->cfg = *cfg;
    m->ops = ops;
    m->table = tensor_table_build(cfg);
    m->params = ops->alloc(m->table.total * sizeof(float));
    m->grads = ops->alloc(m->table.total * sizeof(float));
    m->w = dit_weights_bind(&m->table, m->params);
    m->g = dit_weights_bind(&m->table, m->grads);
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
    m->ops->release(m->arena);
    m->arena_bytes = dit_activation_bytes(&m->cfg, batch);
    m->arena = m->ops->alloc(m->arena_bytes);
    Arena a = {.base = m->arena};
    plan(&a, &m->cfg, batch, &m->act, &m->grad);
    m->capacity = batch;
}

// Sizes every op call needs, for a call with batch B.
typedef struct {
    int B, T, D, H, hd, M, MW, BT;
    size_t layer_td, layer_tm, layer_bt, layer_probs; // per-block strides in the stacked activations
} Dims;

static Dims dims_of(const DitModel *m, int B) {
    const DitConfig *c = &m->cfg;
    Dims d = {.B = B,
              .T = dit_tokens(c),
              .D = c->hidden,
              .H = c->heads,
              .hd = dit_head_dim(c),
              .M = dit_mlp_hidden(c),
              .MW = dit_mod_width(c)};
    d.BT = B * d.T;
    size_t cap_bt = (size_t)m->capacity * d.T;
    d.layer_td = cap_bt * d.D;
    d.layer_tm = cap_bt * d.M;
    d.layer_bt = cap_bt;
    d.layer_probs = (size_t)m->capacity * d.H * d.T * d.T;
    return d;
}

static void block_forward(DitModel *m, const Dims *d, int l) {
    const Ops *ops = m->ops;
    DitActivations *a = &m->act;
    const DitWeights *w = &m->w;
    size_t D = (size_t)d->D, M = (size_t)d->M;
    const float *mod = a->mod + (size_t)l * 6 * D; // shift, scale, gate (attention) then (MLP)
    float *x = a->residual + l * d->layer_td, *next = x + d->layer_td, *mid = a->mid + l * d->layer_td;
    float *ln1 = a->ln1_out + l * d->layer_td, *qkv = a->qkv + 3 * l * d->layer_td;
    float *att = a->att + l * d->layer_td, *proj = a->att_proj + l * d->layer_td;
    float *ln2 = a->ln2_out + l * d->layer_td, *fc1 = a->fc1 + l * d->layer_tm, *gelu = a->gelu + l * d->layer_tm;
    float *fc2 = a->fc2 + l * d->layer_td;

    ops->layernorm_modulate_forward(ln1, a->ln1_mean + l * d->layer_bt, a->ln1_rstd + l * d->layer_bt, x, mod, mod + D,
                                    d->MW, d->B, d->T, d->D);
    ops->matmul_forward(qkv, ln1, w->qkv_w + l * 3 * D * D, w->qkv_b + l * 3 * D, d->BT, d->D, 3 * d->D);
    ops->attention_forward(att, a->probs + l * d->layer_probs, qkv, d->B, d->T, d->H, d->hd);
    ops->matmul_forward(proj, att, w->proj_w + l * D * D, w->proj_b + l * D, d->BT, d->D, d->D);
    ops->gate_residual_forward(mid, x, mod + 2 * D, proj, d->MW, NULL, d->B, d->T, d->D);

    ops->layernorm_modulate_forward(ln2, a->ln2_mean + l * d->layer_bt, a->ln2_rstd + l * d->layer_bt, mid, mod + 3 * D,
                                    mod + 4 * D, d->MW, d->B, d->T, d->D);
    ops->matmul_forward(fc1, ln2, w->fc1_w + l * M * D, w->fc1_b + l * M, d->BT, d->D, d->M);
    ops->gelu_forward(gelu, fc1, (size_t)d->BT * M);
    ops->matmul_forward(fc2, gelu, w->fc2_w + l * D * M, w->fc2_b + l * D, d->BT, d->M, d->D);
    ops->gate_residual_forward(next, mid, mod + 5 * D, fc2, d->MW, NULL, d->B, d->T, d->D);
}

void dit_forward(DitModel *m, const float *t_host, const int32_t *y_host, int B) {
    if (B > m->capacity) die("internal: batch %d exceeds the planned %d", B, m->capacity);
    const Ops *ops = m->ops;
    const DitConfig *c = &m->cfg;
    DitActivations *a = &m->act;
    const DitWeights *w = &m->w;
    Dims d = dims_of(m, B);
    int S = c->input_size, F = c->frequency_size;

    ops->upload(a->t, t_host, (size_t)B * sizeof(float));
    ops->upload(a->y, y_host, (size_t)B * sizeof(int32_t));

    // tokens: patch embedding plus the fixed position table
    ops->patchify(a->patches, a->x, B, c->in_channels, S, S, c->patch);
    ops->matmul_forward(a->residual, a->patches, w->x_embed_w, w->x_embed_b, d.BT, dit_patch_in(c), d.D);
    ops->add_broadcast(a->residual, w->pos_embed, B, (size_t)d.T * d.D);

    // conditioning c = E_t + E_y, and every block's modulation from SiLU(c) in one GEMM
    ops->timestep_embedding(a->t_freq, a->t, B, F, 10000.0f);
    ops->matmul_forward(a->t_hidden, a->t_freq, w->t_fc1_w, w->t_fc1_b, B, F, d.D);
    ops->silu_forward(a->t_act, a->t_hidden, (size_t)B * d.D);
    ops->matmul_forward(a->emb_t, a->t_act, w->t_fc2_w, w->t_fc2_b, B, d.D, d.D);
    ops->embedding_forward(a->emb_y, w->y_table, a->y, B, d.D);
    ops->add(a->c, a->emb_t, a->emb_y, (size_t)B * d.D);
    ops->silu_forward(a->c_act, a->c, (size_t)B * d.D);
    ops->matmul_forward(a->mod, a->c_act, w->ada_w, w->ada_b, B, d.D, d.MW);

    for (int l = 0; l < c->depth; l++) block_forward(m, &d, l);

    // final layer: modulate(LN(x), shift, scale) -> Linear -> unpatchify
    const float *fmod = a->mod + (size_t)6 * d.D * c->depth;
    const float *xL = a->residual + c->depth * d.layer_td;
    ops->layernorm_modulate_forward(a->lnf_out, a->lnf_mean, a->lnf_rstd, xL, fmod, fmod + d.D, d.MW, B, d.T, d.D);
    ops->matmul_forward(a->out_tokens, a->lnf_out, w->final_w, w->final_b, d.BT, d.D, dit_patch_out(c));
    ops->unpatchify_forward(a->out, a->out_tokens, B, dit_out_channels(c), S, S, c->patch);
}

// Walks block l backwards: grad.dresidual holds d(stream leaving the block) on entry and
// d(stream entering it) on exit.
static void block_backward(DitModel *m, const Dims *d, int l) {
    const Ops *ops = m->ops;
    DitActivations *a = &m->act;
    DitGradients *g = &m->grad;
    const DitWeights *w = &m->w, *gw = &m->g;
    size_t D = (size_t)d->D, M = (size_t)d->M;
    const float *mod = a->mod + (size_t)l * 6 * D;
    float *dmod = g->dmod + (size_t)l * 6 * D;
    const float *x = a->residual + l * d->layer_td, *mid = a->mid + l * d->layer_td;
    const float *ln1 = a->ln1_out + l * d->layer_td, *qkv = a->qkv + 3 * l * d->layer_td;
    const float *att = a->att + l * d->layer_td, *proj = a->att_proj + l * d->layer_td;
    const float *ln2 = a->ln2_out + l * d->layer_td, *fc1 = a->fc1 + l * d->layer_tm;
    const float *gelu = a->gelu + l * d->layer_tm, *fc2 = a->fc2 + l * d->layer_td;

    // MLP branch: next = mid + gate_mlp * fc2(gelu(fc1(modulate(LN(mid)))))
    ops->gate_residual_backward(g->dbranch, dmod + 5 * D, NULL, g->dresidual, mod + 5 * D, fc2, d->MW, NULL, d->B, d->T,
                                d->D);
    ops->matmul_backward(g->dhidden, gw->fc2_w + l * D * M, gw->fc2_b + l * D, g->dbranch, gelu, w->fc2_w + l * D * M,
                         d->BT, d->M, d->D);
    ops->gelu_backward(g->dhidden, g->dhidden, fc1, (size_t)d->BT * M);
    ops->matmul_backward(g->dtmp, gw->fc1_w + l * M * D, gw->fc1_b + l * M, g->dhidden, ln2, w->fc1_w + l * M * D,
                         d->BT, d->D, d->M);
    ops->layernorm_modulate_backward(g->dresidual, dmod + 3 * D, dmod + 4 * D, g->dtmp, mid,
                                     a->ln2_mean + l * d->layer_bt, a->ln2_rstd + l * d->layer_bt, mod + 4 * D, d->MW,
                                     d->B, d->T, d->D);

    // attention branch: mid = x + gate_msa * proj(attention(qkv(modulate(LN(x)))))
    ops->gate_residual_backward(g->dbranch, dmod + 2 * D, NULL, g->dresidual, mod + 2 * D, proj, d->MW, NULL, d->B, d->T,
                                d->D);
    ops->matmul_backward(g->dtmp, gw->proj_w + l * D * D, gw->proj_b + l * D, g->dbranch, att, w->proj_w + l * D * D,
                         d->BT, d->D, d->D);
    ops->attention_backward(g->dqkv, g->dprobs, g->dtmp, qkv, a->probs + l * d->layer_probs, d->B, d->T, d->H, d->hd);
    ops->matmul_backward(g->dtmp, gw->qkv_w + l * 3 * D * D, gw->qkv_b + l * 3 * D, g->dqkv, ln1,
                         w->qkv_w + l * 3 * D * D, d->BT, d->D, 3 * d->D);
    ops->layernorm_modulate_backward(g->dresidual, dmod, dmod + D, g->dtmp, x, a->ln1_mean + l * d->layer_bt,
                                     a->ln1_rstd + l * d->layer_bt, mod + D, d->MW, d->B, d->T, d->D);
}

void dit_backward(DitModel *m, int B) {
    const Ops *ops = m->ops;
    const DitConfig *c = &m->cfg;
    DitActivations *a = &m->act;
    DitGradients *g = &m->grad;
    const DitWeights *w = &m->w, *gw = &m->g;
    Dims d = dims_of(m, B);
    int S = c->input_size, L = c->depth;

    // final layer
    ops->unpatchify_backward(g->dout_tokens, g->dout, B, dit_out_channels(c), S, S, c->patch);
    ops->matmul_backward(g->dtmp, gw->final_w, gw->final_b, g->dout_tokens, a->lnf_out, w->final_w, d.BT, d.D,
                         dit_patch_out(c));
    ops->zero(g->dresidual, (size_t)d.BT * d.D * sizeof(float));
    const float *fmod = a->mod + (size_t)6 * d.D * L;
    float *dfmod = g->dmod + (size_t)6 * d.D * L;
    ops->layernorm_modulate_backward(g->dresidual, dfmod, dfmod + d.D, g->dtmp, a->residual + L * d.layer_td,
                                     a->lnf_mean, a->lnf_rstd, fmod + d.D, d.MW, B, d.T, d.D);

    for (int l = L - 1; l >= 0; l--) block_backward(m, &d, l);

    // patch embedding (pos_embed is frozen; the input needs no gradient)
    ops->matmul_backward(NULL, gw->x_embed_w, gw->x_embed_b, g->dresidual, a->patches, w->x_embed_w, d.BT,
                         dit_patch_in(c), d.D);

    // conditioning: all modulations, then c = E_t + E_y
    ops->matmul_backward(g->dc_act, gw->ada_w, gw->ada_b, g->dmod, a->c_act, w->ada_w, B, d.D, d.MW);
    ops->silu_backward(g->dc, g->dc_act, a->c, (size_t)B * d.D);
    ops->embedding_backward(gw->y_table, g->dc, a->y, B, d.D);
    ops->matmul_backward(g->dt_act, gw->t_fc2_w, gw->t_fc2_b, g->dc, a->t_act, w->t_fc2_w, B, d.D, d.D);
    ops->silu_backward(g->dt_act, g->dt_act, a->t_hidden, (size_t)B * d.D);
    ops->matmul_backward(NULL, gw->t_fc1_w, gw->t_fc1_b, g->dt_act, a->t_freq, w->t_fc1_w, B, c->frequency_size, d.D);
}
