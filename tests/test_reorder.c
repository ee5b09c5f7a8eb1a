// tests/test_reorder.c: importance ordering permutes heads and MLP units without changing what
// the network computes, and really puts the highest-scoring head and units first.
#include <string.h>

#include "model/dit.h"
#include "model/init.h"
#include "model/reorder.h"
#include "tests/fd.h"

static void random_weights(DitModel *m) {
    for (int i = 0; i < m->table.count; i++) {
        const TensorInfo *t = &m->table.tensors[i];
        if (!strcmp(t->name, "pos_embed")) continue;
        double fan_in = t->ndim > 1 ? (double)t->numel / t->shape[0] : 4.0;
        fill_normal(m->params + t->offset, t->numel, (float)(0.8 / sqrt(fan_in)), 700 + (uint32_t)i);
    }
}

static void test_config(const char *label, DitConfig cfg) {
    DitModel m;
    dit_model_create(&m, &cfg, &ops_cpu);
    int B = 2;
    dit_model_plan(&m, B);
    dit_init_host(&cfg, &m.table, m.params, 1);
    random_weights(&m);
    size_t nin = (size_t)B * cfg.in_channels * cfg.input_size * cfg.input_size;
    size_t nout = (size_t)B * dit_out_channels(&cfg) * cfg.input_size * cfg.input_size;
    fill_normal(m.act.x, nin, 1, 5);
    float t[2] = {3, 700};
    int32_t y[2] = {1, 2};
    DitRouting complete = dit_routing_eval();
    complete.complete = 1;
    dit_forward(&m, t, y, B, &complete);
    float *before = malloc(nout * sizeof(float));
    memcpy(before, m.act.out, nout * sizeof(float));

    dit_reorder_by_importance(&cfg, &m.table, m.params);
    dit_forward(&m, t, y, B, &complete);
    double err = rel_error(m.act.out, before, nout);
    char name[96];
    snprintf(name, sizeof(name), "reorder.%s.output_unchanged", label);
    check(err < 1e-6, name, "rel %.2e (sums in another order)", err);

    int M = dit_mlp_hidden(&cfg), sorted = 1;
    double *scores = malloc(sizeof(double) * (size_t)(M > cfg.heads ? M : cfg.heads));
    for (int l = 0; l < cfg.depth; l++) {
        dit_head_scores(&cfg, &m.table, m.params, l, scores);
        for (int h = 1; h < cfg.heads; h++) sorted &= scores[h - 1] >= scores[h];
        dit_unit_scores(&cfg, &m.table, m.params, l, scores);
        for (int j = 1; j < M; j++) sorted &= scores[j - 1] >= scores[j];
    }
    snprintf(name, sizeof(name), "reorder.%s.scores_descending", label);
    check_true(sorted, name);
    free(scores);
    free(before);
    dit_model_destroy(&m);
}

int main(void) {
    DitConfig c = dit_config_default();
    c.depth = 2;
    c.hidden = 48;
    c.heads = 4;
    c.patch = 2;
    c.in_channels = 3;
    c.input_size = 8;
    c.num_classes = 4;
    test_config("dit", c);
    c.dynamic = 1; // routers at their initialisation: the complete path is the DiT
    test_config("dydit_complete_path", c);
    return check_exit();
}
