#include "train/model_options.h"

#include "common/util.h"

static const char *const model_option_names[MODEL_OPTION_COUNT] = {
    "model",      "depth",       "hidden",      "heads",     "patch",         "in-channels",
    "input-size", "num-classes", "learn-sigma", "mlp-ratio", "class-dropout",
};

void model_options_add(ModelOptions *mo, Option *o, int at) {
    const char *preset = "from --model";
    const Option list[MODEL_OPTION_COUNT] = {
        {model_option_names[0], OPT_STRING, &mo->model, "preset DiT-{S,B,L,XL}/{2,4,8}", "DiT-XL/2", 0, NO_RANGE},
        {model_option_names[1], OPT_INT, &mo->depth, "number of blocks", preset, 0, RANGE(1, DIT_MAX_DEPTH)},
        {model_option_names[2], OPT_INT, &mo->hidden, "width D", preset, 0, RANGE(2, DIT_MAX_HIDDEN)},
        {model_option_names[3], OPT_INT, &mo->heads, "attention heads", preset, 0, RANGE(1, DIT_MAX_HEADS)},
        {model_option_names[4], OPT_INT, &mo->patch, "patch size", preset, 0, RANGE(1, DIT_MAX_PATCH)},
        {model_option_names[5], OPT_INT, &mo->in_channels, "latent channels", "4", 0, RANGE(1, DIT_MAX_CHANNELS)},
        {model_option_names[6], OPT_INT, &mo->input_size, "latent height = width", "32", 0,
         RANGE(1, DIT_MAX_INPUT_SIZE)},
        {model_option_names[7], OPT_INT, &mo->num_classes, "classes (a null class is added for guidance)", "1000", 0,
         RANGE(1, DIT_MAX_CLASSES)},
        {model_option_names[8], OPT_INT, &mo->learn_sigma, "1: predict the variance too (2C outputs)", "1", 0,
         RANGE(0, 1)},
        {model_option_names[9], OPT_FLOAT, &mo->mlp_ratio, "MLP hidden / width", "4", 0,
         RANGE_ABOVE(0, DIT_MAX_MLP_RATIO)},
        {model_option_names[10], OPT_FLOAT, &mo->class_dropout, "label dropout probability", "0.1", 0,
         RANGE_BELOW(0, 1)},
    };
    for (int i = 0; i < MODEL_OPTION_COUNT; i++) o[at + i] = list[i];
}

DitConfig model_options_config(const ModelOptions *mo, const OptionSet *set) {
    DitConfig c = dit_config_default();
    if (options_was_set(set, "model") && dit_config_apply_preset(&c, mo->model))
        die("unknown model '%s' (presets: DiT-S/2 ... DiT-XL/8)", mo->model);
#define TAKE(opt, field, value)                                                                                        \
    if (options_was_set(set, opt)) c.field = value
    TAKE("depth", depth, mo->depth);
    TAKE("hidden", hidden, mo->hidden);
    TAKE("heads", heads, mo->heads);
    TAKE("patch", patch, mo->patch);
    TAKE("in-channels", in_channels, mo->in_channels);
    TAKE("input-size", input_size, mo->input_size);
    TAKE("num-classes", num_classes, mo->num_classes);
    TAKE("learn-sigma", learn_sigma, mo->learn_sigma != 0);
    TAKE("mlp-ratio", mlp_ratio, (float)mo->mlp_ratio);
    TAKE("class-dropout", class_dropout, (float)mo->class_dropout);
#undef TAKE
    char why[256];
    if (dit_config_validate(&c, why, sizeof(why))) die("invalid model: %s", why);
    return c;
}

int model_options_any_set(const OptionSet *set) {
    for (int k = 0; k < MODEL_OPTION_COUNT; k++)
        if (options_was_set(set, model_option_names[k])) return 1;
    return 0;
}

void hint_options_add(HintOptions *ho, Option *o, int at) {
    const Option list[HINT_OPTION_COUNT] = {
        {"model", OPT_STRING, &ho->model, "preset name, when the weights do not say (e.g. DiT-XL/2)", "from the file",
         0, NO_RANGE},
        {"heads", OPT_INT, &ho->heads, "attention heads, when the weights do not say", "from the file", 0,
         RANGE(1, DIT_MAX_HEADS)},
        {"input-size", OPT_INT, &ho->input_size, "latent size, when the weights have no pos_embed", "from the file", 0,
         RANGE(1, DIT_MAX_INPUT_SIZE)},
        {"class-dropout", OPT_FLOAT, &ho->class_dropout, "0: the label table has no null row", "from the file", 0,
         RANGE_BELOW(0, 1)},
    };
    for (int i = 0; i < HINT_OPTION_COUNT; i++) o[at + i] = list[i];
}

WeightsHints hint_options_hints(const HintOptions *ho, const OptionSet *set) {
    WeightsHints h = {0};
    if (options_was_set(set, "model")) h.model = ho->model;
    if (options_was_set(set, "heads")) h.heads = ho->heads;
    if (options_was_set(set, "input-size")) h.input_size = ho->input_size;
    if (options_was_set(set, "class-dropout")) {
        h.has_class_dropout = 1;
        h.class_dropout = (float)ho->class_dropout;
    }
    return h;
}
