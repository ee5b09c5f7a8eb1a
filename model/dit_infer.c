#include "model/dit_infer.h"

#include <string.h>

#include "common/util.h"
#include "model/flops.h"

// The active heads and channel groups of every layer at one network timestep.
typedef struct {
    float t;
    uint8_t *heads, *groups; // (L, H): 1 active
} WidthEntry;

// A layer's packed weight slices for its current width pattern.
typedef struct {
    int valid;
    uint8_t *heads, *groups;       // (H) the pattern the slices were packed for
    float *qkv_w, *qkv_b, *proj_w; // (3 a hd, D), (3 a hd), (D, a hd)   a = active heads
    float *fc1_w, *fc1_b, *fc2_w;  // (w, D), (w), (D, w)                 w = active groups * M / H
} LayerPack;

struct DitInfer {
    const DitModel *m;
    const Ops *ops;
    int capacity, dynamic;
    float threshold; // a router keeps a unit when its logit exceeds this
    // backend buffers for one batch and one layer at a time
    float *x_tokens, *t, *patches, *t_freq, *t_hidden, *t_act, *emb_t, *emb_y, *c, *c_act, *mod;
    int32_t *y;
    float *mean, *rstd;                   // (B, T)
    float *ln, *qkv, *probs, *att, *proj; // (B,T,D), (B,T,3D), (B,H,T,T), (B,T,D), (B,T,D)
    float *fc1, *fc2, *out_tokens;        // (B,T,M), (B,T,D), (B,T,p*p*C_out)
    float *token_hidden, *token_logits;   // (B,T,R), (B,T)
    float *attn_logits, *mlp_logits;      // (B, L(H-1))
    int32_t *rows, *blocks;               // (B*T) kept token rows; (max(H, 3H)) block indices
    // host
    float *host_logits, *host_token_keep; // (max(B*T, L(H-1))), (B, L, T)
    int32_t *host_rows, *host_blocks;
    WidthEntry *widths;
    int width_count, width_capacity;
    // routers reading the class (router_input condition): each row's own pattern, rows grouped by it
    int per_row;
    uint8_t *row_heads, *row_groups; // (B, L, H) host
    int32_t *host_order, *order;     // (B) rows sorted by group (host, backend), and its inverse
    int32_t *host_inverse, *inverse;
    int *group_start;                        // (B + 1) first position of each group in the order
    float *x_sorted, *mod_sorted, *out_sorted; // (B, C*H*W), (B, mod width), (B, C_out*H*W)
    LayerPack *packs;
    long repacks;
    InferStats stats;
};

static void *backend_alloc(DitInfer *e, size_t floats) { return e->ops->alloc(floats * sizeof(float)); }

