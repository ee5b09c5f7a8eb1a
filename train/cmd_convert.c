// train/cmd_convert.c: `dydit convert`, any accepted weights file, or the EMA or raw weights of a
// training checkpoint, -> the canonical dydit file (official DiT/DyDiT tensor names, F32).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/output_files.h"
#include "common/util.h"
#include "model/weights.h"
#include "train/checkpoint.h"
#include "train/commands.h"
#include "train/model_options.h"

int cmd_convert(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *which = "ema";
    HintOptions ho = {0};
    Option options[3 + HINT_OPTION_COUNT] = {
        {"in", OPT_STRING, &in,
         "weights to read: official DiT/DyDiT or diffusers names; F32, F16 or BF16; or a checkpoint or run directory",
         NULL, 0, NO_RANGE},
        {"out", OPT_STRING, &out, "dydit weights file to write (F32, config in the metadata)", NULL, 0, NO_RANGE},
        {"weights", OPT_STRING, &which, "from a checkpoint: 'ema' (the averaged weights) or 'raw' (the trained ones)",
         NULL, 0, NO_RANGE},
    };
    hint_options_add(&ho, options, 3);
    OptionSet set = {"convert",
                     "Normalise a safetensors weights file: official names, F32, the configuration stored in its "
                     "metadata. (.pt checkpoints: first run tools/convert_checkpoint.py; back to .pt: "
                     "tools/export_checkpoint.py.)",
                     "dydit convert --in A.safetensors --out B.safetensors [--model DiT-XL/2 | --heads 16]\n"
                     "       dydit convert --in RUN_OR_CHECKPOINT_DIR [--weights ema|raw] --out B.safetensors",
                     options, 3 + HINT_OPTION_COUNT};
    options_parse(&set, argc, argv);
    if (!in || !out) die("--in and --out are required (see dydit convert --help)");
    if (strcmp(which, "ema") && strcmp(which, "raw")) die("--weights must be 'ema' or 'raw' (got '%s')", which);
    // Writing safetensors bytes under another name (x.pt) would only fail later, in the reader.
    if (!ends_with(out, ".safetensors"))
        die("%s: dydit convert writes .safetensors only; for a PyTorch .pt, convert to W.safetensors and run "
            "/usr/bin/python3 tools/export_checkpoint.py W.safetensors OUT.pt",
            out);
    if (make_parent_dirs(out)) die("%s: cannot create its directory", out);
    char *from_checkpoint = NULL;
    if (dir_exists(in)) {
        char *dir = checkpoint_resolve(in);
        if (!dir) die("%s: neither a checkpoint (no state.json) nor a run directory with checkpoints/latest", in);
        from_checkpoint = xasprintf("%s/%s.safetensors", dir, strcmp(which, "ema") ? "model" : "ema");
        free(dir);
        in = from_checkpoint;
    } else if (options_was_set(&set, "weights")) {
        die("--weights chooses among a checkpoint's weights; %s is a file", in);
    }
    OutputFiles outputs = {0};
    const char *out_file = output_files_add(&outputs, "--out", out);
    output_files_refuse_input(&outputs, "--in", in);
    WeightsHints hints = hint_options_hints(&ho, &set);
    DitConfig cfg;
    char err[1024], desc[256];
    if (weights_convert(in, out_file, &hints, &cfg, err, sizeof(err))) die("%s", err);
    output_files_commit(&outputs);
    dit_config_describe(&cfg, desc, sizeof(desc));
    printf("wrote %s: %s\n", out, desc);
    free(from_checkpoint);
    return 0;
}
