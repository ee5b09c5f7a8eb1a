// model/vae_load.c: SD VAE weight files -> VaeNet and its parameter buffer.
//
// The architecture is read off the tensor shapes: the levels and their channels from the first
// resnet of each level, the resnets per level from level 0, image and latent channels from the
// outer convolutions (from the encoder when the file has one, else from the decoder). The GroupNorm
// group count shows in no shape: it comes from the metadata key `norm_num_groups` (diffusers'
// config name), else 32, the SD VAE's. Every tensor that this shape implies must then be in the
// file with its shape, and a tensor under encoder., decoder., quant_conv. or post_quant_conv. that
// it does not imply is an error, so a mis-read shape cannot pass silently; other tensors (a
// training loss's, say) are ignored.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "data/safetensors.h"
#include "model/vae_net.h"

#define DEFAULT_GROUPS 32
#define MAX_CHANNELS 65536

/* ---------------------------------------------------------------------------------------------
 * Names (docs/algorithm.md 8.4)
 * ------------------------------------------------------------------------------------------- */

typedef enum { NAMES_DIFFUSERS, NAMES_DIFFUSERS_LEGACY, NAMES_COMPVIS } Naming;

// Where a naming keeps each layer. The level formats take the level as the naming numbers it,
// then the resnet index.
typedef struct {
    const char *down_resnet, *up_resnet, *downsampler, *upsampler;
    const char *mid_resnet[2], *mid_attention, *norm_out, *shortcut;
    const char *attention[5]; // norm, q, k, v, out
    int up_reversed;          // the up blocks count from the lowest resolution
} Scheme;

static const Scheme schemes[] = {
    [NAMES_DIFFUSERS] = {"encoder.down_blocks.%d.resnets.%d",
                         "decoder.up_blocks.%d.resnets.%d",
                         "encoder.down_blocks.%d.downsamplers.0.conv",
                         "decoder.up_blocks.%d.upsamplers.0.conv",
                         {"mid_block.resnets.0", "mid_block.resnets.1"},
                         "mid_block.attentions.0",
                         "conv_norm_out",
                         "conv_shortcut",
                         {"group_norm", "to_q", "to_k", "to_v", "to_out.0"},
                         1},
    // the 2022 sd-vae-ft-* uploads, which diffusers renames on load
    [NAMES_DIFFUSERS_LEGACY] = {"encoder.down_blocks.%d.resnets.%d",
                                "decoder.up_blocks.%d.resnets.%d",
                                "encoder.down_blocks.%d.downsamplers.0.conv",
                                "decoder.up_blocks.%d.upsamplers.0.conv",
                                {"mid_block.resnets.0", "mid_block.resnets.1"},
                                "mid_block.attentions.0",
                                "conv_norm_out",
                                "conv_shortcut",
                                {"group_norm", "query", "key", "value", "proj_attn"},
                                1},
    [NAMES_COMPVIS] = {"encoder.down.%d.block.%d",
                       "decoder.up.%d.block.%d",
                       "encoder.down.%d.downsample.conv",
                       "decoder.up.%d.upsample.conv",
                       {"mid.block_1", "mid.block_2"},
                       "mid.attn_1",
                       "norm_out",
                       "nin_shortcut",
                       {"norm", "q", "k", "v", "proj_out"},
                       0},
};

enum { NAME_LEN = 128 };

static const char *half_name(int decoder) { return decoder ? "decoder" : "encoder"; }

// "PREFIX.SUFFIX" into out (NAME_LEN bytes). The names are built from short fixed pieces.
static void join(char *out, const char *prefix, const char *suffix) {
    if (snprintf(out, NAME_LEN, "%s.%s", prefix, suffix) >= NAME_LEN) die("internal: VAE tensor name too long");
}

// The file's index of a level: the up blocks of diffusers count from the lowest resolution.
static int file_level(const Scheme *s, int decoder, int levels, int level) {
    return decoder && s->up_reversed ? levels - 1 - level : level;
}

// Prefix of resnet j of a level, numbered as the file numbers it.
static void resnet_prefix(char *out, const Scheme *s, int decoder, int index, int j) {
    snprintf(out, NAME_LEN, decoder ? s->up_resnet : s->down_resnet, index, j);
}

