#include "model/weights.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "model/init.h"

/* ---------------------------------------------------------------------------------------------
 * Naming: where the file keeps each official tensor
 * ------------------------------------------------------------------------------------------- */

typedef enum { NAMING_OFFICIAL, NAMING_DIFFUSERS } Naming;

enum { SOURCE_NAME_MAX = TENSOR_NAME_MAX + 64, SOURCE_PARTS_MAX = 3 };

// The file tensors that make up one table tensor, concatenated along dim 0 (diffusers splits qkv).
typedef struct {
    int count;
    char name[SOURCE_PARTS_MAX][SOURCE_NAME_MAX];
} Sources;

// docs/algorithm.md 7.4. diffusers copies the embedders into every block; block 0's copy is the one read.
static const struct {
    const char *official, *diffusers;
} diffusers_global[] = {
    {"pos_embed", "pos_embed.pos_embed"},
    {"x_embedder.proj.", "pos_embed.proj."},
    {"t_embedder.mlp.0.", "transformer_blocks.0.norm1.emb.timestep_embedder.linear_1."},
    {"t_embedder.mlp.2.", "transformer_blocks.0.norm1.emb.timestep_embedder.linear_2."},
    {"y_embedder.", "transformer_blocks.0.norm1.emb.class_embedder."},
    {"final_layer.adaLN_modulation.1.", "proj_out_1."},
    {"final_layer.linear.", "proj_out_2."},
};

// Inside "blocks.{i}." -> "transformer_blocks.{i}.".
static const struct {
    const char *official, *diffusers[SOURCE_PARTS_MAX];
} diffusers_block[] = {
    {"adaLN_modulation.1.", {"norm1.linear."}},
    {"attn.qkv.", {"attn1.to_q.", "attn1.to_k.", "attn1.to_v."}},
    {"attn.proj.", {"attn1.to_out.0."}},
    {"mlp.fc1.", {"ff.net.0.proj."}},
    {"mlp.fc2.", {"ff.net.2."}},
};

#define COUNT_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

// Block names: "<prefix><index>.<rest>". Returns the start of rest and sets *block, or NULL. The
// index is plain decimal digits below a million, so hostile names cannot overflow it.
static const char *after_block_index(const char *name, const char *prefix, int *block) {
    size_t n = strlen(prefix);
    if (strncmp(name, prefix, n) != 0) return NULL;
    const char *s = name + n;
    long value = 0;
    int digits = 0;
    for (; *s >= '0' && *s <= '9' && digits < 7; s++, digits++) value = value * 10 + (*s - '0');
    if (digits == 0 || digits == 7 || *s != '.' || value >= 1000000) return NULL;
    *block = (int)value;
    return s + 1;
}

static void sources_of(Naming naming, const char *official, Sources *s) {
    s->count = 1;
    snprintf(s->name[0], SOURCE_NAME_MAX, "%s", official);
    if (naming == NAMING_OFFICIAL) return;
    for (int r = 0; r < COUNT_OF(diffusers_global); r++) {
        if (starts_with(official, diffusers_global[r].official)) {
            snprintf(s->name[0], SOURCE_NAME_MAX, "%s%s", diffusers_global[r].diffusers,
                     official + strlen(diffusers_global[r].official));
            return;
        }
    }
    int block;
    const char *rest = after_block_index(official, "blocks.", &block);
    if (!rest) return;
    for (int r = 0; r < COUNT_OF(diffusers_block); r++) {
        if (!starts_with(rest, diffusers_block[r].official)) continue;
        const char *tail = rest + strlen(diffusers_block[r].official);
        s->count = 0;
        for (int k = 0; k < SOURCE_PARTS_MAX && diffusers_block[r].diffusers[k]; k++, s->count++)
            snprintf(s->name[k], SOURCE_NAME_MAX, "transformer_blocks.%d.%s%s", block, diffusers_block[r].diffusers[k],
                     tail);
        return;
    }
}

static int detect_naming(const StFile *f, Naming *naming, char *err, int err_size) {
    if (st_find(f, "x_embedder.proj.weight"))
        *naming = NAMING_OFFICIAL;
    else if (st_find(f, "pos_embed.proj.weight"))
        *naming = NAMING_DIFFUSERS;
    else
        return fail_at(err, err_size, st_path(f),
                       "no 'x_embedder.proj.weight' (nor diffusers 'pos_embed.proj.weight'): not DiT weights");
    return 0;
}

