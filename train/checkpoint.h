// train/checkpoint.h: training checkpoints. A run directory holds checkpoints/step-NNNNNNN/ with
// model.safetensors, ema.safetensors (dydit weight files), optimizer.safetensors (AdamW's first
// and second moments over the trainable range, flat, with the update count in the metadata) and
// state.json (step, the data cursor, the random streams' position, the target-ratio schedule's
// state, the effective options); checkpoints/latest names the newest. Each checkpoint is written
// under a temporary name, synced and renamed, so a crash never leaves a half-written checkpoint
// where a resume would find it. Pruning keeps the checkpoint just written (the one latest names)
// and the newest keep - 1 of earlier steps; checkpoints of later steps (another, longer run into
// the same directory) and symbolic links are never removed, and removal never follows a link.
//
// Every batch and every random number of a run is a pure function of (seed, step, global sample
// index) (DESIGN 5), so the step, the global batch and the seed locate the data cursor and the
// random streams exactly; state.json spells them out for readers and for the checks on resume.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "model/config.h"
#include "model/tensors.h"

typedef struct {
    long step;           // training steps done (the next step to run)
    long optimizer_step; // AdamW updates applied (skipped steps do not count)
    uint64_t seed;
    int batch;           // global batch: the data cursor is at sample step * batch
    double target_ratio; // DyDiT: the FLOPs target of the next step (1 for a DiT)
    double tau;          // DyDiT: the Gumbel-sigmoid temperature of the next step
} CheckpointState;

// Host buffers of a checkpoint: params and ema (table->total floats each), AdamW moments
// (table->total - table->trainable_begin floats each).
typedef struct {
    const float *params, *ema, *adam_m, *adam_v;
} CheckpointTensors;

// Writes run_dir/checkpoints/step-<step> and points checkpoints/latest at it. 0, or -1 with a
// one-line "PATH: problem" in err when the disk refuses (full, read-only, ...): the partial
// checkpoint is removed and the previous ones and checkpoints/latest are left as they were.
int checkpoint_save(const char *run_dir, const CheckpointState *state, const DitConfig *cfg, const TensorTable *table,
                    const CheckpointTensors *tensors, const char *options_json, int keep, char *err, int err_size);

typedef struct {
    DitConfig cfg;
    TensorTable table;
    CheckpointState state;
    float *params, *ema, *adam_m, *adam_v; // allocated; checkpoint_loaded_free releases them
} LoadedCheckpoint;

// The checkpoint directory `path` names: itself when it holds state.json, else the one its
// checkpoints/latest names (a run directory); NULL when neither. The caller frees it.
char *checkpoint_resolve(const char *path);

// Loads a checkpoint directory, or the newest one of a run directory. 0, or -1 with a one-line
// "PATH: problem" in err. state.batch is 0 when the file predates that field.
int checkpoint_load(const char *path, LoadedCheckpoint *out, char *err, int err_size);
void checkpoint_loaded_free(LoadedCheckpoint *c);
