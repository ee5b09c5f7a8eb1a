// train/model_options.h: the model-shape options every command shares (--model, --depth, ...).
#pragma once
#include "model/config.h"
#include "model/weights.h"
#include "train/options.h"

typedef struct {
    const char *model; // preset name
    int depth, hidden, heads, patch, in_channels, input_size, num_classes, learn_sigma;
    double mlp_ratio, class_dropout;
} ModelOptions;

enum { MODEL_OPTION_COUNT = 11 };

// Appends the model options (pointing into mo) to options[] starting at index `at`.
void model_options_add(ModelOptions *mo, Option *options, int at);
// The configuration the options describe: DiT-XL/2 defaults, then the preset, then every option
// given explicitly. Exits with a one-line error for unknown presets or invalid shapes.
DitConfig model_options_config(const ModelOptions *mo, const OptionSet *set);
// Whether any model option was given (commands that read weights use them as hints).
int model_options_any_set(const OptionSet *set);

// Options that help read a weights file whose shapes do not tell everything (see model/weights.h).
typedef struct {
    const char *model;
    int heads, input_size;
    double class_dropout;
} HintOptions;

enum { HINT_OPTION_COUNT = 4 };

void hint_options_add(HintOptions *ho, Option *options, int at);
// Hints for the options that were given.
WeightsHints hint_options_hints(const HintOptions *ho, const OptionSet *set);
