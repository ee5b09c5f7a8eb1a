// train/checkpoint.h: training checkpoints. A run directory holds checkpoints/step-NNNNNNN/ with
// model.safetensors, ema.safetensors (dydit weight files), optimizer.safetensors (AdamW's first
// and second moments over the trainable range, flat, with the update count in the metadata) and
// state.json (step, seed, the effective options); checkpoints/latest names the newest. Each
// checkpoint is written under a temporary name, synced and renamed, so a crash never leaves a
// half-written checkpoint where a resume would find it; only the newest `keep` are kept.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "model/config.h"
#include "model/tensors.h"

typedef struct {
    long step;           // training steps done (the next step to run)
    long optimizer_step; // AdamW updates applied (skipped steps do not count)
    uint64_t seed;
} CheckpointState;

// Host buffers of a checkpoint: params and ema (table->total floats each), AdamW moments
// (table->total - table->trainable_begin floats each).
typedef struct {
    const float *params, *ema, *adam_m, *adam_v;
} CheckpointTensors;

// Writes run_dir/checkpoints/step-<step> and points checkpoints/latest at it; exits with a one-line
// error when the disk refuses.
void checkpoint_save(const char *run_dir, const CheckpointState *state, const DitConfig *cfg, const TensorTable *table,
                     const CheckpointTensors *tensors, const char *options_json, int keep);

typedef struct {
    DitConfig cfg;
    TensorTable table;
    CheckpointState state;
    float *params, *ema, *adam_m, *adam_v; // allocated; checkpoint_loaded_free releases them
} LoadedCheckpoint;

// Loads a checkpoint directory, or the newest one of a run directory. 0, or -1 with a one-line
// "PATH: problem" in err.
int checkpoint_load(const char *path, LoadedCheckpoint *out, char *err, int err_size);
void checkpoint_loaded_free(LoadedCheckpoint *c);
