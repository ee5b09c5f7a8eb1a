// tests/test_dit_grad.c: the whole DiT backward (every parameter tensor of a small model with two
// blocks) against finite differences of L = <R, DiT(x, t, y)>, plus structural checks of the
// forward (adaLN-Zero identity at initialisation, batch independence).
#include <string.h>

#include "model/dit.h"
#include "model/init.h"
#include "tests/fd.h"

static DitConfig small_config(void) {
    DitConfig c = dit_config_default();
    c.depth = 2;
    c.hidden = 24;
    c.heads = 3;
    c.patch = 2;
    c.in_channels = 3;
    c.input_size = 6;
    c.num_classes = 5;
    c.frequency_size = 16;
    return c;
}

typedef struct {
    DitModel *m;
    float *t;
    int32_t *y;
    float *R;
    int B;
} Ctx;

static size_t out_numel(const DitModel *m, int B) {
    return (size_t)B * dit_out_channels(&m->cfg) * m->cfg.input_size * m->cfg.input_size;
}

static double loss(void *p) {
    Ctx *c = p;
    dit_forward(c->m, c->t, c->y, c->B, NULL);
    return dot_f64(c->m->act.out, c->R, out_numel(c->m, c->B));
}

// Random weights everywhere (adaLN and final layer included: DiT's zero init would hide most paths).
static void randomise(DitModel *m) {
    for (int i = 0; i < m->table.count; i++) {
        const TensorInfo *t = &m->table.tensors[i];
        if (!strcmp(t->name, "pos_embed")) continue;
        double fan_in = t->ndim > 1 ? (double)t->numel / t->shape[0] : 4.0;
        fill_normal(m->params + t->offset, t->numel, (float)(0.8 / sqrt(fan_in)), 100 + (uint32_t)i);
    }
}

int main(void) {
    DitConfig cfg = small_config();
    DitModel m;
    dit_model_create(&m, &cfg, &ops_cpu);
    int B = 3;
    dit_model_plan(&m, B);
    dit_init_host(&cfg, &m.table, m.params, 7);

    // adaLN-Zero: at initialisation every block is the identity and the output is exactly zero
    size_t nin = (size_t)B * cfg.in_channels * cfg.input_size * cfg.input_size;
    fill_normal(m.act.x, nin, 1, 1);
    float t[3] = {0, 500, 999};
    int32_t y[3] = {0, 4, 5};
    dit_forward(&m, t, y, B, NULL);
    size_t nout = out_numel(&m, B);
    double mx = 0;
    for (size_t i = 0; i < nout; i++) mx = fmax(mx, fabs(m.act.out[i]));
    check(mx == 0.0, "dit.init_output_is_zero", "max |out| %.3g", mx);

    randomise(&m);
    float *R = malloc(nout * sizeof(float));
    fill_normal(R, nout, 1, 2);
    Ctx ctx = {&m, t, y, R, B};
    loss(&ctx);
    memcpy(m.grad.dout, R, nout * sizeof(float));
    memset(m.grads, 0, m.table.total * sizeof(float));
    dit_backward(&m, B);

    // each sample's output depends only on its own inputs
    float *out_all = malloc(nout * sizeof(float));
    memcpy(out_all, m.act.out, nout * sizeof(float));
    float x1[512];
    size_t per = nin / B;
    memcpy(x1, m.act.x + per, per * sizeof(float));
    memcpy(m.act.x, x1, per * sizeof(float));
    dit_forward(&m, t + 1, y + 1, 1, NULL);
    double diff = rel_error(m.act.out, out_all + nout / B, nout / B);
    check(diff < 1e-6, "dit.batch_independence", "rel %.2e", diff);
    // restore the batch input for the gradient checks
    fill_normal(m.act.x, nin, 1, 1);

    double worst = 0;
    for (int i = 0; i < m.table.count; i++) {
        const TensorInfo *ti = &m.table.tensors[i];
        char name[128];
        snprintf(name, sizeof(name), "dit.grad.%s", ti->name);
        if (!ti->trainable) {
            double g = 0;
            for (size_t e = 0; e < ti->numel; e++) g = fmax(g, fabs(m.grads[ti->offset + e]));
            check(g == 0.0, name, "frozen: max |grad| %.3g", g);
            continue;
        }
        double err = fd_directional(name, m.params + ti->offset, ti->numel, m.grads + ti->offset, loss, &ctx, 1e-2,
                                    1e-3, 200 + (uint32_t)i);
        worst = fmax(worst, err);
    }
    printf("worst relative finite-difference error over all tensors: %.2e\n", worst);
    dit_model_destroy(&m);
    return check_exit();
}
