// tests/test_dydit_infer.c: the inference engine against the training-form forward. The dynamic
// engine (packed head and group slices, gathered kept tokens) must compute what the masked forward
// computes in eval mode, up to float32 rounding, with identical token decisions: on random
// DyDiTs whose samples keep different numbers of tokens, with a layer that keeps only head 0 and
// group 0, a layer that drops every token, and a layer with everything on. The static engine
// must equal the plain forward, for a DiT and for a DyDiT's complete path.
#include <string.h>

#include "model/dit_infer.h"
#include "model/init.h"
#include "tests/fd.h"

static DitConfig config(int dynamic, int depth, int hidden, int heads, int patch, int size) {
    DitConfig c = dit_config_default();
    c.depth = depth;
    c.hidden = hidden;
    c.heads = heads;
    c.patch = patch;
    c.in_channels = 3;
    c.input_size = size;
    c.num_classes = 5;
    c.frequency_size = 32;
    c.dynamic = dynamic;
    return c;
}

static void random_weights(DitModel *m, uint32_t stream) {
    for (int i = 0; i < m->table.count; i++) {
        const TensorInfo *t = &m->table.tensors[i];
        if (!strcmp(t->name, "pos_embed")) continue;
        double fan_in = t->ndim > 1 ? (double)t->numel / t->shape[0] : 4.0;
        // width-router biases spread decisions; small token-router weights and a zero output bias put
        // token logits around 0, so samples keep different numbers of tokens
        float sd = (float)(0.8 / sqrt(fan_in));
        if (strstr(t->name, "_rate.router.bias")) sd = 1.0f;
        if (strstr(t->name, "token_selection")) sd = strstr(t->name, "mlp_head.2.bias") ? 0.0f : sd * 0.5f;
        fill_normal(m->params + t->offset, t->numel, sd, stream + (uint32_t)i);
    }
}

static void set_block_biases(DitModel *m, int l, float width, float token) {
    const DitConfig *c = &m->cfg;
    int H = c->heads;
    for (int h = 0; h < H - 1; h++) {
        m->w.attn_router_b[l * (H - 1) + h] = width;
        m->w.mlp_router_b[l * (H - 1) + h] = width;
    }
    if (!isnan(token)) m->w.token_fc2_b[l] = token;
}