DitInfer *dit_infer_create(const DitModel *m, int capacity, int dynamic) {
    const DitConfig *c = &m->cfg;
    if (dynamic && !c->dynamic) die("internal: a dynamic engine needs a DyDiT");
    DitInfer *e = xcalloc(1, sizeof(DitInfer));
    e->m = m;
    e->ops = m->ops;
    e->capacity = capacity;
    e->dynamic = dynamic;
    size_t B = (size_t)capacity, T = (size_t)dit_tokens(c), D = (size_t)c->hidden, M = (size_t)dit_mlp_hidden(c);
    size_t H = (size_t)c->heads, L = (size_t)c->depth, R = (size_t)dit_token_router_hidden(c), BT = B * T;
    e->x_tokens = backend_alloc(e, BT * D);
    e->t = backend_alloc(e, B);
    e->y = e->ops->alloc(B * sizeof(int32_t));
    e->patches = backend_alloc(e, BT * dit_patch_in(c));
    e->t_freq = backend_alloc(e, B * c->frequency_size);
    e->t_hidden = backend_alloc(e, B * D);
    e->t_act = backend_alloc(e, B * D);
    e->emb_t = backend_alloc(e, B * D);
    e->emb_y = backend_alloc(e, B * D);
    e->c = backend_alloc(e, B * D);
    e->c_act = backend_alloc(e, B * D);
    e->mod = backend_alloc(e, B * dit_mod_width(c));
    e->mean = backend_alloc(e, BT);
    e->rstd = backend_alloc(e, BT);
    e->ln = backend_alloc(e, BT * D);
    e->qkv = backend_alloc(e, BT * 3 * D);
    e->probs = backend_alloc(e, B * H * T * T);
    e->att = backend_alloc(e, BT * D);
    e->proj = backend_alloc(e, BT * D);
    e->fc1 = backend_alloc(e, BT * M);
    e->fc2 = backend_alloc(e, BT * D);
    e->out_tokens = backend_alloc(e, BT * dit_patch_out(c));
    if (c->dynamic) {
        e->token_hidden = backend_alloc(e, BT * R);
        e->token_logits = backend_alloc(e, BT);
        e->attn_logits = backend_alloc(e, B * L * (H - 1));
        e->mlp_logits = backend_alloc(e, B * L * (H - 1));
        e->rows = e->ops->alloc(BT * sizeof(int32_t));
        e->blocks = e->ops->alloc(H * sizeof(int32_t));
        size_t routed = B * L * (H - 1), logits = BT > routed ? BT : routed;
        e->host_logits = xmalloc(logits * sizeof(float));
        e->host_token_keep = xcalloc(B * L * T, sizeof(float));
        e->host_rows = xmalloc(BT * sizeof(int32_t));
        e->host_blocks = xmalloc(H * sizeof(int32_t));
        e->packs = xcalloc(L, sizeof(LayerPack));
    }
    e->per_row = dynamic && c->router_input == ROUTER_INPUT_CONDITION;
    if (e->per_row) {
        size_t image = (size_t)c->in_channels * c->input_size * c->input_size;
        e->row_heads = xmalloc(B * L * H);
        e->row_groups = xmalloc(B * L * H);
        e->host_order = xmalloc(B * sizeof(int32_t));
        e->host_inverse = xmalloc(B * sizeof(int32_t));
        e->order = e->ops->alloc(B * sizeof(int32_t));
        e->inverse = e->ops->alloc(B * sizeof(int32_t));
        e->group_start = xmalloc((B + 1) * sizeof(int));
        e->x_sorted = backend_alloc(e, B * image);
        e->mod_sorted = backend_alloc(e, B * dit_mod_width(c));
        e->out_sorted = backend_alloc(e, B * image / c->in_channels * dit_out_channels(c));
    }
    return e;
}

void dit_infer_destroy(DitInfer *e) {
    if (!e) return;
    const Ops *ops = e->ops;
    void *backend[] = {e->x_tokens,    e->t,          e->y,     e->patches,    e->t_freq,       e->t_hidden,
                       e->t_act,       e->emb_t,      e->emb_y, e->c,          e->c_act,        e->mod,
                       e->mean,        e->rstd,       e->ln,    e->qkv,        e->probs,        e->att,
                       e->proj,        e->fc1,        e->fc2,   e->out_tokens, e->token_hidden, e->token_logits,
                       e->attn_logits, e->mlp_logits, e->rows,  e->blocks,     e->order,        e->inverse,
                       e->x_sorted,    e->mod_sorted, e->out_sorted};
    for (size_t i = 0; i < sizeof(backend) / sizeof(backend[0]); i++) ops->release(backend[i]);
    if (e->packs)
        for (int l = 0; l < e->m->cfg.depth; l++) {
            LayerPack *p = &e->packs[l];
            float *slices[] = {p->qkv_w, p->qkv_b, p->proj_w, p->fc1_w, p->fc1_b, p->fc2_w};
            for (size_t i = 0; i < sizeof(slices) / sizeof(slices[0]); i++) ops->release(slices[i]);
            free(p->heads);
            free(p->groups);
        }
    for (int i = 0; i < e->width_count; i++) {
        free(e->widths[i].heads);
        free(e->widths[i].groups);
    }
    free(e->widths);
    free(e->packs);
    free(e->host_logits);
    free(e->host_token_keep);
    free(e->host_rows);
    free(e->host_blocks);
    free(e->row_heads);
    free(e->row_groups);
    free(e->host_order);
    free(e->host_inverse);
    free(e->group_start);
    free(e);
}

InferStats dit_infer_stats(const DitInfer *e) { return e->stats; }
const float *dit_infer_token_keep(const DitInfer *e) { return e->host_token_keep; }
long dit_infer_repacks(const DitInfer *e) { return e->repacks; }

