// train/cmd_convert.c: `dydit convert`, any accepted weights file -> the canonical dydit file.
#include <stdio.h>

#include "common/util.h"
#include "model/weights.h"
#include "train/commands.h"
#include "train/model_options.h"

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    HintOptions ho = {0};
    Option options[2 + HINT_OPTION_COUNT] = {
        {"in", OPT_STRING, &in, "weights to read: official DiT/DyDiT or diffusers names; F32, F16 or BF16", NULL, 0},
        {"out", OPT_STRING, &out, "dydit weights file to write (F32, config in the metadata)", NULL, 0},
    };
    hint_options_add(&ho, options, 2);
    OptionSet set = {"convert",
                     "Normalise a safetensors weights file: official names, F32, the configuration stored in its "
                     "metadata. (.pt checkpoints: first run tools/convert_checkpoint.py.)",
                     "dydit convert --in A.safetensors --out B.safetensors [--model DiT-XL/2 | --heads 16]", options,
                     2 + HINT_OPTION_COUNT};
    options_parse(&set, argc, argv);
    if (!in || !out) die("--in and --out are required (see dydit convert --help)");
    WeightsHints hints = hint_options_hints(&ho, &set);
    DitConfig cfg;
    char err[1024], desc[256];
    if (weights_convert(in, out, &hints, &cfg, err, sizeof(err))) die("%s", err);
    dit_config_describe(&cfg, desc, sizeof(desc));
    printf("wrote %s: %s\n", out, desc);
    return 0;
}
