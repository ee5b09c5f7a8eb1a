// model/dit.c: DiT (docs/algorithm.md 1.3-1.8) and DyDiT (docs/algorithm.md 3) forward and backward as op calls.
#include "model/dit.h"

#include <string.h>

#include "common/util.h"
#include "model/flops.h"

DitRouting dit_routing_eval(void) {
    DitRouting r = {.complete = 0, .noisy = 0, .tau = 5.0f, .threshold = 0.0f, .flops_gradient = 0};
    return r;
}

// Sizes every op call needs, for a call with batch B.
typedef struct {
    int B, T, D, H, hd, M, MW, BT, L, R;
    size_t layer_td, layer_tm, layer_bt, layer_probs, layer_tr; // per-block strides of stacked activations
    int masks;  // 1: the DyDiT masks are applied (a DyDiT outside its complete path)
    int routes; // 1: the routers run (any DyDiT)
} Dims;

static Dims dims_of(const DitModel *m, int B) {
    const DitConfig *c = &m->cfg;
    Dims d = {.B = B,
              .T = dit_tokens(c),
              .D = c->hidden,
              .H = c->heads,
              .hd = dit_head_dim(c),
              .M = dit_mlp_hidden(c),
              .MW = dit_mod_width(c),
              .L = c->depth,
              .R = dit_token_router_hidden(c)};
    d.BT = B * d.T;
    size_t cap_bt = (size_t)m->capacity * d.T;
    d.layer_td = cap_bt * d.D;
    d.layer_tm = cap_bt * d.M;
    d.layer_bt = cap_bt;
    d.layer_probs = (size_t)m->capacity * d.H * d.T * d.T;
    d.layer_tr = cap_bt * d.R;
    d.routes = c->dynamic;
    d.masks = c->dynamic && !m->routing.complete;
    return d;
}

// The width routers' input: E_t (docs/algorithm.md 3.2) or c = E_t + E_y.
static float *router_input(const DitModel *m) {
    return m->cfg.router_input == ROUTER_INPUT_CONDITION ? m->act.c : m->act.emb_t;
}

// Head and channel-group masks of every block from the width routers, one GEMM per kind.
static void width_routers_forward(DitModel *m, const Dims *d) {
    const Ops *ops = m->ops;
    DitActivations *a = &m->act;
    const DitRouting *r = &m->routing;
    int rows = d->B * d->L, cols = d->H - 1;
    const float *in = router_input(m);
    ops->matmul_forward(a->attn_logits, in, m->w.attn_router_w, m->w.attn_router_b, d->B, d->D, d->L * cols);
    ops->st_gate_forward(a->head_mask + 1, d->H, a->attn_soft, a->attn_logits, r->noisy ? a->noise_attn : NULL, cols,
                         rows, cols, r->tau, r->threshold);
    ops->matmul_forward(a->mlp_logits, in, m->w.mlp_router_w, m->w.mlp_router_b, d->B, d->D, d->L * cols);
    ops->st_gate_forward(a->chan_mask + 1, d->H, a->mlp_soft, a->mlp_logits, r->noisy ? a->noise_mlp : NULL, cols, rows,
                         cols, r->tau, r->threshold);
}