// Routers' decisions of every layer for rows [0, B) of `in` (B, D) into heads and groups (B, L, H).
static void decide_widths(DitInfer *e, const float *in, int B, uint8_t *heads, uint8_t *groups) {
    const DitModel *m = e->m;
    const DitConfig *c = &m->cfg;
    int L = c->depth, H = c->heads, routed = L * (H - 1);
    const float *weights[2] = {m->w.attn_router_w, m->w.mlp_router_w},
                *biases[2] = {m->w.attn_router_b, m->w.mlp_router_b};
    float *logits[2] = {e->attn_logits, e->mlp_logits};
    uint8_t *decisions[2] = {heads, groups};
    for (int kind = 0; kind < 2; kind++) {
        e->ops->matmul_forward(logits[kind], in, weights[kind], biases[kind], B, c->hidden, routed);
        e->ops->download(e->host_logits, logits[kind], (size_t)B * routed * sizeof(float));
        for (int b = 0; b < B; b++)
            for (int l = 0; l < L; l++) {
                uint8_t *d = decisions[kind] + ((size_t)b * L + l) * H;
                const float *z = e->host_logits + (size_t)b * routed + l * (H - 1);
                d[0] = 1; // index 0 is always on
                for (int h = 1; h < H; h++) d[h] = z[h - 1] > e->threshold;
            }
    }
}

// Width decisions of every layer at timestep t, for routers that read the timestep only: computed
// the first time t is seen (every sample of the batch shares t, so row 0 speaks for all), then
// looked up.
static const WidthEntry *widths_at(DitInfer *e, float t) {
    for (int i = 0; i < e->width_count; i++)
        if (e->widths[i].t == t) return &e->widths[i];
    const DitConfig *c = &e->m->cfg;
    int L = c->depth, H = c->heads;
    if (e->width_count == e->width_capacity) {
        e->width_capacity = e->width_capacity ? 2 * e->width_capacity : 64;
        e->widths = xrealloc(e->widths, (size_t)e->width_capacity * sizeof(WidthEntry));
    }
    WidthEntry *w = &e->widths[e->width_count++];
    w->t = t;
    w->heads = xmalloc((size_t)L * H);
    w->groups = xmalloc((size_t)L * H);
    decide_widths(e, e->emb_t, 1, w->heads, w->groups);
    return w;
}

// Routers reading the class: every row's decisions, and the rows sorted into groups of equal
// patterns (host_order, group_start; host_inverse maps a row to its sorted position). Returns the
// number of groups.
static int group_rows_by_widths(DitInfer *e, int B) {
    const DitConfig *c = &e->m->cfg;
    size_t LH = (size_t)c->depth * c->heads;
    decide_widths(e, e->c, B, e->row_heads, e->row_groups);
    int groups = 0, placed = 0;
    uint8_t *grouped = xcalloc((size_t)B, 1);
    for (int b = 0; b < B; b++) {
        if (grouped[b]) continue;
        e->group_start[groups++] = placed;
        for (int r = b; r < B; r++)
            if (!grouped[r] && !memcmp(e->row_heads + r * LH, e->row_heads + b * LH, LH) &&
                !memcmp(e->row_groups + r * LH, e->row_groups + b * LH, LH)) {
                grouped[r] = 1;
                e->host_inverse[r] = placed;
                e->host_order[placed++] = r;
            }
    }
    e->group_start[groups] = B;
    free(grouped);
    return groups;
}

static int count_on(const uint8_t *pattern, int n) {
    int k = 0;
    for (int i = 0; i < n; i++) k += pattern[i];
    return k;
}

