// train/train_state.h: what every rank of a run holds and how it changes. Each rank holds the whole
// model and a full EMA; AdamW's moments cover the trainable range, or with ZeRO-1 only the rank's
// contiguous shard of it (dist_shard: ceil(n / world) floats per rank). After the backward, the
// update turns the ranks' gradients into one identical step on every rank:
//   without ZeRO  all-reduce of the flat gradients in buckets; every rank computes the global norm
//                 and runs AdamW over the whole range;
//   with ZeRO-1   reduce-scatter of the gradients; the global norm from the shards' sums of squares
//                 (one all-reduce of a double); AdamW over the rank's shard; all-gather of the
//                 parameters (skipped when the policy cancelled the update);
// then the EMA over the whole buffer. Checkpoints hold the full moments whatever the sharding, so
// a run resumes on any number of ranks, with or without ZeRO.
#pragma once
#include <stddef.h>

#include "model/dit.h"
#include "optim/optimizer.h"
#include "train/device_collectives.h"
#include "train/dist.h"
#include "train/trainer.h"

typedef struct {
    const Backend *backend;
    DitModel m;
    float *ema;             // (total) a full copy on every rank
    float *adam_m, *adam_v; // (shard.count) AdamW moments of this rank's shard
    float *grad_shard;      // ZeRO-1: this rank's shard of the summed gradients (room for
                            // device_shard_capacity floats, shard.count used); else NULL
    size_t total, first_trainable, trainable;
    DistShard shard; // this rank's part of the trainable range: all of it without ZeRO
    Optimizer opt;
    long start_step;
    Dist *dist;
    DeviceCollectives *collectives; // the sums over ranks, on the backend's buffers
    int zero;
    size_t bucket; // floats per all-reduce bucket
} TrainState;

// Builds the model on tc->backend for passes of up to `capacity` samples and its starting point: the checkpoint of
// tc->resume, or tc->init_params, or DiT's initialisation. Every rank reads the same files.
void train_state_create(TrainState *s, const TrainConfig *tc, Dist *d, int capacity);
void train_state_destroy(TrainState *s);

// The update of iteration `step` from the gradients in m.grads (this rank's share of the step's
// mean gradient). A non-finite loss (the same on every rank) or gradient norm cancels the update.
// Collective: every rank calls it.
OptimStepInfo train_state_update(TrainState *s, long step, double loss);

// A checkpoint of `step` in tc->out_dir (collective: rank 0 gathers ZeRO's moments and writes).
// Nothing non-finite is ever written. 0, or -1 on every rank when rank 0 could not write (err
// holds the reason on rank 0); earlier checkpoints are then intact.
int train_state_save_checkpoint(TrainState *s, const TrainConfig *tc, long step, char *err, int err_size);
// model.safetensors and ema.safetensors in tc->out_dir, written by rank 0; same outcome rules.
int train_state_save_weights(TrainState *s, const TrainConfig *tc, long step, char *err, int err_size);
