// tests/test_dydit.c: the DyDiT graph. At initialisation every head, group and token is on, so the
// dynamic path equals the complete path exactly and the FLOPs ratio is 1. With mixed masks held
// fixed (router noise chosen so that every decision lies far from its threshold), every
// non-router parameter's gradient matches finite differences of L = <R, out>: the masks act
// exactly where docs/algorithm.md 3.5 puts them. The straight-through estimator adds a surrogate gradient through
// the routers' inputs that finite differences of hard masks cannot see; a temperature of 1e9 makes
// it vanish (soft'(z) / tau <= 0.25 / tau) without changing any decision, so the fixed-mask
// gradient is checked in isolation. The surrogate itself, and the router gradients, are checked
// against PyTorch's autograd by tests/parity.sh.
#include <string.h>

#include "model/dit.h"
#include "model/init.h"
#include "tests/fd.h"

static DitConfig small_dydit(void) {
    DitConfig c = dit_config_default();
    c.depth = 2;
    c.hidden = 32;
    c.heads = 4;
    c.patch = 2;
    c.in_channels = 3;
    c.input_size = 8;
    c.num_classes = 5;
    c.frequency_size = 16;
    c.dynamic = 1;
    return c;
}

typedef struct {
    DitModel *m;
    float *t, *R;
    int32_t *y;
    int B;
    DitRouting routing;
} Ctx;

static size_t out_numel(const DitModel *m, int B) {
    return (size_t)B * dit_out_channels(&m->cfg) * m->cfg.input_size * m->cfg.input_size;
}

static double loss(void *p) {
    Ctx *c = p;
    dit_forward(c->m, c->t, c->y, c->B, &c->routing);
    return dot_f64(c->m->act.out, c->R, out_numel(c->m, c->B));
}

static int is_router(const char *name) { return strstr(name, "_rate.") || strstr(name, "token_selection."); }

// Router noise that puts every decision at distance `margin` (or more) from the threshold, on the
// side a random sign picks: z + g = sign * (margin + u).
static void fix_decisions(float *noise, const float *logits, size_t n, float margin, uint32_t stream) {
    for (size_t i = 0; i < n; i++) {
        uint32_t bits = rng_u32(99, RNG_DATA, 0, stream, i);
        float side = (bits & 1) ? 1.0f : -1.0f, extra = (float)rng_open01(bits);
        noise[i] = side * (margin + extra) - logits[i];
    }
}

static double mean_of(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s / (double)n;
}