// Packs layer l's weight slices for the given head and group patterns, unless already packed.
static void pack_layer(DitInfer *e, int l, const uint8_t *heads, const uint8_t *groups) {
    const DitModel *m = e->m;
    const Ops *ops = e->ops;
    const DitConfig *c = &m->cfg;
    int H = c->heads, D = c->hidden, hd = dit_head_dim(c), M = dit_mlp_hidden(c), gs = M / H;
    LayerPack *p = &e->packs[l];
    if (p->valid && !memcmp(p->heads, heads, (size_t)H) && !memcmp(p->groups, groups, (size_t)H)) return;
    if (!p->heads) { // slices sized for every unit active, allocated on first use
        p->heads = xmalloc((size_t)H);
        p->groups = xmalloc((size_t)H);
        p->qkv_w = backend_alloc(e, (size_t)3 * D * D);
        p->qkv_b = backend_alloc(e, (size_t)3 * D);
        p->proj_w = backend_alloc(e, (size_t)D * D);
        p->fc1_w = backend_alloc(e, (size_t)M * D);
        p->fc1_b = backend_alloc(e, (size_t)M);
        p->fc2_w = backend_alloc(e, (size_t)D * M);
    }
    size_t DD = (size_t)D * D;
    int a = 0;
    for (int h = 0; h < H; h++)
        if (heads[h]) e->host_blocks[a++] = h;
    ops->upload(e->blocks, e->host_blocks, (size_t)a * sizeof(int32_t));
    for (int which = 0; which < 3; which++) { // q, k and v row blocks of the active heads
        ops->gather_blocks(p->qkv_w + which * (size_t)a * hd * D, m->w.qkv_w + (size_t)l * 3 * DD + which * DD,
                           e->blocks, 1, H, hd * D, a);
        ops->gather_blocks(p->qkv_b + which * (size_t)a * hd, m->w.qkv_b + (size_t)l * 3 * D + which * D, e->blocks, 1,
                           H, hd, a);
    }
    ops->gather_blocks(p->proj_w, m->w.proj_w + (size_t)l * DD, e->blocks, D, H, hd, a);
    int g = 0;
    for (int h = 0; h < H; h++)
        if (groups[h]) e->host_blocks[g++] = h;
    ops->upload(e->blocks, e->host_blocks, (size_t)g * sizeof(int32_t));
    ops->gather_blocks(p->fc1_w, m->w.fc1_w + (size_t)l * M * D, e->blocks, 1, H, gs * D, g);
    ops->gather_blocks(p->fc1_b, m->w.fc1_b + (size_t)l * M, e->blocks, 1, H, gs, g);
    ops->gather_blocks(p->fc2_w, m->w.fc2_w + (size_t)l * D * M, e->blocks, D, H, gs, g);
    memcpy(p->heads, heads, (size_t)H);
    memcpy(p->groups, groups, (size_t)H);
    p->valid = 1;
    e->repacks++;
}

// Layer l's token decisions: kept rows of the batch into e->rows (returned count K), and the
// host copy of the decisions at the rows' places in the caller's batch (row_ids: batch row of each
// of the B rows; NULL: the same).
static int route_tokens(DitInfer *e, int l, int B, const int32_t *row_ids) {
    const DitModel *m = e->m;
    const Ops *ops = e->ops;
    const DitConfig *c = &m->cfg;
    int T = dit_tokens(c), D = c->hidden, R = dit_token_router_hidden(c), L = c->depth, BT = B * T;
    ops->matmul_forward(e->token_hidden, e->x_tokens, m->w.token_fc1_w + (size_t)l * R * D,
                        m->w.token_fc1_b + (size_t)l * R, BT, D, R);
    ops->relu_forward(e->token_hidden, e->token_hidden, (size_t)BT * R);
    ops->matmul_forward(e->token_logits, e->token_hidden, m->w.token_fc2_w + (size_t)l * R, m->w.token_fc2_b + l, BT, R,
                        1);
    ops->download(e->host_logits, e->token_logits, (size_t)BT * sizeof(float));
    int K = 0;
    for (int r = 0; r < BT; r++) {
        int keep = e->host_logits[r] > e->threshold;
        size_t row = row_ids ? (size_t)row_ids[r / T] : (size_t)(r / T);
        e->host_token_keep[(row * L + l) * T + r % T] = (float)keep;
        if (keep) e->host_rows[K++] = r;
    }
    if (K > 0 && K < BT) ops->upload(e->rows, e->host_rows, (size_t)K * sizeof(int32_t));
    return K;
}

// How one pass of the layers runs: its rows' width pattern (L, H) each for heads and groups (NULL:
// every unit), their modulation rows (B, mod width), where their token decisions go (route_tokens'
// row_ids) and their share of the whole batch (for the keep statistics).
typedef struct {
    const uint8_t *heads, *groups;
    const float *mod;
    const int32_t *row_ids;
    double share;
} RowPass;

