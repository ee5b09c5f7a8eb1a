// train/trainer.h: the DiT training loop on an in-memory latent set (SPEC 2, 4.5): per step a
// batch in the seeded epoch order, label dropout, uniform timesteps and noise from the
// counter-based generator keyed by global sample index, one forward/backward, the gradient
// policy, AdamW, EMA, a JSON log line, and final weights.
#pragma once
#include <stdint.h>

#include "data/latent_set.h"
#include "model/config.h"
#include "optim/optimizer.h"

typedef struct {
    DitConfig model;
    const float *init_params; // host weights to start from (table layout), or NULL for DiT's init
    const LatentSet *data;
    long steps;
    int batch;
    OptimConfig optim;
    uint64_t seed;
    int log_every;            // a JSON line every this many steps (and the first and last)
    const char *log_path;     // JSON lines file; NULL: stdout
    const char *out_dir;      // model.safetensors and ema.safetensors go here; NULL: nothing written
    const char *options_json; // the effective options, stored in the written files
    int quiet;                // no progress lines on stderr
} TrainConfig;

typedef struct {
    double first_loss, last_loss; // batch losses of the first and the last step
    double mean_first, mean_last; // mean loss over the first and the last 10% of the steps
    long skipped;                 // updates cancelled by the gradient policy
    double images_per_second;
} TrainSummary;

// Runs the loop; exits with a one-line error on invalid input.
TrainSummary train_run(const TrainConfig *tc);