// The file tensor holding an official single-part tensor, or NULL.
static const StTensor *find_official(const StFile *f, Naming naming, const char *official) {
    Sources s;
    sources_of(naming, official, &s);
    return st_find(f, s.name[0]);
}

/* ---------------------------------------------------------------------------------------------
 * Configuration: facts from shapes, metadata and hints, which must agree
 * ------------------------------------------------------------------------------------------- */

enum {
    F_DEPTH,
    F_HIDDEN,
    F_HEADS,
    F_PATCH,
    F_IN_CHANNELS,
    F_INPUT_SIZE,
    F_NUM_CLASSES,
    F_LEARN_SIGMA,
    F_MLP_RATIO,
    F_CLASS_DROPOUT,
    F_FREQUENCY_SIZE,
    F_DYNAMIC,
    F_ROUTER_INPUT,
    F_COUNT
};
// Also the metadata keys.
static const char *const field_names[F_COUNT] = {
    "depth",       "hidden",    "heads",         "patch",          "in_channels", "input_size",   "num_classes",
    "learn_sigma", "mlp_ratio", "class_dropout", "frequency_size", "dynamic",     "router_input",
};
static int field_is_float(int field) { return field == F_MLP_RATIO || field == F_CLASS_DROPOUT; }

// A field's value as a person reads it: router inputs by name, everything else as a number.
static const char *field_value_text(int field, double v, char *buf, size_t size) {
    if (field == F_ROUTER_INPUT) return v == ROUTER_INPUT_CONDITION ? "condition" : "timestep";
    snprintf(buf, size, "%g", v);
    return buf;
}

// Default when the label table is assumed to carry a null row (DiT's value).
static const float default_class_dropout = 0.1f;

typedef struct {
    const char *path;
    double value[F_COUNT];
    char from[F_COUNT][160]; // who said it; "" while unknown
    unsigned char by_flag[F_COUNT]; // first said by a command-line flag (learn_from_hints)
    int learning_flags;             // while learn_from_hints runs
    char *err;
    int err_size;
} Facts;

static int known(const Facts *k, int field) { return k->from[field][0] != '\0'; }

static int learn(Facts *k, int field, double v, const char *from) {
    if (!known(k, field)) {
        k->value[field] = v;
        snprintf(k->from[field], sizeof(k->from[field]), "%s", from);
        k->by_flag[field] = (unsigned char)k->learning_flags;
        return 0;
    }
    int same = field_is_float(field) ? (float)v == (float)k->value[field] : v == k->value[field];
    if (same) return 0;
    char said[32], earlier[32];
    return fail_at(k->err, k->err_size, k->path, "%s %s from %s disagrees with %s from %s", field_names[field],
                   field_value_text(field, v, said, sizeof(said)), from,
                   field_value_text(field, k->value[field], earlier, sizeof(earlier)), k->from[field]);
}

static int learn_preset(Facts *k, const char *name, const char *from) {
    DitConfig c = dit_config_default();
    if (dit_config_apply_preset(&c, name)) return -1;
    if (learn(k, F_DEPTH, c.depth, from) || learn(k, F_HIDDEN, c.hidden, from) || learn(k, F_HEADS, c.heads, from) ||
        learn(k, F_PATCH, c.patch, from))
        return -2;
    return 0;
}

static const StTensor *need(Facts *k, const StFile *f, Naming naming, const char *official, int ndim) {
    Sources s;
    sources_of(naming, official, &s);
    const StTensor *t = st_find(f, s.name[0]);
    if (!t) {
        fail_at(k->err, k->err_size, k->path, "missing tensor '%s' (needed to infer the configuration)", s.name[0]);
        return NULL;
    }
    if (t->ndim != ndim) {
        char shape[160];
        st_shape_string(t, shape, sizeof(shape));
        fail_at(k->err, k->err_size, k->path, "tensor '%s' has shape %s; want %d dims", s.name[0], shape, ndim);
        return NULL;
    }
    return t;
}

// 1 + the largest i of "<prefix>{i}.*" names, 0 when there is none.
static int count_blocks(const StFile *f, const char *prefix) {
    int depth = 0;
    for (int i = 0; i < st_count(f); i++) {
        int block;
        if (after_block_index(st_tensor(f, i)->name, prefix, &block) && block + 1 > depth) depth = block + 1;
    }
    return depth;
}