static void layer_forward(DitInfer *e, int l, int B, const RowPass *pass) {
    const DitModel *m = e->m;
    const Ops *ops = e->ops;
    const DitConfig *c = &m->cfg;
    int T = dit_tokens(c), D = c->hidden, H = c->heads, hd = dit_head_dim(c), M = dit_mlp_hidden(c),
        MW = dit_mod_width(c);
    int BT = B * T, R = dit_token_router_hidden(c);
    size_t Dz = (size_t)D;
    const float *mod = pass->mod + (size_t)l * 6 * Dz;
    const uint8_t *heads = pass->heads ? pass->heads + (size_t)l * H : NULL;
    const uint8_t *groups = pass->groups ? pass->groups + (size_t)l * H : NULL;
    int a = heads ? count_on(heads, H) : H, g = groups ? count_on(groups, H) : H, width = g * (M / H);
    const LayerPack *p = NULL;
    if (a < H || g < H) {
        pack_layer(e, l, heads, groups);
        p = &e->packs[l];
    }

    // attention over all tokens with the active heads
    ops->layernorm_modulate_forward(e->ln, e->mean, e->rstd, e->x_tokens, mod, mod + D, MW, B, T, D);
    const float *qkv_w = a < H ? p->qkv_w : m->w.qkv_w + (size_t)l * 3 * Dz * Dz;
    const float *qkv_b = a < H ? p->qkv_b : m->w.qkv_b + (size_t)l * 3 * Dz;
    const float *proj_w = a < H ? p->proj_w : m->w.proj_w + (size_t)l * Dz * Dz;
    ops->matmul_forward(e->qkv, e->ln, qkv_w, qkv_b, BT, D, 3 * a * hd);
    ops->attention_forward(e->att, e->probs, e->qkv, B, T, a, hd);
    ops->matmul_forward(e->proj, e->att, proj_w, m->w.proj_b + (size_t)l * Dz, BT, a * hd, D);
    ops->gate_residual_forward(e->x_tokens, e->x_tokens, mod + 2 * D, e->proj, MW, NULL, 0, B, T, D);
    double macs = 4.0 * BT * D * a * hd + 2.0 * B * T * T * a * hd + 6.0 * B * Dz * Dz;

    // the MLP on the kept tokens, narrowed to the active channel groups
    int K = BT;
    if (e->dynamic) {
        K = route_tokens(e, l, B, pass->row_ids);
        macs += (double)BT * (D * R + R);
    }
    if (K > 0) {
        if (K == BT)
            ops->layernorm_modulate_forward(e->ln, e->mean, e->rstd, e->x_tokens, mod + 3 * D, mod + 4 * D, MW, B, T,
                                            D);
        else
            ops->gather_layernorm_modulate(e->ln, e->x_tokens, e->rows, mod + 3 * D, mod + 4 * D, MW, T, K, D);
        const float *fc1_w = g < H ? p->fc1_w : m->w.fc1_w + (size_t)l * M * Dz;
        const float *fc1_b = g < H ? p->fc1_b : m->w.fc1_b + (size_t)l * M;
        const float *fc2_w = g < H ? p->fc2_w : m->w.fc2_w + (size_t)l * Dz * M;
        ops->matmul_forward(e->fc1, e->ln, fc1_w, fc1_b, K, D, width);
        ops->gelu_forward(e->fc1, e->fc1, (size_t)K * width);
        ops->matmul_forward(e->fc2, e->fc1, fc2_w, m->w.fc2_b + (size_t)l * Dz, K, width, D);
        if (K == BT)
            ops->gate_residual_forward(e->x_tokens, e->x_tokens, mod + 5 * D, e->fc2, MW, NULL, 0, B, T, D);
        else
            ops->gate_scatter_add(e->x_tokens, e->fc2, e->rows, mod + 5 * D, MW, T, K, D);
        macs += 2.0 * K * D * width;
    }
    e->stats.macs += macs;
    e->stats.head_keep += pass->share * a / H;
    e->stats.group_keep += pass->share * g / H;
    e->stats.token_keep += pass->share * K / BT;
}

// Conditioning of B rows at timestep t with labels y: emb_t, c and every layer's modulation (mod).
static void embed_conditions(DitInfer *e, float t, const int32_t *y, int B) {
    const Ops *ops = e->ops;
    const DitConfig *c = &e->m->cfg;
    const DitWeights *w = &e->m->w;
    int D = c->hidden;
    float *t_host = xmalloc((size_t)B * sizeof(float));
    for (int b = 0; b < B; b++) t_host[b] = t;
    ops->upload(e->t, t_host, (size_t)B * sizeof(float));
    ops->upload(e->y, y, (size_t)B * sizeof(int32_t));
    free(t_host);
    ops->timestep_embedding(e->t_freq, e->t, B, c->frequency_size, 10000.0f);
    ops->matmul_forward(e->t_hidden, e->t_freq, w->t_fc1_w, w->t_fc1_b, B, c->frequency_size, D);
    ops->silu_forward(e->t_act, e->t_hidden, (size_t)B * D);
    ops->matmul_forward(e->emb_t, e->t_act, w->t_fc2_w, w->t_fc2_b, B, D, D);
    ops->embedding_forward(e->emb_y, w->y_table, e->y, B, D);
    ops->add(e->c, e->emb_t, e->emb_y, (size_t)B * D);
    ops->silu_forward(e->c_act, e->c, (size_t)B * D);
    ops->matmul_forward(e->mod, e->c_act, w->ada_w, w->ada_b, B, D, dit_mod_width(c));
}

