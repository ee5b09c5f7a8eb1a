#include "model/config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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

int dit_config_validate(const DitConfig *c, char *why, int why_size) {
    if (c->depth < 1) FAIL("depth must be at least 1 (got %d)", c->depth);
    if (c->hidden < 1) FAIL("hidden must be at least 1 (got %d)", c->hidden);
    if (c->heads < 1) FAIL("heads must be at least 1 (got %d)", c->heads);
    if (c->hidden % c->heads) FAIL("hidden %d is not divisible by heads %d", c->hidden, c->heads);
    if (c->hidden % 2) FAIL("hidden must be even for the sin-cos position embedding (got %d)", c->hidden);
    if (c->patch < 1) FAIL("patch must be at least 1 (got %d)", c->patch);
    if (c->input_size < 1 || c->input_size % c->patch)
        FAIL("input size %d is not a positive multiple of patch %d", c->input_size, c->patch);
    if (c->in_channels < 1) FAIL("in_channels must be at least 1 (got %d)", c->in_channels);
    if (c->num_classes < 1) FAIL("num_classes must be at least 1 (got %d)", c->num_classes);
    if (!(c->mlp_ratio > 0.0f) || dit_mlp_hidden(c) < 1) FAIL("mlp_ratio must be positive (got %g)", c->mlp_ratio);
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
    return 0;
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
