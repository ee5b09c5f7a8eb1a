#include "model/config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/util.h"

typedef struct {
    const char *size;
    int depth, hidden, heads;
} DitSize;

static const DitSize dit_sizes[] = {
    {"S", 12, 384, 6},
    {"B", 12, 768, 12},
    {"L", 24, 1024, 16},
    {"XL", 28, 1152, 16},
};
enum { DIT_SIZE_COUNT = sizeof(dit_sizes) / sizeof(dit_sizes[0]) };

DitConfig dit_config_default(void) {
    DitConfig c = {
        .depth = 28,
        .hidden = 1152,
        .heads = 16,
        .patch = 2,
        .in_channels = 4,
        .input_size = 32,
        .num_classes = 1000,
        .learn_sigma = 1,
        .mlp_ratio = 4.0f,
        .class_dropout = 0.1f,
        .frequency_size = 256,
    };
    return c;
}

int dit_config_apply_preset(DitConfig *cfg, const char *name) {
    const char *s = name;
    if (strncasecmp(s, "dit-", 4) == 0 || strncasecmp(s, "dit_", 4) == 0) s += 4;
    for (int i = 0; i < DIT_SIZE_COUNT; i++) {
        size_t n = strlen(dit_sizes[i].size);
        if (strncasecmp(s, dit_sizes[i].size, n) != 0) continue;
        const char *rest = s + n;
        if (*rest == '/' || *rest == '-' || *rest == '_') rest++;
        if (!(rest[0] == '2' || rest[0] == '4' || rest[0] == '8') || rest[1] != '\0') continue;
        cfg->depth = dit_sizes[i].depth;
        cfg->hidden = dit_sizes[i].hidden;
        cfg->heads = dit_sizes[i].heads;
        cfg->patch = rest[0] - '0';
        return 0;
    }
    return -1;
}

const char *dit_config_preset_name(const DitConfig *cfg) {
    static char name[32];
    if (cfg->mlp_ratio != 4.0f || !(cfg->patch == 2 || cfg->patch == 4 || cfg->patch == 8)) return "custom";
    for (int i = 0; i < DIT_SIZE_COUNT; i++) {
        const DitSize *z = &dit_sizes[i];
        if (z->depth == cfg->depth && z->hidden == cfg->hidden && z->heads == cfg->heads) {
            snprintf(name, sizeof(name), "DiT-%s/%d", z->size, cfg->patch);
            return name;
        }
    }
    return "custom";
}

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        snprintf(why, (size_t)why_size, __VA_ARGS__);                                                                  \
        return -1;                                                                                                     \
    } while (0)

// Each field within [1, its DIT_MAX_*] (class_dropout, mlp_ratio and the flags are checked apart).
static int fields_in_bounds(const DitConfig *c, char *why, int why_size) {
    const struct {
        const char *name;
        int value, max;
    } fields[] = {
        {"depth", c->depth, DIT_MAX_DEPTH},
        {"hidden", c->hidden, DIT_MAX_HIDDEN},
        {"heads", c->heads, DIT_MAX_HEADS},
        {"patch", c->patch, DIT_MAX_PATCH},
        {"in_channels", c->in_channels, DIT_MAX_CHANNELS},
        {"input size", c->input_size, DIT_MAX_INPUT_SIZE},
        {"num_classes", c->num_classes, DIT_MAX_CLASSES},
        {"frequency size", c->frequency_size, DIT_MAX_FREQUENCY_SIZE},
    };
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (fields[i].value < 1 || fields[i].value > fields[i].max)
            FAIL("%s must be in [1, %d] (got %d)", fields[i].name, fields[i].max, fields[i].value);
    return 0;
}