int main(void) {
    DitConfig cfg = small_dydit();
    DitModel m;
    dit_model_create(&m, &cfg, &ops_cpu);
    int B = 3, L = cfg.depth, H = cfg.heads, T = dit_tokens(&cfg);
    dit_model_plan(&m, B);
    dit_init_host(&cfg, &m.table, m.params, 7);
    for (int i = 0; i < m.table.count; i++) { // DiT's zero-initialised layers would hide the masks' effect
        const TensorInfo *ti = &m.table.tensors[i];
        if (strstr(ti->name, "adaLN") || strstr(ti->name, "final_layer"))
            fill_normal(m.params + ti->offset, ti->numel, 0.15f, 300 + (uint32_t)i);
    }
    size_t nin = (size_t)B * cfg.in_channels * cfg.input_size * cfg.input_size, nout = out_numel(&m, B);
    fill_normal(m.act.x, nin, 1, 1);
    float t[3] = {0, 500, 999};
    int32_t y[3] = {0, 4, 5};

    // routers at their initialisation: everything on, the dynamic path is the complete path
    DitRouting eval = dit_routing_eval(), complete = eval;
    complete.complete = 1;
    float *out_complete = malloc(nout * sizeof(float));
    dit_forward(&m, t, y, B, &complete);
    memcpy(out_complete, m.act.out, nout * sizeof(float));
    dit_forward(&m, t, y, B, &eval);
    size_t nh = (size_t)B * L * H, nt = (size_t)B * L * T;
    check(mean_of(m.act.head_mask, nh) == 1 && mean_of(m.act.chan_mask, nh) == 1 &&
              mean_of(m.act.token_mask, nt) == 1 && mean_of(m.act.flops_ratio, B) == 1,
          "dydit.init_all_on", "router biases 15 and 35: every head, group and token kept, ratio 1");
    check_true(memcmp(out_complete, m.act.out, nout * sizeof(float)) == 0, "dydit.init_dynamic_equals_complete");

    // mixed masks, held fixed by the noise
    for (int i = 0; i < m.table.count; i++) {
        const TensorInfo *ti = &m.table.tensors[i];
        if (is_router(ti->name) && strstr(ti->name, "bias"))
            fill_normal(m.params + ti->offset, ti->numel, 2.0f, 400 + (uint32_t)i);
    }
    DitRouting noisy = eval;
    noisy.noisy = 1;
    memset(m.act.noise_attn, 0, nh / H * (H - 1) * sizeof(float));
    memset(m.act.noise_mlp, 0, nh / H * (H - 1) * sizeof(float));
    memset(m.act.noise_token, 0, nt * sizeof(float));
    dit_forward(&m, t, y, B, &noisy);
    fix_decisions(m.act.noise_attn, m.act.attn_logits, nh / H * (H - 1), 3.0f, 1);
    fix_decisions(m.act.noise_mlp, m.act.mlp_logits, nh / H * (H - 1), 3.0f, 2);
    // token logits are stored (L, B, T), their noise (B, L, T)
    for (int l = 0; l < L; l++)
        for (int b = 0; b < B; b++)
            for (int k = 0; k < T; k++) {
                float z = m.act.token_logits[((size_t)l * m.capacity + b) * T + k];
                fix_decisions(&m.act.noise_token[((size_t)b * L + l) * T + k], &z, 1, 3.0f,
                              3 + (uint32_t)(((size_t)b * L + l) * T + k));
            }
    dit_forward(&m, t, y, B, &noisy);
    double heads_on = mean_of(m.act.head_mask, nh), groups_on = mean_of(m.act.chan_mask, nh);
    double tokens_on = mean_of(m.act.token_mask, nt);
    check(heads_on > 0.3 && heads_on < 0.9 && groups_on > 0.3 && groups_on < 0.9 && tokens_on > 0.2 && tokens_on < 0.8,
          "dydit.masks_mixed", "heads %.2f groups %.2f tokens %.2f on", heads_on, groups_on, tokens_on);
    int column0 = 1;
    for (size_t r = 0; r < (size_t)B * L; r++) column0 &= m.act.head_mask[r * H] == 1 && m.act.chan_mask[r * H] == 1;
    check_true(column0, "dydit.index0_always_on");

    float *R = malloc(nout * sizeof(float));
    fill_normal(R, nout, 1, 2);
    DitRouting fixed = noisy;
    fixed.tau = 1e9f;
    Ctx ctx = {&m, t, R, y, B, fixed};
    loss(&ctx);
    float *masks_before = malloc(nt * sizeof(float));
    memcpy(masks_before, m.act.token_mask, nt * sizeof(float));
    memcpy(m.grad.dout, R, nout * sizeof(float));
    memset(m.grads, 0, m.table.total * sizeof(float));
    dit_backward(&m, B);
    double worst = 0;
    for (int i = 0; i < m.table.count; i++) {
        const TensorInfo *ti = &m.table.tensors[i];
        if (!ti->trainable || is_router(ti->name)) continue;
        char name[128];
        snprintf(name, sizeof(name), "dydit.grad.%s", ti->name);
        // Derivatives here range from ~0.1 to ~60, and the float32 forward leaves finite differences with an
        // absolute noise of ~5e-4 at h = 1e-2 (it scales as 1/h, so it is rounding): directions whose
        // derivative is below 1 are judged against 1.
        worst = fmax(worst, fd_directional_floor(name, m.params + ti->offset, ti->numel, m.grads + ti->offset, loss,
                                                 &ctx, 2e-2, 1e-3, 500 + (uint32_t)i, 1.0));
    }
    loss(&ctx);
    check_true(memcmp(masks_before, m.act.token_mask, nt * sizeof(float)) == 0, "dydit.masks_held_fixed");
    printf("worst relative finite-difference error with mixed masks: %.2e\n", worst);
    // at tau 5 the router weights receive straight-through gradients
    ctx.routing = noisy;
    loss(&ctx);
    memset(m.grads, 0, m.table.total * sizeof(float));
    dit_backward(&m, B);
    double router_grad = 0;
    for (int i = 0; i < m.table.count; i++) {
        const TensorInfo *ti = &m.table.tensors[i];
        if (!is_router(ti->name)) continue;
        for (size_t e = 0; e < ti->numel; e++) router_grad += fabs(m.grads[ti->offset + e]);
    }
    check(router_grad > 0, "dydit.routers_get_gradients", "sum |grad| %.3g", router_grad);
    dit_model_destroy(&m);
    return check_exit();
}
