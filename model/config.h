// model/config.h: a DiT configuration, the presets, and the sizes derived from it.
#pragma once
#include <stdint.h>

// What DyDiT's width routers read (docs/algorithm.md 3.2 is the timestep embedding; the conditioning
// c = E_t + E_y is an experiment that makes widths depend on the class too).
typedef enum { ROUTER_INPUT_TIMESTEP = 0, ROUTER_INPUT_CONDITION = 1 } RouterInput;

typedef struct {
    int depth;           // L, number of blocks
    int hidden;          // D, width
    int heads;           // H
    int patch;           // p
    int in_channels;     // C, latent channels
    int input_size;      // latent height = width
    int num_classes;     // classes, without the null class
    int learn_sigma;     // 1: output 2C channels [eps | v]
    float mlp_ratio;     // MLP hidden = mlp_ratio * D
    float class_dropout; // label dropout probability; > 0 adds the null class row
    int frequency_size;  // timestep frequency embedding size F
    int dynamic;         // 1: DyDiT, with width routers and token routers in every block
    int router_input;    // RouterInput of the width routers
} DitConfig;

// Upper bounds of a configuration's fields, far above any real model. With them every size
// derived below stays inside int arithmetic; dit_config_validate checks them, and the products
// of several fields, in 64 bits before anything is derived.
enum {
    DIT_MAX_DEPTH = 1024,
    DIT_MAX_HIDDEN = 65536,
    DIT_MAX_HEADS = 4096,
    DIT_MAX_PATCH = 4096,
    DIT_MAX_CHANNELS = 4096,
    DIT_MAX_INPUT_SIZE = 65536,
    DIT_MAX_CLASSES = 10000000,
    DIT_MAX_FREQUENCY_SIZE = 65536,
    DIT_MAX_MLP_RATIO = 64,
};
// Elements one sample's largest activation (tokens x width, attention probabilities) may have,
// and the parameters a model may have.
#define DIT_MAX_ACTIVATION_ELEMENTS ((int64_t)1 << 31)
#define DIT_MAX_PARAMETERS ((int64_t)1 << 36)

// DiT-XL/2 at 256x256 (latent 32x32x4, 1000 classes): the defaults every preset starts from.
DitConfig dit_config_default(void);
// Fills depth/hidden/heads/patch from a preset name ("DiT-XL/2", "dit-xl2", "XL/2", ...) and
// keeps the other fields. Returns 0, or -1 when the name is not a preset.
int dit_config_apply_preset(DitConfig *cfg, const char *name);
// Canonical preset name of cfg ("DiT-S/4"), or "custom".
const char *dit_config_preset_name(const DitConfig *cfg);
// Checks that the configuration describes a buildable model whose sizes fit (the limits above);
// on failure returns -1 and writes a one-line reason into why.
int dit_config_validate(const DitConfig *cfg, char *why, int why_size);

static inline int dit_tokens(const DitConfig *c) { return (c->input_size / c->patch) * (c->input_size / c->patch); }
static inline int dit_head_dim(const DitConfig *c) { return c->hidden / c->heads; }
static inline int dit_mlp_hidden(const DitConfig *c) { return (int)(c->hidden * c->mlp_ratio + 0.5f); }
static inline int dit_out_channels(const DitConfig *c) { return c->learn_sigma ? 2 * c->in_channels : c->in_channels; }
static inline int dit_patch_in(const DitConfig *c) { return c->in_channels * c->patch * c->patch; }
static inline int dit_patch_out(const DitConfig *c) { return c->patch * c->patch * dit_out_channels(c); }
static inline int dit_label_rows(const DitConfig *c) { return c->num_classes + (c->class_dropout > 0.0f); }
// Columns of the stacked adaLN output: 6D per block, then 2D for the final layer.
static inline int dit_mod_width(const DitConfig *c) { return 6 * c->hidden * c->depth + 2 * c->hidden; }
// DyDiT: the hidden width of a token router, D / 16 (at least 1).
static inline int dit_token_router_hidden(const DitConfig *c) { return c->hidden / 16 > 0 ? c->hidden / 16 : 1; }
// "timestep" / "condition", and back (-1 when unknown).
const char *router_input_name(int router_input);
int router_input_from_name(const char *name);

// One line such as "DiT-S/4 depth 12 hidden 384 heads 6 patch 4 input 32x32x4 classes 10".
void dit_config_describe(const DitConfig *cfg, char *out, int size);
