// tests/parity_optim.c: applies dydit's optimizer (AdamW through the Ops table, then the EMA) to
// the parameters and gradients of a file written by tests/ref/optim_case.py, and writes the state
// for comparison with torch.optim.AdamW. Usage: parity_optim IN.safetensors OUT.safetensors
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "data/safetensors.h"
#include "optim/optimizer.h"

static double meta_number(const StFile *f, const char *key) {
    const char *v = st_meta(f, key);
    double x;
    if (!v || parse_double(v, &x)) die("%s: metadata '%s' missing or not a number", st_path(f), key);
    return x;
}

static float *read_vector(const StFile *f, const char *name, int64_t *n) {
    const StTensor *t = st_find(f, name);
    if (!t || t->ndim != 1) die("%s: want a 1-D tensor '%s'", st_path(f), name);
    *n = t->shape[0];
    float *x = xmalloc((size_t)*n * sizeof(float));
    char err[512];
    if (st_read_f32(f, t, x, err, sizeof(err))) die("%s", err);
    return x;
}

int main(int argc, char **argv) {
    if (argc != 3) die("usage: parity_optim IN.safetensors OUT.safetensors");
    char err[512];
    StFile *f = st_open(argv[1], err, sizeof(err));
    if (!f) die("%s", err);
    OptimConfig cfg = optim_config_default();
    cfg.lr = meta_number(f, "lr");
    cfg.beta1 = meta_number(f, "beta1");
    cfg.beta2 = meta_number(f, "beta2");
    cfg.eps = meta_number(f, "eps");
    cfg.weight_decay = meta_number(f, "weight_decay");
    cfg.ema_decay = meta_number(f, "ema_decay");
    int steps = (int)meta_number(f, "steps");
    int64_t n, ng;
    float *param = read_vector(f, "param", &n);
    float *ema = xmalloc((size_t)n * sizeof(float)), *m = xcalloc((size_t)n, sizeof(float)),
          *v = xcalloc((size_t)n, sizeof(float));
    memcpy(ema, param, (size_t)n * sizeof(float));

    Optimizer opt;
    optim_init(&opt, &ops_cpu, &cfg);
    for (int s = 0; s < steps; s++) {
        char name[16];
        snprintf(name, sizeof(name), "grad%d", s + 1);
        float *grad = read_vector(f, name, &ng);
        if (ng != n) die("%s: '%s' has %lld elements, want %lld", argv[1], name, (long long)ng, (long long)n);
        OptimStepInfo info = optim_step(&opt, s, optim_grad_norm(&opt, grad, (size_t)n), param, grad, m, v, (size_t)n);
        if (!info.updated) die("the optimizer skipped step %d", s);
        optim_ema_update(&opt, ema, param, (size_t)n);
        free(grad);
    }
    StWriter *w = st_writer_new();
    int64_t shape[1] = {n};
    st_writer_add(w, "param", ST_F32, 1, shape, param);
    st_writer_add(w, "exp_avg", ST_F32, 1, shape, m);
    st_writer_add(w, "exp_avg_sq", ST_F32, 1, shape, v);
    st_writer_add(w, "ema", ST_F32, 1, shape, ema);
    if (st_writer_save(w, argv[2], err, sizeof(err))) die("%s", err);
    st_writer_free(w);
    st_close(f);
    free(param), free(ema), free(m), free(v);
    return 0;
}