// Token mask of block l from its router on the stream after the attention update (docs/algorithm.md 3.4).
static void token_router_forward(DitModel *m, const Dims *d, int l, const float *mid) {
    const Ops *ops = m->ops;
    DitActivations *a = &m->act;
    const DitRouting *r = &m->routing;
    size_t R = (size_t)d->R, D = (size_t)d->D;
    float *hidden = a->token_hidden + l * d->layer_tr, *act = a->token_act + l * d->layer_tr;
    float *logits = a->token_logits + l * d->layer_bt;
    ops->matmul_forward(hidden, mid, m->w.token_fc1_w + l * R * D, m->w.token_fc1_b + l * R, d->BT, d->D, d->R);
    ops->relu_forward(act, hidden, (size_t)d->BT * R);
    ops->matmul_forward(logits, act, m->w.token_fc2_w + l * R, m->w.token_fc2_b + l, d->BT, d->R, 1);
    int stride = d->L * d->T; // (B, L, T) layout of the mask and the noise
    ops->st_gate_forward(a->token_mask + (size_t)l * d->T, stride, a->token_soft + l * d->layer_bt, logits,
                         r->noisy ? a->noise_token + (size_t)l * d->T : NULL, stride, d->B, d->T, r->tau, r->threshold);
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
    int mask_stride = d->L * d->H;
    const float *head_mask = d->masks ? a->head_mask + (size_t)l * d->H : NULL;
    const float *chan_mask = d->masks ? a->chan_mask + (size_t)l * d->H : NULL;

    ops->layernorm_modulate_forward(ln1, a->ln1_mean + l * d->layer_bt, a->ln1_rstd + l * d->layer_bt, x, mod, mod + D,
                                    d->MW, d->B, d->T, d->D);
    ops->matmul_forward(qkv, ln1, w->qkv_w + l * 3 * D * D, w->qkv_b + l * 3 * D, d->BT, d->D, 3 * d->D);
    ops->attention_forward(att, a->probs + l * d->layer_probs, qkv, d->B, d->T, d->H, d->hd);
    const float *proj_in = att;
    if (head_mask) { // switched-off heads contribute nothing to the projection (docs/algorithm.md 3.5)
        ops->group_mask_forward(a->masked, att, head_mask, mask_stride, d->B, d->T, d->H, d->hd);
        proj_in = a->masked;
    }
    ops->matmul_forward(proj, proj_in, w->proj_w + l * D * D, w->proj_b + l * D, d->BT, d->D, d->D);
    ops->gate_residual_forward(mid, x, mod + 2 * D, proj, d->MW, NULL, 0, d->B, d->T, d->D);
    if (d->routes) token_router_forward(m, d, l, mid);

    ops->layernorm_modulate_forward(ln2, a->ln2_mean + l * d->layer_bt, a->ln2_rstd + l * d->layer_bt, mid, mod + 3 * D,
                                    mod + 4 * D, d->MW, d->B, d->T, d->D);
    ops->matmul_forward(fc1, ln2, w->fc1_w + l * M * D, w->fc1_b + l * M, d->BT, d->D, d->M);
    const float *gelu_in = fc1;
    if (chan_mask) { // switched-off channel groups: zero before GELU, and GELU(0) = 0
        ops->group_mask_forward(a->masked, fc1, chan_mask, mask_stride, d->B, d->T, d->H, d->M / d->H);
        gelu_in = a->masked;
    }
    ops->gelu_forward(gelu, gelu_in, (size_t)d->BT * M);
    ops->matmul_forward(fc2, gelu, w->fc2_w + l * D * M, w->fc2_b + l * D, d->BT, d->M, d->D);
    // a dropped token skips the whole MLP update, fc2 bias and gate included (docs/algorithm.md 3.4)
    const float *keep = d->masks ? a->token_mask + (size_t)l * d->T : NULL;
    ops->gate_residual_forward(next, mid, mod + 5 * D, fc2, d->MW, keep, d->L * d->T, d->B, d->T, d->D);
}

void dit_forward(DitModel *m, const float *t_host, const int32_t *y_host, int B, const DitRouting *routing) {
    if (B > m->capacity) die("internal: batch %d exceeds the planned %d", B, m->capacity);
    m->routing = routing ? *routing : dit_routing_eval();
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
    if (d.routes) width_routers_forward(m, &d);

    for (int l = 0; l < c->depth; l++) block_forward(m, &d, l);

    // final layer: modulate(LN(x), shift, scale) -> Linear -> unpatchify
    const float *fmod = a->mod + (size_t)6 * d.D * c->depth;
    const float *xL = a->residual + c->depth * d.layer_td;
    ops->layernorm_modulate_forward(a->lnf_out, a->lnf_mean, a->lnf_rstd, xL, fmod, fmod + d.D, d.MW, B, d.T, d.D);
    ops->matmul_forward(a->out_tokens, a->lnf_out, w->final_w, w->final_b, d.BT, d.D, dit_patch_out(c));
    ops->unpatchify_forward(a->out, a->out_tokens, B, dit_out_channels(c), S, S, c->patch);

    if (d.routes) {
        BlockMacs macs = dit_block_macs(c);
        ops->flops_ratio_forward(a->flops_ratio, a->head_mask, a->chan_mask, a->token_mask, B, d.L, d.H, d.T,
                                 (float)macs.attention, (float)macs.mlp);
    }
}

