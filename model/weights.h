// model/weights.h: DiT weight files <-> the tensor table.
//
// dydit's own weight file is safetensors with one F32 tensor per table entry under its official
// PyTorch name (pos_embed included) and the configuration in __metadata__ (format "dydit-weights",
// format_version "1", model, depth, hidden, heads, patch, in_channels, input_size, num_classes,
// learn_sigma, mlp_ratio, class_dropout, frequency_size), plus caller-provided entries.
//
// Reading accepts more: official names (docs/algorithm.md 7.1) or diffusers DiT names
// (docs/algorithm.md 7.4), F32, F16, BF16 or F64 tensors, and any, partial or no metadata. The
// configuration is assembled from every source that knows something, and the sources must agree:
//   1. tensor shapes (docs/algorithm.md 7.6): depth, hidden, patch, in_channels, mlp_ratio,
//      frequency_size, learn_sigma, input_size when pos_embed is present, heads for DyDiT router
//      tensors, and the label-table row count;
//   2. the file's metadata keys above (any subset; a "model" preset name also gives depth, hidden,
//      heads and patch);
//   3. the caller's hints (--model, --heads, --input-size, --class-dropout).
// The label table holds num_classes rows plus a null row when class_dropout > 0; when neither
// class_dropout nor num_classes is known, a null row is assumed (class_dropout 0.1,
// docs/algorithm.md 7.6). The number of heads is not stored in plain DiT weights: without a source
// the call fails and says to pass --heads or --model. All functions return 0, or -1 with a
// one-line "PATH: problem" in err.
#pragma once

#include "data/safetensors.h"
#include "model/config.h"
#include "model/tensors.h"

// A zero-initialised WeightsHints gives no hints.
typedef struct {
    const char *model;     // preset name such as "DiT-XL/2"; NULL: none
    int heads;             // 0: none
    int input_size;        // latent height = width; 0: none
    int has_class_dropout; // 1: class_dropout is given
    float class_dropout;   // 0: the label table has no null row; > 0: it has one
    int dynamic;           // 1: build a DyDiT; routers the file lacks keep their initialisation
    int has_router_input;  // 1: router_input is given
    int router_input;      // RouterInput of the width routers
} WeightsHints;

// Extra metadata written beside the configuration (e.g. {"step", "1000"}).
typedef struct {
    const char *key, *value;
} WeightsMeta;

// The metadata key for `format` and its value in dydit weight files.
#define WEIGHTS_FORMAT "dydit-weights"
#define WEIGHTS_FORMAT_VERSION "1"

// Assembles and validates the configuration of an open weights file as described above.
// hints may be NULL.
int weights_config(const StFile *f, const WeightsHints *hints, DitConfig *cfg, char *err, int err_size);

// Fills host (table->total floats, laid out by table) from the file. Every table tensor must be
// present with exactly its shape, except pos_embed: that one is always computed from cfg, and
// when the file has one that differs by more than 1e-5 a warning is printed. A tensor of the file
// that the table does not know, or a non-finite value, is an error. With diffusers names, qkv is
// assembled from to_q/to_k/to_v, the per-block copies of the embedders must have block 0's shapes
// (block 0's copy is used), and a warning says that diffusers' own outputs differ slightly (its
// timestep frequencies use /127 where DiT uses /128).
int weights_load(const StFile *f, const DitConfig *cfg, const TensorTable *table, float *host, char *err, int err_size);

// Opens path, assembles the configuration, builds its table and allocates and fills the host
// buffer (free with free(), table with tensor_table_free). Nothing is returned on failure.
int weights_load_file(const char *path, const WeightsHints *hints, DitConfig *cfg, TensorTable *table, float **host,
                      char *err, int err_size);

// Writes host as a dydit weights file (atomically, see st_writer_save). Extra keys must not be
// `format`, `format_version` or a configuration key. Refuses non-finite values.
int weights_save(const char *path, const DitConfig *cfg, const TensorTable *table, const float *host,
                 const WeightsMeta *extra, int extra_count, char *err, int err_size);

// `dydit convert`: reads any accepted weights file and writes the canonical dydit file. Metadata
// of the input other than the format and configuration keys (e.g. the training arguments stored
// by tools/convert_checkpoint.py) is carried over. cfg_out (may be NULL) receives the config.
int weights_convert(const char *in_path, const char *out_path, const WeightsHints *hints, DitConfig *cfg_out, char *err,
                    int err_size);