// docs/algorithm.md 7.6. *label_rows receives the row count of the label table.
static int learn_from_shapes(Facts *k, const StFile *f, Naming naming, int64_t *label_rows) {
    const char *from = "the tensor shapes";
    const StTensor *x = need(k, f, naming, "x_embedder.proj.weight", 4);
    if (!x) return -1;
    int64_t D = x->shape[0], p = x->shape[2];
    if (x->shape[2] != x->shape[3])
        return fail_at(k->err, k->err_size, k->path, "patch embedding kernel is %lldx%lld, not square",
                       (long long)x->shape[2], (long long)x->shape[3]);
    if (D < 1 || p < 1 || D > INT_MAX || p > 4096)
        return fail_at(k->err, k->err_size, k->path, "patch embedding weight has an implausible shape");
    if (learn(k, F_HIDDEN, (double)D, from) || learn(k, F_IN_CHANNELS, (double)x->shape[1], from) ||
        learn(k, F_PATCH, (double)p, from))
        return -1;
    int depth = count_blocks(f, naming == NAMING_OFFICIAL ? "blocks." : "transformer_blocks.");
    if (depth == 0) return fail_at(k->err, k->err_size, k->path, "no transformer block tensors");
    // Every block below the highest index must exist (a stray name must not inflate the model).
    for (int i = 0; i < depth; i++) {
        char fc1[48];
        snprintf(fc1, sizeof(fc1), "blocks.%d.mlp.fc1.weight", i);
        if (!find_official(f, naming, fc1)) {
            Sources s;
            sources_of(naming, fc1, &s);
            return fail_at(k->err, k->err_size, k->path, "missing tensor '%s' (the file names blocks up to %d)",
                           s.name[0], depth - 1);
        }
    }
    if (learn(k, F_DEPTH, depth, from)) return -1;

    const StTensor *fc1, *t0, *y, *out;
    if (!(fc1 = need(k, f, naming, "blocks.0.mlp.fc1.weight", 2)) ||
        !(t0 = need(k, f, naming, "t_embedder.mlp.0.weight", 2)) ||
        !(y = need(k, f, naming, "y_embedder.embedding_table.weight", 2)) ||
        !(out = need(k, f, naming, "final_layer.linear.weight", 2)))
        return -1;
    if (learn(k, F_MLP_RATIO, (double)((float)fc1->shape[0] / (float)D), from) ||
        learn(k, F_FREQUENCY_SIZE, (double)t0->shape[1], from))
        return -1;
    *label_rows = y->shape[0];

    int64_t out_rows = out->shape[0], c_in = x->shape[1];
    if (out_rows % (p * p) || (out_rows / (p * p) != c_in && out_rows / (p * p) != 2 * c_in))
        return fail_at(
            k->err, k->err_size, k->path,
            "final_layer.linear.weight has %lld rows; want patch^2 * in_channels = %lld or twice that (learn_sigma)",
            (long long)out_rows, (long long)(p * p * c_in));
    if (learn(k, F_LEARN_SIGMA, out_rows / (p * p) == 2 * c_in, from)) return -1;

    const StTensor *pos = find_official(f, naming, "pos_embed");
    if (pos) {
        int64_t tokens = pos->ndim == 3 ? pos->shape[1] : -1,
                grid = (int64_t)llround(sqrt((double)(tokens > 0 ? tokens : 0)));
        if (pos->ndim != 3 || pos->shape[0] != 1 || grid * grid != tokens)
            return fail_at(k->err, k->err_size, k->path, "pos_embed is not [1, T, D] with T a square number of tokens");
        if (learn(k, F_INPUT_SIZE, (double)(grid * p), "the pos_embed shape")) return -1;
    }
    // A DyDiT attention-head router has one output per head except the first (docs/algorithm.md 7.6).
    const StTensor *router = find_official(f, naming, "blocks.0.attn_rate.router.weight");
    if (router && router->ndim == 2 && learn(k, F_HEADS, (double)(router->shape[0] + 1), "the DyDiT router shape"))
        return -1;
    if (router && learn(k, F_DYNAMIC, 1, "the DyDiT router tensors")) return -1;
    return 0;
}