// The largest per-sample activations and the parameter count, in checked 64-bit arithmetic (the
// fields alone are bounded, their products are not: a 65536-pixel input with patch 1 has 2^32
// tokens). Called once the fields are in bounds, so that the int helpers of config.h are exact.
static int derived_sizes_fit(const DitConfig *c, char *why, int why_size) {
    int64_t side = c->input_size / c->patch, D = c->hidden, M = dit_mlp_hidden(c);
    int64_t tokens, stream, mlp, probs, latent, blocks, labels, params;
    int overflow = mul_i64(side, side, &tokens) || mul_i64(tokens, 3 * D, &stream) || mul_i64(tokens, M, &mlp) ||
                   mul_i64(tokens, tokens, &probs) || mul_i64(probs, c->heads, &probs) ||
                   mul_i64((int64_t)c->input_size * c->input_size, 2 * c->in_channels, &latent);
    if (overflow || stream > DIT_MAX_ACTIVATION_ELEMENTS || mlp > DIT_MAX_ACTIVATION_ELEMENTS ||
        probs > DIT_MAX_ACTIVATION_ELEMENTS || latent > DIT_MAX_ACTIVATION_ELEMENTS)
        FAIL("input %dx%dx%d with patch %d, hidden %d and %d heads makes per-sample activations of more than %lld "
             "elements",
             c->input_size, c->input_size, c->in_channels, c->patch, c->hidden, c->heads,
             (long long)DIT_MAX_ACTIVATION_ELEMENTS);
    // per block: qkv, proj, fc1, fc2, adaLN and the routers, all below (16 D + 2 M) D; outside:
    // the label table, pos_embed and the embedders
    overflow = mul_i64((16 * D + 2 * M) * D, c->depth, &blocks) || mul_i64(c->num_classes + 1, D, &labels) ||
               add_i64(blocks, labels, &params) || add_i64(params, (tokens + c->frequency_size + 2 * D) * D, &params);
    if (overflow || params > DIT_MAX_PARAMETERS)
        FAIL("depth %d, hidden %d and %d classes make more than %lld parameters", c->depth, c->hidden, c->num_classes,
             (long long)DIT_MAX_PARAMETERS);
    return 0;
}

int dit_config_validate(const DitConfig *c, char *why, int why_size) {
    if (fields_in_bounds(c, why, why_size)) return -1;
    if (c->hidden % c->heads) FAIL("hidden %d is not divisible by heads %d", c->hidden, c->heads);
    if (c->hidden % 2) FAIL("hidden must be even for the sin-cos position embedding (got %d)", c->hidden);
    if (c->input_size % c->patch) FAIL("input size %d is not a multiple of patch %d", c->input_size, c->patch);
    if (!(c->mlp_ratio > 0.0f && c->mlp_ratio <= DIT_MAX_MLP_RATIO) || dit_mlp_hidden(c) < 1)
        FAIL("mlp_ratio must be in (0, %d] (got %g)", DIT_MAX_MLP_RATIO, c->mlp_ratio);
    if (c->learn_sigma != 0 && c->learn_sigma != 1) FAIL("learn_sigma must be 0 or 1 (got %d)", c->learn_sigma);
    if (!(c->class_dropout >= 0.0f && c->class_dropout < 1.0f))
        FAIL("class dropout must be in [0, 1) (got %g)", c->class_dropout);
    if (c->frequency_size < 2 || c->frequency_size % 2)
        FAIL("frequency size must be even and at least 2 (got %d)", c->frequency_size);
    if (c->dynamic && c->heads < 2)
        FAIL("a DyDiT routes heads 1..H-1, so it needs at least 2 heads (got %d)", c->heads);
    if (c->dynamic && dit_mlp_hidden(c) % c->heads)
        FAIL("a DyDiT splits the MLP hidden width %d into %d channel groups: it must be divisible", dit_mlp_hidden(c),
             c->heads);
    if (c->router_input != ROUTER_INPUT_TIMESTEP && c->router_input != ROUTER_INPUT_CONDITION)
        FAIL("unknown router input %d", c->router_input);
    return derived_sizes_fit(c, why, why_size);
}

void dit_config_describe(const DitConfig *c, char *out, int size) {
    // "DyDiT-S/2" for a preset, "custom DyDiT" otherwise
    const char *preset = dit_config_preset_name(c);
    int custom = !strcmp(preset, "custom");
    snprintf(out, (size_t)size,
             "%s%s%s depth %d hidden %d heads %d (head_dim %d) patch %d input %dx%dx%d classes %d learn_sigma %d "
             "mlp_ratio %g tokens %d%s%s",
             custom ? "custom " : "", c->dynamic ? "Dy" : "", custom ? "DiT" : preset, c->depth, c->hidden, c->heads,
             dit_head_dim(c),
             c->patch, c->input_size, c->input_size, c->in_channels, c->num_classes, c->learn_sigma, c->mlp_ratio,
             dit_tokens(c), c->dynamic ? ", width routers on the " : "",
             c->dynamic ? router_input_name(c->router_input) : "");
}

const char *router_input_name(int router_input) {
    return router_input == ROUTER_INPUT_CONDITION ? "condition" : "timestep";
}

int router_input_from_name(const char *name) {
    if (!strcmp(name, "timestep")) return ROUTER_INPUT_TIMESTEP;
    if (!strcmp(name, "condition")) return ROUTER_INPUT_CONDITION;
    return -1;
}