// The naming of a file from its mid block; -1 when it has none under any naming.
static int detect_naming(const StFile *f, int decoder, Naming *naming) {
    static const struct {
        const char *probe;
        Naming naming;
    } probes[] = {
        {"mid_block.attentions.0.query.weight", NAMES_DIFFUSERS_LEGACY},
        {"mid_block.resnets.0.conv1.weight", NAMES_DIFFUSERS},
        {"mid.block_1.conv1.weight", NAMES_COMPVIS},
    };
    char name[NAME_LEN];
    for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
        join(name, half_name(decoder), probes[i].probe);
        if (st_find(f, name)) {
            *naming = probes[i].naming;
            return 0;
        }
    }
    return -1;
}

/* ---------------------------------------------------------------------------------------------
 * The shape, from the tensors
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    const StFile *f;
    char *err;
    int err_size;
} Source;

// Dimension dim of the 4-D tensor `name`, or -1 with an error.
static int64_t dim_of(const Source *src, const char *name, int dim) {
    const StTensor *t = st_find(src->f, name);
    if (!t) return fail_at(src->err, src->err_size, st_path(src->f), "missing tensor '%s'", name);
    if (t->ndim != 4) {
        char shape[96];
        st_shape_string(t, shape, sizeof(shape));
        return fail_at(src->err, src->err_size, st_path(src->f), "tensor '%s' has shape %s; want a 4-D conv weight",
                       name, shape);
    }
    if (t->shape[dim] < 1 || t->shape[dim] > MAX_CHANNELS)
        return fail_at(src->err, src->err_size, st_path(src->f), "tensor '%s' has an implausible shape", name);
    return t->shape[dim];
}

// Levels and their channels, and resnets per level, of one half.
static int infer_levels(const Source *src, const Scheme *s, int decoder, VaeShape *shape) {
    char prefix[NAME_LEN], name[NAME_LEN];
    int count = 0;
    for (; count <= VAE_MAX_LEVELS; count++) {
        resnet_prefix(prefix, s, decoder, count, 0);
        join(name, prefix, "conv1.weight");
        if (!st_find(src->f, name)) break;
    }
    resnet_prefix(prefix, s, decoder, 0, 0);
    join(name, prefix, "conv1.weight");
    if (count == 0) return fail_at(src->err, src->err_size, st_path(src->f), "missing tensor '%s'", name);
    if (count > VAE_MAX_LEVELS)
        return fail_at(src->err, src->err_size, st_path(src->f), "the %s has more than %d levels", half_name(decoder),
                       VAE_MAX_LEVELS);
    shape->levels = count;
    for (int level = 0; level < count; level++) {
        resnet_prefix(prefix, s, decoder, file_level(s, decoder, count, level), 0);
        join(name, prefix, "conv1.weight");
        int64_t c = dim_of(src, name, 0);
        if (c < 0) return -1;
        shape->channels[level] = (int)c;
    }
    int resnets = 0;
    for (; resnets <= VAE_MAX_LAYERS + 1; resnets++) {
        resnet_prefix(prefix, s, decoder, 0, resnets);
        join(name, prefix, "conv1.weight");
        if (!st_find(src->f, name)) break;
    }
    shape->layers = decoder ? resnets - 1 : resnets;
    if (shape->layers < 1 || shape->layers > VAE_MAX_LAYERS)
        return fail_at(src->err, src->err_size, st_path(src->f), "the %s has %d resnets per level; want %d to %d",
                       half_name(decoder), resnets, 1 + decoder, VAE_MAX_LAYERS + decoder);
    return 0;
}

static int infer_shape(const Source *src, const Scheme *s, int has_encoder, int has_decoder, VaeShape *shape) {
    memset(shape, 0, sizeof(*shape));
    if (infer_levels(src, s, !has_encoder, shape)) return -1;
    int64_t latent = has_encoder ? dim_of(src, "encoder.conv_out.weight", 0) : dim_of(src, "decoder.conv_in.weight", 1);
    if (latent < 0) return -1;
    if (has_encoder && latent % 2)
        return fail_at(src->err, src->err_size, st_path(src->f),
                       "encoder.conv_out.weight has %lld output channels; want an even count (mean and logvar)",
                       (long long)latent);
    shape->latent = (int)(has_encoder ? latent / 2 : latent);
    // the decoder's output must then match: its conv_out shape is checked on loading
    int64_t image = has_encoder ? dim_of(src, "encoder.conv_in.weight", 1) : dim_of(src, "decoder.conv_out.weight", 0);
    if (image < 0) return -1;
    shape->image = (int)image;
    shape->groups = DEFAULT_GROUPS;
    const char *groups = st_meta(src->f, "norm_num_groups");
    long g;
    if (groups && (parse_long(groups, &g) || g < 1 || g > MAX_CHANNELS))
        return fail_at(src->err, src->err_size, st_path(src->f),
                       "metadata norm_num_groups = '%s' is not a positive integer", groups);
    if (groups) shape->groups = (int)g;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The expected tensors, laid out in the parameter buffer
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    char name[NAME_LEN];
    int ndim;
    int64_t shape[4];
    size_t offset, numel;
    int linear; // an attention Linear weight (C, C), also accepted as a 1x1 conv (C, C, 1, 1)
} Expected;

typedef struct {
    const Scheme *names;
    const VaeShape *shape;
    Expected *list;
    int count, capacity;
    size_t total;
    char bad_norm[NAME_LEN]; // the first norm whose channels the groups do not divide, and its channels
    int bad_norm_channels;
} Layout;

static size_t expect(Layout *L, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    if (L->count == L->capacity) {
        L->capacity = L->capacity ? 2 * L->capacity : 256;
        L->list = xrealloc(L->list, sizeof(Expected) * (size_t)L->capacity);
    }
    Expected *e = &L->list[L->count++];
    memset(e, 0, sizeof(*e));
    snprintf(e->name, sizeof(e->name), "%s", name);
    int64_t dims[4] = {d0, d1, d2, d3};
    e->ndim = ndim;
    e->numel = 1;
    for (int i = 0; i < ndim; i++) e->shape[i] = dims[i], e->numel *= (size_t)dims[i];
    e->offset = L->total;
    L->total += e->numel;
    return e->offset;
}

static size_t expect_linear(Layout *L, const char *name, int C) {
    size_t offset = expect(L, name, 2, C, C, 0, 0);
    L->list[L->count - 1].linear = 1;
    return offset;
}

static VaeConv expect_conv(Layout *L, const char *prefix, int cin, int cout, int k) {
    char name[NAME_LEN];
    VaeConv c = {.cin = cin, .cout = cout, .k = k};
    join(name, prefix, "weight");
    c.weight = expect(L, name, 4, cout, cin, k, k);
    join(name, prefix, "bias");
    c.bias = expect(L, name, 1, cout, 0, 0, 0);
    return c;
}

static VaeNorm expect_norm(Layout *L, const char *prefix, int channels) {
    char name[NAME_LEN];
    VaeNorm n = {.channels = channels};
    join(name, prefix, "weight");
    n.gamma = expect(L, name, 1, channels, 0, 0, 0);
    join(name, prefix, "bias");
    n.beta = expect(L, name, 1, channels, 0, 0, 0);
    if (channels % L->shape->groups && !L->bad_norm[0]) {
        snprintf(L->bad_norm, sizeof(L->bad_norm), "%s", prefix);
        L->bad_norm_channels = channels;
    }
    return n;
}

static VaeResnet expect_resnet(Layout *L, const char *prefix, int cin, int cout) {
    char name[NAME_LEN];
    VaeResnet r = {.has_shortcut = cin != cout};
    join(name, prefix, "norm1");
    r.norm1 = expect_norm(L, name, cin);
    join(name, prefix, "conv1");
    r.conv1 = expect_conv(L, name, cin, cout, 3);
    join(name, prefix, "norm2");
    r.norm2 = expect_norm(L, name, cout);
    join(name, prefix, "conv2");
    r.conv2 = expect_conv(L, name, cout, cout, 3);
    if (r.has_shortcut) {
        join(name, prefix, L->names->shortcut);
        r.shortcut = expect_conv(L, name, cin, cout, 1);
    }
    return r;
}

// The q, k and v weights, then their biases, follow each other: one (3C, C) Linear and its bias.
static VaeAttention expect_attention(Layout *L, const char *prefix, int C) {
    char part[NAME_LEN], name[NAME_LEN];
    VaeAttention a = {.channels = C};
    join(part, prefix, L->names->attention[0]);
    a.norm = expect_norm(L, part, C);
    for (int i = 1; i <= 3; i++) {
        join(part, prefix, L->names->attention[i]);
        join(name, part, "weight");
        size_t w = expect_linear(L, name, C);
        if (i == 1) a.qkv_weight = w;
    }
    for (int i = 1; i <= 3; i++) {
        join(part, prefix, L->names->attention[i]);
        join(name, part, "bias");
        size_t b = expect(L, name, 1, C, 0, 0, 0);
        if (i == 1) a.qkv_bias = b;
    }
    join(part, prefix, L->names->attention[4]);
    join(name, part, "weight");
    a.out_weight = expect_linear(L, name, C);
    join(name, part, "bias");
    a.out_bias = expect(L, name, 1, C, 0, 0, 0);
    return a;
}

static VaeMid expect_mid(Layout *L, int decoder, int C) {
    char prefix[NAME_LEN];
    VaeMid m;
    join(prefix, half_name(decoder), L->names->mid_resnet[0]);
    m.first = expect_resnet(L, prefix, C, C);
    join(prefix, half_name(decoder), L->names->mid_attention);
    m.attention = expect_attention(L, prefix, C);
    join(prefix, half_name(decoder), L->names->mid_resnet[1]);
    m.second = expect_resnet(L, prefix, C, C);
    return m;
}

// docs/algorithm.md 8.2: level i takes channels[i - 1] (channels[0] at level 0) to channels[i].
static void expect_encoder(Layout *L, VaeHalf *e) {
    const VaeShape *s = L->shape;
    char prefix[NAME_LEN];
    int last = s->levels - 1;
    e->conv_in = expect_conv(L, "encoder.conv_in", s->image, s->channels[0], 3);
    for (int level = 0; level <= last; level++) {
        int c = s->channels[level], cin = s->channels[level > 0 ? level - 1 : 0];
        for (int j = 0; j < s->layers; j++) {
            resnet_prefix(prefix, L->names, 0, level, j);
            e->resnets[level][j] = expect_resnet(L, prefix, j == 0 ? cin : c, c);
        }
        if (level < last) {
            snprintf(prefix, sizeof(prefix), L->names->downsampler, level);
            e->resample[level] = expect_conv(L, prefix, c, c, 3);
        }
    }
    e->mid = expect_mid(L, 0, s->channels[last]);
    join(prefix, "encoder", L->names->norm_out);
    e->norm_out = expect_norm(L, prefix, s->channels[last]);
    e->conv_out = expect_conv(L, "encoder.conv_out", s->channels[last], 2 * s->latent, 3);
    e->quant = expect_conv(L, "quant_conv", 2 * s->latent, 2 * s->latent, 1);
}

// docs/algorithm.md 8.3: from the last level down, level i takes channels[i + 1] (channels[last] at the last
// level) to channels[i].
static void expect_decoder(Layout *L, VaeHalf *d) {
    const VaeShape *s = L->shape;
    char prefix[NAME_LEN];
    int last = s->levels - 1;
    d->quant = expect_conv(L, "post_quant_conv", s->latent, s->latent, 1);
    d->conv_in = expect_conv(L, "decoder.conv_in", s->latent, s->channels[last], 3);
    d->mid = expect_mid(L, 1, s->channels[last]);
    for (int level = last; level >= 0; level--) {
        int c = s->channels[level], cin = s->channels[level < last ? level + 1 : last];
        int index = file_level(L->names, 1, s->levels, level);
        for (int j = 0; j <= s->layers; j++) {
            resnet_prefix(prefix, L->names, 1, index, j);
            d->resnets[level][j] = expect_resnet(L, prefix, j == 0 ? cin : c, c);
        }
        if (level > 0) {
            snprintf(prefix, sizeof(prefix), L->names->upsampler, index);
            d->resample[level] = expect_conv(L, prefix, c, c, 3);
        }
    }
    join(prefix, "decoder", L->names->norm_out);
    d->norm_out = expect_norm(L, prefix, s->channels[0]);
    d->conv_out = expect_conv(L, "decoder.conv_out", s->channels[0], s->image, 3);
}

/* ---------------------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------------------- */