// Metadata facts, after the flags: a field a flag set, and the model preset when --model names one
// (or "custom"), are not read from the metadata, so that flags can correct wrong metadata.
static int learn_from_metadata(Facts *k, const StFile *f, const WeightsHints *h) {
    const char *format = st_meta(f, "format");
    if (format && strcmp(format, WEIGHTS_FORMAT) == 0) {
        const char *version = st_meta(f, "format_version");
        if (!version || strcmp(version, WEIGHTS_FORMAT_VERSION) != 0)
            return fail_at(k->err, k->err_size, k->path,
                           "%s format_version '%s' is not supported (this build reads %s)", WEIGHTS_FORMAT,
                           version ? version : "(none)", WEIGHTS_FORMAT_VERSION);
    }
    for (int field = 0; field < F_COUNT; field++) {
        const char *s = st_meta(f, field_names[field]);
        if (!s || k->by_flag[field]) continue; // a flag's fact is not overruled by metadata (shapes do)
        double v;
        long l;
        if (field == F_ROUTER_INPUT) {
            // Files of a DiT written by earlier versions carry router_input too; it means nothing
            // without routers and must not stop routers of the other kind from being added.
            if (known(k, F_DYNAMIC) && k->value[F_DYNAMIC] == 0) continue;
            int input = router_input_from_name(s);
            if (input < 0)
                return fail_at(k->err, k->err_size, k->path,
                               "metadata router_input = '%s' is not timestep or condition", s);
            if (learn(k, field, input, "metadata")) return -1;
            continue;
        }
        if (field_is_float(field) ? parse_double(s, &v) : parse_long(s, &l))
            return fail_at(k->err, k->err_size, k->path, "metadata %s = '%s' is not %s", field_names[field], s,
                           field_is_float(field) ? "a number" : "an integer");
        if (learn(k, field, field_is_float(field) ? v : (double)l, "metadata")) return -1;
    }
    const char *model = st_meta(f, "model");
    if (model && strcmp(model, "custom") != 0 && !h->model) {
        char from[80];
        snprintf(from, sizeof(from), "metadata model '%.40s'", model);
        int rc = learn_preset(k, model, from);
        if (rc == -2) return -1;
        if (rc == -1) warn("%s: metadata model '%s' is not a DiT preset; ignoring it", k->path, model);
    }
    return 0;
}

static int learn_flags(Facts *k, const WeightsHints *h) {
    if (h->model && strcmp(h->model, "custom") != 0) {
        char from[80];
        snprintf(from, sizeof(from), "--model %.40s", h->model);
        int rc = learn_preset(k, h->model, from);
        if (rc == -1)
            return fail_at(k->err, k->err_size, k->path,
                           "unknown model '%s' (want DiT-S/2 ... DiT-XL/8: S, B, L or XL, patch 2, 4 or 8)", h->model);
        if (rc) return -1;
    }
    if (h->heads > 0 && learn(k, F_HEADS, h->heads, "--heads")) return -1;
    if (h->input_size > 0 && learn(k, F_INPUT_SIZE, h->input_size, "--input-size")) return -1;
    if (h->has_class_dropout && learn(k, F_CLASS_DROPOUT, h->class_dropout, "--class-dropout")) return -1;
    if (h->has_router_input && learn(k, F_ROUTER_INPUT, h->router_input, "--router-input")) return -1;
    return 0;
}

static int learn_from_hints(Facts *k, const WeightsHints *h) {
    k->learning_flags = 1;
    int rc = learn_flags(k, h);
    k->learning_flags = 0;
    return rc;
}

// The label table has num_classes rows plus one null row when class_dropout > 0.
static int settle_classes(Facts *k, int64_t rows) {
    if (known(k, F_CLASS_DROPOUT)) {
        char from[64];
        snprintf(from, sizeof(from), "the label table (%lld rows) with that class_dropout", (long long)rows);
        return learn(k, F_NUM_CLASSES, (double)(rows - (k->value[F_CLASS_DROPOUT] > 0)), from);
    }
    if (known(k, F_NUM_CLASSES)) {
        double classes = k->value[F_NUM_CLASSES];
        if ((double)rows == classes + 1) return learn(k, F_CLASS_DROPOUT, default_class_dropout, "the null label row");
        if ((double)rows == classes) return learn(k, F_CLASS_DROPOUT, 0, "the label table without a null row");
        return fail_at(k->err, k->err_size, k->path,
                       "label table has %lld rows, but num_classes %g (from %s) needs %g or %g", (long long)rows,
                       classes, k->from[F_NUM_CLASSES], classes, classes + 1);
    }
    // Ambiguous from shapes alone: assume DiT's null row (docs/algorithm.md 7.6).
    if (learn(k, F_NUM_CLASSES, (double)(rows - 1), "the label table (assuming a null row)")) return -1;
    return learn(k, F_CLASS_DROPOUT, default_class_dropout, "the default");
}

