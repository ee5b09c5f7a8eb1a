#include "model/init.h"

#include <math.h>
#include <string.h>

#include "common/util.h"
#include "kernels/philox.h"

static void pos_embed_1d(double *out, int half, int pos) {
    // out[k] = sin(pos * w_k), out[half/2 + k] = cos(pos * w_k), w_k = 10000^(-k / (half/2))
    int quarter = half / 2;
    for (int k = 0; k < quarter; k++) {
        double w = 1.0 / pow(10000.0, (double)k / quarter);
        out[k] = sin(pos * w);
        out[quarter + k] = cos(pos * w);
    }
}

void dit_pos_embed_fill(const DitConfig *cfg, float *out) {
    int D = cfg->hidden, grid = cfg->input_size / cfg->patch, half = D / 2;
    double *col = xmalloc(sizeof(double) * (size_t)half), *row = xmalloc(sizeof(double) * (size_t)half);
    for (int i = 0; i < grid; i++) {
        pos_embed_1d(row, half, i);
        for (int j = 0; j < grid; j++) {
            pos_embed_1d(col, half, j);
            float *o = out + ((size_t)i * grid + j) * D;
            for (int k = 0; k < half; k++) {
                o[k] = (float)col[k];
                o[half + k] = (float)row[k];
            }
        }
    }
    free(col);
    free(row);
}

enum InitKind {
    INIT_ZERO,
    INIT_XAVIER,
    INIT_NORMAL_002,
    INIT_POS_EMBED,
    INIT_WIDTH_ROUTER_BIAS,
    INIT_TOKEN_ROUTER_BIAS
};

static enum InitKind init_kind(const TensorInfo *t) {
    const char *n = t->name;
    if (strcmp(n, "pos_embed") == 0) return INIT_POS_EMBED;
    if (strstr(n, "_rate.router.bias")) return INIT_WIDTH_ROUTER_BIAS;
    if (strstr(n, "token_selection.mlp_head.2.bias")) return INIT_TOKEN_ROUTER_BIAS;
    if (ends_with(n, ".bias")) return INIT_ZERO;
    if (strstr(n, "adaLN_modulation") || starts_with(n, "final_layer.linear")) return INIT_ZERO;
    if (starts_with(n, "y_embedder.") || starts_with(n, "t_embedder.")) return INIT_NORMAL_002;
    return INIT_XAVIER;
}

void dit_init_host(const DitConfig *cfg, const TensorTable *table, float *host, uint64_t seed) {
    for (int i = 0; i < table->count; i++) {
        const TensorInfo *t = &table->tensors[i];
        float *p = host + t->offset;
        switch (init_kind(t)) {
        case INIT_ZERO:
            memset(p, 0, t->numel * sizeof(float));
            break;
        case INIT_POS_EMBED:
            dit_pos_embed_fill(cfg, p);
            break;
        case INIT_WIDTH_ROUTER_BIAS:
        case INIT_TOKEN_ROUTER_BIAS: {
            // every head, group and token starts far on (docs/algorithm.md 3.6): logistic noise exceeds 15 with
            // probability ~3e-7, so fine-tuning starts from the full pretrained DiT
            float bias = init_kind(t) == INIT_WIDTH_ROUTER_BIAS ? DYDIT_WIDTH_ROUTER_BIAS : DYDIT_TOKEN_ROUTER_BIAS;
            for (size_t e = 0; e < t->numel; e++) p[e] = bias;
            break;
        }
        case INIT_NORMAL_002:
            for (size_t e = 0; e < t->numel; e++) p[e] = 0.02f * rng_normal(seed, RNG_INIT, 0, (uint32_t)i, e);
            break;
        case INIT_XAVIER: {
            // A weight (out, in, ...) acts as a Linear from prod(in, ...) to out.
            double fan_out = (double)t->shape[0], fan_in = (double)t->numel / fan_out;
            double bound = sqrt(6.0 / (fan_in + fan_out));
            for (size_t e = 0; e < t->numel; e++) {
                double u = rng_open01(rng_u32(seed, RNG_INIT, 0, (uint32_t)i, e));
                p[e] = (float)((2.0 * u - 1.0) * bound);
            }
            break;
        }
        }
    }
}

void dydit_set_router_biases(const TensorTable *table, float *host, float width, float token) {
    for (int i = 0; i < table->count; i++) {
        const TensorInfo *t = &table->tensors[i];
        enum InitKind kind = init_kind(t);
        if (kind != INIT_WIDTH_ROUTER_BIAS && kind != INIT_TOKEN_ROUTER_BIAS) continue;
        float bias = kind == INIT_WIDTH_ROUTER_BIAS ? width : token;
        for (size_t e = 0; e < t->numel; e++) host[t->offset + e] = bias;
    }
}