static void shape_text(const Expected *e, char *out, int size) {
    int n = snprintf(out, (size_t)size, "[");
    for (int i = 0; i < e->ndim && n < size; i++)
        n += snprintf(out + n, (size_t)(size - n), "%s%lld", i ? ", " : "", (long long)e->shape[i]);
    if (n < size) snprintf(out + n, (size_t)(size - n), "]");
}

// "channels [128, 256, 512, 512], 2 resnets per level, 4 latent channels"
static void describe(const VaeShape *s, char *out, int size) {
    int n = snprintf(out, (size_t)size, "channels [");
    for (int i = 0; i < s->levels && n < size; i++)
        n += snprintf(out + n, (size_t)(size - n), "%s%d", i ? ", " : "", s->channels[i]);
    if (n < size)
        snprintf(out + n, (size_t)(size - n), "], %d resnets per level, %d latent channels", s->layers, s->latent);
}

static int same_shape(const StTensor *t, const Expected *e) {
    if (e->linear && t->ndim == 4 && t->shape[2] == 1 && t->shape[3] == 1) // CompVis stores them as 1x1 convs
        return t->shape[0] == e->shape[0] && t->shape[1] == e->shape[1];
    if (t->ndim != e->ndim) return 0;
    for (int i = 0; i < e->ndim; i++)
        if (t->shape[i] != e->shape[i]) return 0;
    return 1;
}