int weights_config(const StFile *f, const WeightsHints *hints, DitConfig *cfg, char *err, int err_size) {
    Facts k = {.path = st_path(f), .err = err, .err_size = err_size};
    WeightsHints none = {0};
    Naming naming = NAMING_OFFICIAL;
    int64_t label_rows = 0;
    if (detect_naming(f, &naming, err, err_size) || learn_from_shapes(&k, f, naming, &label_rows) ||
        learn_from_hints(&k, hints ? hints : &none) || learn_from_metadata(&k, f, hints ? hints : &none) ||
        settle_classes(&k, label_rows))
        return -1;
    if (!known(&k, F_HEADS))
        return fail_at(err, err_size, k.path,
                       "the number of heads is neither stored in the file nor implied by its shapes: pass --heads N or "
                       "--model NAME "
                       "(e.g. --model DiT-XL/2)");
    if (!known(&k, F_INPUT_SIZE))
        return fail_at(err, err_size, k.path,
                       "the latent input size is neither stored in the file nor implied by a pos_embed tensor: pass "
                       "--input-size N "
                       "(32 for 256x256 images)");
    for (int field = 0; field < F_COUNT; field++)
        if (known(&k, field) && !field_is_float(field) && !(k.value[field] >= 0 && k.value[field] <= INT_MAX))
            return fail_at(err, err_size, k.path, "%s %g (from %s) is out of range", field_names[field], k.value[field],
                           k.from[field]);
    DitConfig c = {
        .depth = (int)k.value[F_DEPTH],
        .hidden = (int)k.value[F_HIDDEN],
        .heads = (int)k.value[F_HEADS],
        .patch = (int)k.value[F_PATCH],
        .in_channels = (int)k.value[F_IN_CHANNELS],
        .input_size = (int)k.value[F_INPUT_SIZE],
        .num_classes = (int)k.value[F_NUM_CLASSES],
        .learn_sigma = (int)k.value[F_LEARN_SIGMA],
        .mlp_ratio = (float)k.value[F_MLP_RATIO],
        .class_dropout = (float)k.value[F_CLASS_DROPOUT],
        .frequency_size = (int)k.value[F_FREQUENCY_SIZE],
        // --dynamic turns a DiT into a DyDiT whose routers keep their initial values
        .dynamic = (known(&k, F_DYNAMIC) && k.value[F_DYNAMIC] != 0) || (hints && hints->dynamic),
        .router_input = known(&k, F_ROUTER_INPUT) ? (int)k.value[F_ROUTER_INPUT] : ROUTER_INPUT_TIMESTEP,
    };
    char why[200];
    if (dit_config_validate(&c, why, sizeof(why)))
        return fail_at(err, err_size, k.path, "invalid configuration: %s", why);
    // Sizes that no tensor of the file vouches for (input_size without pos_embed) stay bounded, so
    // that the token count and the table cannot overflow.
    if (c.input_size / c.patch > 4096)
        return fail_at(err, err_size, k.path, "input size %d (from %s) gives an implausible %dx%d token grid",
                       c.input_size, k.from[F_INPUT_SIZE], c.input_size / c.patch, c.input_size / c.patch);
    *cfg = c;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------------------------- */

static int compare_strings(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_expected(char *const *sorted, int n, const char *name) {
    return bsearch(&name, sorted, (size_t)n, sizeof(char *), compare_strings) != NULL;
}

// diffusers' copies of the embedders in blocks 1.. L-1: the name of block 0's copy, or 0.
static int embedder_copy_of(const char *name, int depth, char *block0, size_t size) {
    int block;
    const char *rest = after_block_index(name, "transformer_blocks.", &block);
    if (!rest || block < 1 || block >= depth || !starts_with(rest, "norm1.emb.")) return 0;
    snprintf(block0, size, "transformer_blocks.0.%s", rest);
    return 1;
}

static int same_shape(const StTensor *t, int ndim, const int64_t *shape) {
    if (t->ndim != ndim) return 0;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return 0;
    return 1;
}

static void shape_text(int ndim, const int64_t *shape, char *out, int size) {
    TensorInfo info = {.ndim = ndim};
    memcpy(info.shape, shape, sizeof(int64_t) * (size_t)ndim);
    tensor_shape_string(&info, out, size);
}

// Every file tensor must belong to the table; reports the first that does not.
static int check_unknown(const StFile *f, Naming naming, const DitConfig *cfg, const TensorTable *table, char *err,
                         int err_size) {
    char **expected = xmalloc(sizeof(char *) * (size_t)table->count * SOURCE_PARTS_MAX);
    int n = 0, rc = 0, unknown = 0;
    for (int i = 0; i < table->count; i++) {
        Sources s;
        sources_of(naming, table->tensors[i].name, &s);
        for (int k = 0; k < s.count; k++) expected[n++] = xstrdup(s.name[k]);
    }
    qsort(expected, (size_t)n, sizeof(char *), compare_strings);
    const char *first = NULL;
    for (int i = 0; i < st_count(f) && rc == 0; i++) {
        const StTensor *t = st_tensor(f, i);
        char block0[SOURCE_NAME_MAX];
        if (is_expected(expected, n, t->name)) continue;
        if (naming == NAMING_DIFFUSERS && embedder_copy_of(t->name, cfg->depth, block0, sizeof(block0)) &&
            is_expected(expected, n, block0)) {
            const StTensor *t0 = st_find(f, block0);
            if (t0 && !same_shape(t, t0->ndim, t0->shape)) {
                char a[160], b[160];
                st_shape_string(t, a, sizeof(a));
                st_shape_string(t0, b, sizeof(b));
                rc = fail_at(err, err_size, st_path(f), "tensor '%s' has shape %s but block 0's copy '%s' has %s",
                             t->name, a, block0, b);
            }
            continue;
        }
        if (!first) first = t->name;
        unknown++;
    }
    if (rc == 0 && first) {
        char others[48] = "";
        if (unknown > 1) snprintf(others, sizeof(others), " (nor are %d others)", unknown - 1);
        rc = fail_at(err, err_size, st_path(f), "tensor '%s' is not a parameter of this model (%s, depth %d)%s", first,
                     dit_config_preset_name(cfg), cfg->depth, others);
    }
    for (int i = 0; i < n; i++) free(expected[i]);
    free(expected);
    return rc;
}

static int check_finite(const StFile *f, const char *name, const float *x, size_t n, char *err, int err_size) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return fail_at(err, err_size, st_path(f), "tensor '%s' contains a non-finite value at element %zu", name,
                           i);
    return 0;
}

// pos_embed is recomputed; a stored copy only serves as a check of the configuration.
static int load_pos_embed(const StFile *f, Naming naming, const DitConfig *cfg, const TensorInfo *t, float *dst,
                          char *err, int err_size) {
    dit_pos_embed_fill(cfg, dst);
    const StTensor *stored = find_official(f, naming, "pos_embed");
    if (!stored) return 0;
    char want[160], got[160];
    if (!same_shape(stored, t->ndim, t->shape)) {
        shape_text(t->ndim, t->shape, want, sizeof(want));
        st_shape_string(stored, got, sizeof(got));
        return fail_at(err, err_size, st_path(f), "tensor '%s' has shape %s, expected %s", stored->name, got, want);
    }
    float *file = xmalloc(sizeof(float) * t->numel);
    int rc = st_read_f32(f, stored, file, err, err_size);
    if (rc == 0) {
        double worst = 0;
        for (size_t i = 0; i < t->numel; i++) {
            double d = fabs((double)file[i] - (double)dst[i]);
            if (!(d <= worst)) worst = d; // also catches NaN
        }
        if (!(worst <= 1e-5))
            warn("%s: the stored pos_embed differs from the sin-cos table by up to %.3g; using the computed table",
                 st_path(f), worst);
    }
    free(file);
    return rc;
}

static int load_tensor(const StFile *f, Naming naming, const TensorInfo *t, float *dst, char *err, int err_size) {
    Sources s;
    sources_of(naming, t->name, &s);
    int64_t part[TENSOR_MAX_DIMS];
    memcpy(part, t->shape, sizeof(part));
    part[0] /= s.count;
    size_t part_numel = t->numel / (size_t)s.count;
    for (int k = 0; k < s.count; k++) {
        const StTensor *st = st_find(f, s.name[k]);
        char want[160], got[160], role[SOURCE_NAME_MAX + 32] = "";
        shape_text(t->ndim, part, want, sizeof(want));
        if (strcmp(s.name[k], t->name) != 0) snprintf(role, sizeof(role), " (for '%s')", t->name);
        if (!st)
            return fail_at(err, err_size, st_path(f), "missing tensor '%s'%s, expected shape %s", s.name[k], role,
                           want);
        if (!same_shape(st, t->ndim, part)) {
            st_shape_string(st, got, sizeof(got));
            return fail_at(err, err_size, st_path(f), "tensor '%s'%s has shape %s, expected %s", s.name[k], role, got,
                           want);
        }
        float *out = dst + (size_t)k * part_numel;
        if (st_read_f32(f, st, out, err, err_size) || check_finite(f, st->name, out, part_numel, err, err_size))
            return -1;
    }
    return 0;
}

static int is_router_tensor(const char *name) {
    return strstr(name, ".attn_rate.") || strstr(name, ".mlp_rate.") || strstr(name, ".token_selection.");
}

// Whether the file itself says it is a DyDiT: its metadata, or any router tensor in it. Such a
// file must hold every router tensor; only a DiT loaded as a DyDiT (--dynamic) starts from new
// routers, so that no file passes for a trained DyDiT with routers it never had.
static int file_declares_dydit(const StFile *f, Naming naming, const TensorTable *table) {
    const char *dynamic = st_meta(f, field_names[F_DYNAMIC]);
    long flag;
    if (dynamic && parse_long(dynamic, &flag) == 0 && flag != 0) return 1;
    for (int i = 0; i < table->count; i++) {
        if (!is_router_tensor(table->tensors[i].name)) continue;
        Sources s;
        sources_of(naming, table->tensors[i].name, &s);
        for (int k = 0; k < s.count; k++)
            if (st_find(f, s.name[k])) return 1;
    }
    return 0;
}

int weights_load(const StFile *f, const DitConfig *cfg, const TensorTable *table, float *host, char *err,
                 int err_size) {
    Naming naming = NAMING_OFFICIAL;
    if (detect_naming(f, &naming, err, err_size) || check_unknown(f, naming, cfg, table, err, err_size)) return -1;
    // A DiT turned into a DyDiT has no routers yet: all of them keep the values already in host.
    int routers_required = file_declares_dydit(f, naming, table);
    for (int i = 0; i < table->count; i++) {
        const TensorInfo *t = &table->tensors[i];
        if (!routers_required && is_router_tensor(t->name)) continue;
        int rc = strcmp(t->name, "pos_embed") == 0 ? load_pos_embed(f, naming, cfg, t, host + t->offset, err, err_size)
                                                   : load_tensor(f, naming, t, host + t->offset, err, err_size);
        if (rc) return -1;
    }
    if (naming == NAMING_DIFFUSERS)
        warn("%s: diffusers DiT weights: loaded with DiT's timestep frequencies (/128); diffusers itself uses /127, so "
             "its "
             "outputs differ slightly from dydit's",
             st_path(f));
    return 0;
}

int weights_load_file(const char *path, const WeightsHints *hints, DitConfig *cfg, TensorTable *table, float **host,
                      char *err, int err_size) {
    StFile *f = st_open(path, err, err_size);
    if (!f) return -1;
    DitConfig c;
    int rc = weights_config(f, hints, &c, err, err_size);
    if (rc == 0) {
        TensorTable t = tensor_table_build(&c);
        float *h = xmalloc(sizeof(float) * t.total);
        dit_init_host(&c, &t, h, 0); // what a tensor the file may lack (DyDiT routers) starts from
        rc = weights_load(f, &c, &t, h, err, err_size);
        if (rc == 0) {
            *cfg = c, *table = t, *host = h;
        } else {
            free(h);
            tensor_table_free(&t);
        }
    }
    st_close(f);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------------- */

static int is_reserved_key(const char *key) {
    if (strcmp(key, "format") == 0 || strcmp(key, "format_version") == 0 || strcmp(key, "model") == 0) return 1;
    for (int field = 0; field < F_COUNT; field++)
        if (strcmp(key, field_names[field]) == 0) return 1;
    return 0;
}

// The shortest decimal that reads back as the same float ("0.1", not "0.100000001").
static void format_float(float v, char *out, int size) {
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(out, (size_t)size, "%.*g", digits, (double)v);
        if (strtof(out, NULL) == v) return;
    }
}

static void write_config_metadata(StWriter *w, const DitConfig *c) {
    const int ints[F_COUNT] = {
        [F_DEPTH] = c->depth,
        [F_HIDDEN] = c->hidden,
        [F_HEADS] = c->heads,
        [F_PATCH] = c->patch,
        [F_IN_CHANNELS] = c->in_channels,
        [F_INPUT_SIZE] = c->input_size,
        [F_NUM_CLASSES] = c->num_classes,
        [F_LEARN_SIGMA] = c->learn_sigma ? 1 : 0,
        [F_FREQUENCY_SIZE] = c->frequency_size,
        [F_DYNAMIC] = c->dynamic ? 1 : 0,
    };
    char v[48];
    st_writer_meta(w, "format", WEIGHTS_FORMAT);
    st_writer_meta(w, "format_version", WEIGHTS_FORMAT_VERSION);
    st_writer_meta(w, "model", dit_config_preset_name(c));
    for (int field = 0; field < F_COUNT; field++) {
        if (field == F_MLP_RATIO)
            format_float(c->mlp_ratio, v, sizeof(v));
        else if (field == F_CLASS_DROPOUT)
            format_float(c->class_dropout, v, sizeof(v));
        else if (field == F_ROUTER_INPUT && !c->dynamic)
            continue; // a DiT has no routers: what they would read is decided when routers are added
        else if (field == F_ROUTER_INPUT)
            snprintf(v, sizeof(v), "%s", router_input_name(c->router_input));
        else
            snprintf(v, sizeof(v), "%d", ints[field]);
        st_writer_meta(w, field_names[field], v);
    }
}

int weights_save(const char *path, const DitConfig *cfg, const TensorTable *table, const float *host,
                 const WeightsMeta *extra, int extra_count, char *err, int err_size) {
    for (int i = 0; i < extra_count; i++)
        if (is_reserved_key(extra[i].key))
            return fail_at(err, err_size, path, "metadata key '%s' is reserved for the format and configuration",
                           extra[i].key);
    for (int i = 0; i < table->count; i++) {
        const TensorInfo *t = &table->tensors[i];
        for (size_t e = 0; e < t->numel; e++)
            if (!isfinite(host[t->offset + e]))
                return fail_at(err, err_size, path,
                               "refusing to write: tensor '%s' has a non-finite value at element %zu", t->name, e);
    }
    StWriter *w = st_writer_new();
    write_config_metadata(w, cfg);
    for (int i = 0; i < extra_count; i++) st_writer_meta(w, extra[i].key, extra[i].value);
    for (int i = 0; i < table->count; i++) {
        const TensorInfo *t = &table->tensors[i];
        st_writer_add(w, t->name, ST_F32, t->ndim, t->shape, host + t->offset);
    }
    int rc = st_writer_save(w, path, err, err_size);
    st_writer_free(w);
    return rc;
}

int weights_convert(const char *in_path, const char *out_path, const WeightsHints *hints, DitConfig *cfg_out, char *err,
                    int err_size) {
    StFile *f = st_open(in_path, err, err_size);
    if (!f) return -1;
    DitConfig cfg;
    int rc = weights_config(f, hints, &cfg, err, err_size);
    if (rc == 0) {
        TensorTable table = tensor_table_build(&cfg);
        float *host = xmalloc(sizeof(float) * table.total);
        WeightsMeta *extra = xmalloc(sizeof(WeightsMeta) * (size_t)(st_meta_count(f) + 1));
        int n = 0;
        for (int i = 0; i < st_meta_count(f); i++) {
            st_meta_at(f, i, &extra[n].key, &extra[n].value);
            if (!is_reserved_key(extra[n].key)) n++;
        }
        rc = weights_load(f, &cfg, &table, host, err, err_size);
        if (rc == 0) rc = weights_save(out_path, &cfg, &table, host, extra, n, err, err_size);
        free(extra);
        free(host);
        tensor_table_free(&table);
    }
    st_close(f);
    if (rc == 0 && cfg_out) *cfg_out = cfg;
    return rc;
}
