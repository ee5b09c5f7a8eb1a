// data/loader.h: the training data loader over a directory of latent shards (data/shard_index.h).
//
// Step s of a run consumes the global samples g = s * G + p, p < G (G = global batch); g visits
// the set in the seeded per-epoch order of data/epoch_order.h (epoch g / N). Rank r of R takes
// positions p = r * (G / R) + j, j < G / R, so R ranks together see exactly the batch one rank
// with the whole of G sees, in the same order. Every batch is a pure function of (seed, step):
// loader_seek(s) followed by loader_next gives exactly the batches an uninterrupted run gives.
//
// Only the samples a batch needs are read (pread), and F16 is widened to F32. With posterior
// storage, dataset sample i in epoch e gets the flip f = top bit of Philox(seed, RNG_FLIP, e, i,
// element 0) and eps[k] = normal(seed, RNG_POSTERIOR, e, i, element k), and becomes
// scale_factor * (mean[i, f] + std[i, f] * eps); with sample storage it is scale_factor *
// latents[i]. A background thread (pthreads) fills up to `prefetch` batches ahead of the caller;
// it computes exactly what synchronous reads compute.
#pragma once
#include <stdint.h>

#include "data/shard.h"

typedef struct {
    int global_batch; // G, samples per step over all ranks; a multiple of world
    int rank, world;  // this process's slice of every step; 0 and 1 for a single process
    uint64_t seed;    // epoch order, flips and posterior noise
    int prefetch;     // batches prepared ahead by a background thread; 0 reads inside loader_next
} LoaderConfig;

typedef struct {
    int64_t count;               // N, samples in the set
    int channels, height, width; // of one latent
    int num_classes;
    int local_batch;           // G / world: the rows loader_next fills
    const ShardLayout *layout; // encoder, scale factor, storage, class names; owned by the loader
} LoaderInfo;

typedef struct Loader Loader;

// Opens DIR/index.json and every shard it lists, checking each against it. NULL with a one-line
// error in err when anything is missing, inconsistent or invalid.
Loader *loader_open(const char *dir, const LoaderConfig *cfg, char *err, int err_size);
LoaderInfo loader_info(const Loader *l);
// Fills x0 (local_batch, C, H, W) and labels (local_batch) with this rank's slice of step
// loader_cursor(l), then advances the cursor. 0, or -1 with err (an unreadable shard, a non-finite
// value); after an error the loader keeps returning it.
int loader_next(Loader *l, float *x0, int32_t *labels, char *err, int err_size);
// The step the next loader_next returns: the data cursor a checkpoint stores.
uint64_t loader_cursor(const Loader *l);
// Makes `step` the next step (resume); discards batches prepared ahead.
void loader_seek(Loader *l, uint64_t step);
void loader_close(Loader *l);