static int is_vae_tensor(const char *name) {
    return starts_with(name, "encoder.") || starts_with(name, "decoder.") || starts_with(name, "quant_conv.") ||
           starts_with(name, "post_quant_conv.");
}

static int check_unexpected(const StFile *f, const Layout *L, char *err, int err_size) {
    for (int i = 0; i < st_count(f); i++) {
        const char *name = st_tensor(f, i)->name;
        if (!is_vae_tensor(name)) continue;
        int known = 0;
        for (int j = 0; j < L->count && !known; j++) known = strcmp(L->list[j].name, name) == 0;
        if (!known) {
            char what[256];
            describe(L->shape, what, sizeof(what));
            return fail_at(err, err_size, st_path(f), "unexpected tensor '%s' for a VAE with %s", name, what);
        }
    }
    return 0;
}

static int read_expected(const StFile *f, const Layout *L, float *params, char *err, int err_size) {
    for (int i = 0; i < L->count; i++) {
        const Expected *e = &L->list[i];
        char want[96], got[96];
        shape_text(e, want, sizeof(want));
        const StTensor *t = st_find(f, e->name);
        if (!t) return fail_at(err, err_size, st_path(f), "missing tensor '%s' (shape %s)", e->name, want);
        if (!same_shape(t, e)) {
            st_shape_string(t, got, sizeof(got));
            return fail_at(err, err_size, st_path(f), "tensor '%s' has shape %s, expected %s", e->name, got, want);
        }
        float *dst = params + e->offset;
        if (st_read_f32(f, t, dst, err, err_size)) return -1;
        for (size_t k = 0; k < e->numel; k++)
            if (!isfinite(dst[k]))
                return fail_at(err, err_size, st_path(f), "tensor '%s' has a non-finite value at element %zu", e->name,
                               k);
    }
    return 0;
}