static void compare(const char *label, DitConfig cfg, int B, float t, int special_layers, int dynamic) {
    DitModel m;
    dit_model_create(&m, &cfg, &ops_cpu);
    dit_model_plan(&m, B);
    dit_init_host(&cfg, &m.table, m.params, 3);
    random_weights(&m, 40);
    if (special_layers) {
        set_block_biases(&m, 0, -100.0f, NAN);   // only head 0 and group 0
        set_block_biases(&m, 1, 0.0f, -100.0f);  // every token dropped
        set_block_biases(&m, 2, 100.0f, 100.0f); // everything on
    }
    size_t nin = (size_t)B * cfg.in_channels * cfg.input_size * cfg.input_size;
    size_t nout = (size_t)B * dit_out_channels(&cfg) * cfg.input_size * cfg.input_size;
    fill_normal(m.act.x, nin, 1, 9);
    float *ts = malloc(sizeof(float) * B), *out = malloc(nout * sizeof(float));
    int32_t *y = malloc(sizeof(int32_t) * B);
    for (int b = 0; b < B; b++) {
        ts[b] = t;
        y[b] = b % (cfg.num_classes + 1); // the null class too, as guidance batches have
    }
    DitRouting eval = dit_routing_eval();
    eval.complete = !dynamic;
    dit_forward(&m, ts, y, B, &eval);

    DitInfer *e = dit_infer_create(&m, B, dynamic);
    dit_infer_forward(e, m.act.x, t, y, B, out);
    double err = rel_error(out, m.act.out, nout);
    char name[128];
    snprintf(name, sizeof(name), "infer.%s.equals_masked_forward", label);
    check(err < 1e-5, name, "rel %.2e", err);
    if (dynamic) {
        int T = dit_tokens(&cfg);
        size_t nt = (size_t)B * cfg.depth * T;
        int same = memcmp(dit_infer_token_keep(e), m.act.token_mask, nt * sizeof(float)) == 0;
        int low = T, high = 0; // kept tokens per sample in block 0
        for (int b = 0; b < B; b++) {
            int kept = 0;
            for (int k = 0; k < T; k++)
                kept += m.act.token_mask[((size_t)b * cfg.depth + (special_layers ? 3 : 0)) * T + k] > 0;
            low = kept < low ? kept : low;
            high = kept > high ? kept : high;
        }
        InferStats s = dit_infer_stats(e);
        snprintf(name, sizeof(name), "infer.%s.same_token_decisions", label);
        check(same, name,
              "kept per sample %d..%d of %d; heads %.2f groups %.2f tokens %.2f on; %.3g of %.3g static MACs", low,
              high, T, s.head_keep, s.group_keep, s.token_keep, s.macs, s.static_macs);
        // the keep fractions against the masked forward's masks, over every row and layer
        double heads_on = 0, tokens_on = 0;
        for (size_t i = 0; i < (size_t)B * cfg.depth * cfg.heads; i++) heads_on += m.act.head_mask[i] > 0;
        for (size_t i = 0; i < nt; i++) tokens_on += m.act.token_mask[i] > 0;
        heads_on /= (double)B * cfg.depth * cfg.heads;
        tokens_on /= (double)nt;
        snprintf(name, sizeof(name), "infer.%s.keep_fractions", label);
        check(fabs(s.head_keep - heads_on) < 1e-9 && fabs(s.token_keep - tokens_on) < 1e-9, name,
              "heads %.4f vs masks %.4f, tokens %.4f vs %.4f", s.head_keep, heads_on, s.token_keep, tokens_on);
        int per_row = cfg.router_input == ROUTER_INPUT_CONDITION;
        if (per_row && !special_layers) { // the special layers force one pattern on every row
            snprintf(name, sizeof(name), "infer.%s.rows_grouped_by_pattern", label);
            check(s.width_groups > 1, name, "%d width patterns among %d rows", s.width_groups, B);
        }
        // a second call at the same timestep reuses the cached widths and packed slices (groups of
        // rows with their own patterns re-pack them in turn)
        long packs = dit_infer_repacks(e);
        dit_infer_forward(e, m.act.x, t, y, B, out);
        snprintf(name, sizeof(name), "infer.%s.%s", label, per_row ? "second_call_same" : "slices_reused");
        check((per_row || dit_infer_repacks(e) == packs) && rel_error(out, m.act.out, nout) == err, name,
              "%ld packs", packs);
    }
    dit_infer_destroy(e);
    free(ts), free(out), free(y);
    dit_model_destroy(&m);
}

int main(void) {
    compare("dit", config(0, 2, 48, 4, 2, 8), 3, 500.0f, 0, 0);
    compare("dydit_complete_static", config(1, 2, 48, 4, 2, 8), 3, 500.0f, 0, 0);
    compare("dydit_random", config(1, 3, 64, 4, 2, 8), 4, 250.0f, 0, 1);
    compare("dydit_special_layers", config(1, 4, 48, 3, 2, 8), 5, 999.0f, 1, 1);
    compare("dydit_head_dim72", config(1, 2, 144, 2, 4, 8), 2, 10.0f, 0, 1);
    // routers reading the class: the rows of one batch (the null label's included) take different
    // width patterns, which the engine runs as separate narrowed groups
    DitConfig condition = config(1, 3, 64, 4, 2, 8);
    condition.router_input = ROUTER_INPUT_CONDITION;
    compare("dydit_condition_router", condition, 6, 250.0f, 0, 1);
    compare("dydit_condition_router_special_layers", (condition.depth = 4, condition), 6, 999.0f, 1, 1);
    return check_exit();
}