// The token router of block l backwards: from the complete mask gradient grad.dtoken[:, l] (the
// MLP gate's part and the FLOPs term's) into its weights, adding its input gradient to the stream
// after the attention update, grad.dresidual.
static void token_router_backward(DitModel *m, const Dims *d, int l, const float *mid) {
    const Ops *ops = m->ops;
    DitActivations *a = &m->act;
    DitGradients *g = &m->grad;
    size_t R = (size_t)d->R, D = (size_t)d->D;
    ops->st_gate_backward(g->dtoken_logits, g->dtoken + (size_t)l * d->T, d->L * d->T, a->token_soft + l * d->layer_bt,
                          d->B, d->T, m->routing.tau);
    ops->matmul_backward(g->dtoken_act, m->g.token_fc2_w + l * R, m->g.token_fc2_b + l, g->dtoken_logits,
                         a->token_act + l * d->layer_tr, m->w.token_fc2_w + l * R, d->BT, d->R, 1);
    ops->relu_backward(g->dtoken_act, g->dtoken_act, a->token_hidden + l * d->layer_tr, (size_t)d->BT * R);
    ops->matmul_backward(g->dtmp, m->g.token_fc1_w + l * R * D, m->g.token_fc1_b + l * R, g->dtoken_act, mid,
                         m->w.token_fc1_w + l * R * D, d->BT, d->D, d->R);
    ops->add(g->dresidual, g->dresidual, g->dtmp, (size_t)d->BT * D);
}

// Walks block l backwards: grad.dresidual holds d(stream leaving the block) on entry and
// d(stream entering it) on exit. With masks, their gradients add into grad.dhead/dchan/dtoken.
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
    int mask_stride = d->L * d->H, token_stride = d->L * d->T;
    const float *head_mask = d->masks ? a->head_mask + (size_t)l * d->H : NULL;
    const float *chan_mask = d->masks ? a->chan_mask + (size_t)l * d->H : NULL;
    const float *keep = d->masks ? a->token_mask + (size_t)l * d->T : NULL;

    // MLP branch: next = mid + keep * gate_mlp * fc2(gelu(mask(fc1(modulate(LN(mid))))))
    ops->gate_residual_backward(g->dbranch, dmod + 5 * D, keep ? g->dtoken + (size_t)l * d->T : NULL, g->dresidual,
                                mod + 5 * D, fc2, d->MW, keep, token_stride, d->B, d->T, d->D);
    ops->matmul_backward(g->dhidden, gw->fc2_w + l * D * M, gw->fc2_b + l * D, g->dbranch, gelu, w->fc2_w + l * D * M,
                         d->BT, d->M, d->D);
    const float *gelu_in = fc1;
    if (chan_mask) { // the forward's masked fc1 output, recomputed rather than stored
        ops->group_mask_forward(a->masked, fc1, chan_mask, mask_stride, d->B, d->T, d->H, d->M / d->H);
        gelu_in = a->masked;
    }
    ops->gelu_backward(g->dhidden, g->dhidden, gelu_in, (size_t)d->BT * M);
    if (chan_mask)
        ops->group_mask_backward(g->dhidden, g->dchan + (size_t)l * d->H, g->dhidden, fc1, chan_mask, mask_stride, d->B,
                                 d->T, d->H, d->M / d->H);
    ops->matmul_backward(g->dtmp, gw->fc1_w + l * M * D, gw->fc1_b + l * M, g->dhidden, ln2, w->fc1_w + l * M * D,
                         d->BT, d->D, d->M);
    ops->layernorm_modulate_backward(g->dresidual, dmod + 3 * D, dmod + 4 * D, g->dtmp, mid,
                                     a->ln2_mean + l * d->layer_bt, a->ln2_rstd + l * d->layer_bt, mod + 4 * D, d->MW,
                                     d->B, d->T, d->D);
    if (d->masks) token_router_backward(m, d, l, mid);

    // attention branch: mid = x + gate_msa * proj(mask(attention(qkv(modulate(LN(x))))))
    ops->gate_residual_backward(g->dbranch, dmod + 2 * D, NULL, g->dresidual, mod + 2 * D, proj, d->MW, NULL, 0, d->B,
                                d->T, d->D);
    const float *proj_in = att;
    if (head_mask) {
        ops->group_mask_forward(a->masked, att, head_mask, mask_stride, d->B, d->T, d->H, d->hd);
        proj_in = a->masked;
    }
    ops->matmul_backward(g->dtmp, gw->proj_w + l * D * D, gw->proj_b + l * D, g->dbranch, proj_in,
                         w->proj_w + l * D * D, d->BT, d->D, d->D);
    if (head_mask)
        ops->group_mask_backward(g->dtmp, g->dhead + (size_t)l * d->H, g->dtmp, att, head_mask, mask_stride, d->B, d->T,
                                 d->H, d->hd);
    ops->attention_backward(g->dqkv, g->dprobs, g->dtmp, qkv, a->probs + l * d->layer_probs, d->B, d->T, d->H, d->hd);
    ops->matmul_backward(g->dtmp, gw->qkv_w + l * 3 * D * D, gw->qkv_b + l * 3 * D, g->dqkv, ln1,
                         w->qkv_w + l * 3 * D * D, d->BT, d->D, 3 * d->D);
    ops->layernorm_modulate_backward(g->dresidual, dmod, dmod + D, g->dtmp, x, a->ln1_mean + l * d->layer_bt,
                                     a->ln1_rstd + l * d->layer_bt, mod + D, d->MW, d->B, d->T, d->D);
}