static int load(const StFile *f, VaeNet *net, float **params, char *err, int err_size) {
    memset(net, 0, sizeof(*net));
    net->has_encoder = st_find(f, "encoder.conv_in.weight") != NULL;
    net->has_decoder = st_find(f, "decoder.conv_in.weight") != NULL;
    if (!net->has_encoder && !net->has_decoder)
        return fail_at(err, err_size, st_path(f),
                       "no 'encoder.conv_in.weight' nor 'decoder.conv_in.weight': not SD VAE (AutoencoderKL) weights");
    Naming naming;
    const char *half = half_name(!net->has_encoder);
    if (detect_naming(f, !net->has_encoder, &naming))
        return fail_at(err, err_size, st_path(f),
                       "no mid block: neither '%s.mid_block.resnets.0.conv1.weight' (diffusers names) nor "
                       "'%s.mid.block_1.conv1.weight' (CompVis names)",
                       half, half);
    Source src = {f, err, err_size};
    if (infer_shape(&src, &schemes[naming], net->has_encoder, net->has_decoder, &net->shape)) return -1;
    Layout L = {.names = &schemes[naming], .shape = &net->shape};
    if (net->has_encoder) expect_encoder(&L, &net->encoder);
    if (net->has_decoder) expect_decoder(&L, &net->decoder);
    int rc = 0;
    if (L.bad_norm[0])
        rc = fail_at(err, err_size, st_path(f),
                     "GroupNorm '%s' has %d channels, which %d groups do not divide (the group count comes from "
                     "metadata norm_num_groups, default %d)",
                     L.bad_norm, L.bad_norm_channels, net->shape.groups, DEFAULT_GROUPS);
    if (rc == 0) rc = check_unexpected(f, &L, err, err_size);
    float *host = NULL;
    if (rc == 0) {
        host = xmalloc(sizeof(float) * L.total);
        rc = read_expected(f, &L, host, err, err_size);
    }
    if (rc == 0) {
        *params = host;
        net->parameters = L.total;
        net->tensors = L.count;
    } else {
        free(host);
    }
    free(L.list);
    return rc;
}

int vae_net_load(const char *path, VaeNet *net, float **params, char *err, int err_size) {
    StFile *f = st_open(path, err, err_size);
    if (!f) return -1;
    int rc = load(f, net, params, err, err_size);
    st_close(f);
    return rc;
}
