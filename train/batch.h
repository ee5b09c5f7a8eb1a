// train/batch.h: the host side of one training batch, or of one rank's slice of it: latents from
// the run's data source (an in-memory set in the seeded epoch order, or the shard loader, which
// follows the same order), labels after dropout (drawn separately for DyDiT's complete path), and
// timesteps (uniform, or stratified over the four quarters of the schedule). Every draw is keyed
// by the global sample index, so a slice of a global batch draws what the whole batch draws.
#pragma once
#include <stdint.h>

#include "data/latent_set.h"

typedef struct DataSource DataSource;

typedef struct {
    int64_t count;
    int channels, height, width, num_classes;
} DataShape;

// An in-memory set (not copied: it must outlive the source).
DataSource *data_source_memory(const LatentSet *set, uint64_t seed);
// A directory of latent shards (dydit encode's output), read by a prefetching loader for global
// batches of `global_batch`, of which this source reads rank `rank` of `world`'s slice (see
// data/loader.h). NULL with a one-line error in err.
DataSource *data_source_shards(const char *dir, int global_batch, int rank, int world, uint64_t seed, char *err,
                               int err_size);
DataShape data_source_shape(const DataSource *ds);
void data_source_close(DataSource *ds);

typedef struct {
    uint64_t seed;
    int global_batch;    // G: samples per step over all ranks
    int first, count;    // the positions [first, first + count) of the step's batch held here
    int num_classes;     // the null label is num_classes
    float class_dropout; // probability of replacing a label by the null label
    int stratified;      // 1: timesteps stratified over quarters
    int timesteps;       // T of the schedule
} BatchRecipe;

// Shapes with n = the recipe's count.
typedef struct {
    float *x0;           // (n, C, H, W)
    int32_t *labels;     // (n) clean labels
    int32_t *y;          // (n) labels after dropout
    int32_t *y_complete; // (n) labels after an independent dropout, for DyDiT's complete path
    int32_t *t;          // (n) timestep indices
} HostBatch;

void host_batch_alloc(HostBatch *hb, int count, size_t sample_numel);
void host_batch_free(HostBatch *hb);
// Fills the samples of training step `step` at positions [first, first + count) of its batch
// (global samples step * G + first ...); exits with a one-line error when the data source fails.
void host_batch_fill(HostBatch *hb, const BatchRecipe *r, DataSource *ds, long step);