// The width routers backwards, from the complete head and group mask gradients into their weights;
// their input gradient goes to grad.drouter_in.
static void width_routers_backward(DitModel *m, const Dims *d) {
    const Ops *ops = m->ops;
    DitActivations *a = &m->act;
    DitGradients *g = &m->grad;
    int rows = d->B * d->L, cols = d->H - 1;
    const float *in = router_input(m);
    ops->st_gate_backward(g->dattn_logits, g->dhead + 1, d->H, a->attn_soft, rows, cols, m->routing.tau);
    ops->matmul_backward(g->drouter_in, m->g.attn_router_w, m->g.attn_router_b, g->dattn_logits, in, m->w.attn_router_w,
                         d->B, d->D, d->L * cols);
    ops->st_gate_backward(g->dmlp_logits, g->dchan + 1, d->H, a->mlp_soft, rows, cols, m->routing.tau);
    ops->matmul_backward(g->drouter_tmp, m->g.mlp_router_w, m->g.mlp_router_b, g->dmlp_logits, in, m->w.mlp_router_w,
                         d->B, d->D, d->L * cols);
    ops->add(g->drouter_in, g->drouter_in, g->drouter_tmp, (size_t)d->B * d->D);
}

void dit_backward(DitModel *m, int B) {
    const Ops *ops = m->ops;
    const DitConfig *c = &m->cfg;
    DitActivations *a = &m->act;
    DitGradients *g = &m->grad;
    const DitWeights *w = &m->w, *gw = &m->g;
    Dims d = dims_of(m, B);
    int S = c->input_size, L = c->depth;

    if (d.masks) { // mask gradients gather from the FLOPs term first, then from every block
        size_t masks = (size_t)B * L * d.H * sizeof(float), tokens = (size_t)B * L * d.T * sizeof(float);
        ops->zero(g->dhead, masks);
        ops->zero(g->dchan, masks);
        ops->zero(g->dtoken, tokens);
        if (m->routing.flops_gradient) {
            BlockMacs macs = dit_block_macs(c);
            ops->flops_ratio_backward(g->dhead, g->dchan, g->dtoken, g->dflops, a->chan_mask, a->token_mask, B, L, d.H,
                                      d.T, (float)macs.attention, (float)macs.mlp);
        }
    }

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

    // conditioning: all modulations, the width routers, then c = E_t + E_y
    ops->matmul_backward(g->dc_act, gw->ada_w, gw->ada_b, g->dmod, a->c_act, w->ada_w, B, d.D, d.MW);
    ops->silu_backward(g->dc, g->dc_act, a->c, (size_t)B * d.D);
    float *demb_t = g->dc;
    if (d.masks) {
        width_routers_backward(m, &d);
        if (c->router_input == ROUTER_INPUT_CONDITION) {
            ops->add(g->dc, g->dc, g->drouter_in, (size_t)B * d.D);
        } else {
            ops->add(g->demb_t, g->dc, g->drouter_in, (size_t)B * d.D);
            demb_t = g->demb_t;
        }
    }
    ops->embedding_backward(gw->y_table, g->dc, a->y, B, d.D);
    ops->matmul_backward(g->dt_act, gw->t_fc2_w, gw->t_fc2_b, demb_t, a->t_act, w->t_fc2_w, B, d.D, d.D);
    ops->silu_backward(g->dt_act, g->dt_act, a->t_hidden, (size_t)B * d.D);
    ops->matmul_backward(NULL, gw->t_fc1_w, gw->t_fc1_b, g->dt_act, a->t_freq, w->t_fc1_w, B, c->frequency_size, d.D);
}