// out (B, C_out, H, W) = the network on x (B, C, H, W), whose conditioning is pass->mod.
static void run_rows(DitInfer *e, const float *x, int B, const RowPass *pass, float *out) {
    const Ops *ops = e->ops;
    const DitConfig *c = &e->m->cfg;
    const DitWeights *w = &e->m->w;
    int T = dit_tokens(c), D = c->hidden, L = c->depth, S = c->input_size, BT = B * T, MW = dit_mod_width(c);
    ops->patchify(e->patches, x, B, c->in_channels, S, S, c->patch);
    ops->matmul_forward(e->x_tokens, e->patches, w->x_embed_w, w->x_embed_b, BT, dit_patch_in(c), D);
    ops->add_broadcast(e->x_tokens, w->pos_embed, B, (size_t)T * D);
    for (int l = 0; l < L; l++) layer_forward(e, l, B, pass);
    const float *fmod = pass->mod + (size_t)6 * D * L;
    ops->layernorm_modulate_forward(e->ln, e->mean, e->rstd, e->x_tokens, fmod, fmod + D, MW, B, T, D);
    ops->matmul_forward(e->out_tokens, e->ln, w->final_w, w->final_b, BT, D, dit_patch_out(c));
    ops->unpatchify_forward(out, e->out_tokens, B, dit_out_channels(c), S, S, c->patch);
}

// Routers reading the class: the rows sorted by width pattern, each group of equal patterns run
// as one narrowed batch, the outputs put back in the caller's order.
static void run_grouped(DitInfer *e, const float *x, int B, float *out) {
    const Ops *ops = e->ops;
    const DitConfig *c = &e->m->cfg;
    size_t LH = (size_t)c->depth * c->heads, MW = (size_t)dit_mod_width(c);
    size_t image = (size_t)c->in_channels * c->input_size * c->input_size;
    size_t out_image = image / c->in_channels * dit_out_channels(c);
    int groups = group_rows_by_widths(e, B);
    e->stats.width_groups = groups;
    e->stats.macs += 2.0 * B * c->depth * (c->heads - 1) * c->hidden; // both width routers, every row
    if (groups == 1) {
        RowPass pass = {.heads = e->row_heads, .groups = e->row_groups, .mod = e->mod, .share = 1.0};
        run_rows(e, x, B, &pass, out);
        return;
    }
    ops->upload(e->order, e->host_order, (size_t)B * sizeof(int32_t));
    ops->upload(e->inverse, e->host_inverse, (size_t)B * sizeof(int32_t));
    ops->gather_blocks(e->x_sorted, x, e->order, 1, B, (int)image, B);
    ops->gather_blocks(e->mod_sorted, e->mod, e->order, 1, B, (int)MW, B);
    for (int g = 0; g < groups; g++) {
        int first = e->group_start[g], n = e->group_start[g + 1] - first, row = e->host_order[first];
        RowPass pass = {.heads = e->row_heads + row * LH,
                        .groups = e->row_groups + row * LH,
                        .mod = e->mod_sorted + first * MW,
                        .row_ids = e->host_order + first,
                        .share = (double)n / B};
        run_rows(e, e->x_sorted + first * image, n, &pass, e->out_sorted + first * out_image);
    }
    ops->gather_blocks(out, e->out_sorted, e->inverse, 1, B, (int)out_image, B);
}

void dit_infer_forward(DitInfer *e, const float *x, float t, const int32_t *y, int B, float *out) {
    if (B > e->capacity) die("internal: batch %d exceeds the engine's %d", B, e->capacity);
    const DitConfig *c = &e->m->cfg;
    int L = c->depth;
    memset(&e->stats, 0, sizeof(e->stats));
    embed_conditions(e, t, y, B);
    if (e->per_row) {
        run_grouped(e, x, B, out);
    } else {
        const WidthEntry *widths = e->dynamic ? widths_at(e, t) : NULL;
        RowPass pass = {.heads = widths ? widths->heads : NULL,
                        .groups = widths ? widths->groups : NULL,
                        .mod = e->mod,
                        .share = 1.0};
        e->stats.width_groups = 1;
        run_rows(e, x, B, &pass, out);
    }
    e->stats.head_keep /= L;
    e->stats.group_keep /= L;
    e->stats.token_keep /= L;
    e->stats.macs += dit_outside_block_macs(c) * B;
    e->stats.static_macs = dit_forward_macs(c) * B;
}
