// train/cmd_flops.c: `dydit flops`, parameter and MAC counts of any configuration.
#include <stdio.h>

#include "common/util.h"
#include "model/flops.h"
#include "train/commands.h"
#include "train/model_options.h"

static void print_header(int dynamic) {
    printf("%-10s %14s %14s %10s %14s %14s %7s", "model", "params", "trainable", "GMACs", "block ATTN G", "block MLP G",
           "tokens");
    if (dynamic) printf(" %14s %12s", "router params", "router GMACs");
    printf("\n");
}

// One configuration; for a DyDiT also its routers' parameters and MACs (parameters and trainable
// include them; GMACs is the static forward, which the FLOPs ratio of the routers scales).
static void print_row(const DitConfig *c) {
    BlockMacs b = dit_block_macs(c);
    printf("%-10s %14zu %14zu %10.3f %14.9f %14.9f %7d", dit_config_preset_name(c), dit_param_count(c),
           dit_trainable_param_count(c), dit_forward_macs(c) / 1e9, b.attention / 1e9, b.mlp / 1e9, dit_tokens(c));
    if (c->dynamic) {
        DitConfig plain = *c;
        plain.dynamic = 0;
        printf(" %14zu %12.4f", dit_param_count(c) - dit_param_count(&plain), dydit_router_macs(c) / 1e9);
    }
    printf("\n");
}

int cmd_flops(int argc, char **argv) {
    ModelOptions mo = {0};
    int all = 0, dynamic = 0;
    Option options[MODEL_OPTION_COUNT + 2];
    model_options_add(&mo, options, 0);
    options[MODEL_OPTION_COUNT] =
        (Option){"all", OPT_FLAG, &all, "every preset S/B/L/XL x 2/4/8 at the given size", NULL, 0};
    options[MODEL_OPTION_COUNT + 1] =
        (Option){"dynamic", OPT_FLAG, &dynamic, "DyDiT: add the routers' parameters and MACs", NULL, 0};
    OptionSet set = {"flops",
                     "Parameters and forward GMACs (multiply-adds, as the DiT papers count them), and the per-block "
                     "attention and MLP MACs that DyDiT's FLOPs loss weighs.",
                     "dydit flops [--model DiT-XL/2 | --depth ... ] [--all] [--dynamic]", options,
                     MODEL_OPTION_COUNT + 2};
    options_parse(&set, argc, argv);
    DitConfig base = model_options_config(&mo, &set);
    base.dynamic = dynamic;
    char why[256];
    if (dit_config_validate(&base, why, sizeof(why))) die("invalid model: %s", why);
    print_header(dynamic);
    if (!all) {
        print_row(&base);
        return 0;
    }
    const char *sizes[] = {"S", "B", "L", "XL"};
    for (int s = 0; s < 4; s++)
        for (int p = 2; p <= 8; p *= 2) {
            DitConfig c = base;
            char name[16];
            snprintf(name, sizeof(name), "DiT-%s/%d", sizes[s], p);
            dit_config_apply_preset(&c, name);
            print_row(&c);
        }
    return 0;
}
