// train/trainer.h: the training loop (docs/algorithm.md 2, 4): per step a batch in the seeded epoch order,
// label dropout, timesteps, diffusion noise and (DyDiT) router noise from the counter-based
// generator keyed by global sample index; forward/backward passes of the objective; the gradient
// policy, one AdamW step (or none when skipped), EMA every step; JSON log lines; checkpoints;
// final weights. DyDiT fine-tuning adds the FLOPs loss towards a warmed-up target, stage 1's
// complete-path loss, and a straight-through temperature schedule.
//
// Data parallelism: the ranks of a Dist split every step's global batch B into contiguous slices
// of B / world samples by position, and each rank walks its slice in micro-batches whose
// gradients accumulate with weight 1 / B. Every draw is keyed by global sample index, so any
// number of ranks and any micro-batch size compute the step one process computes with the whole
// batch, up to the order of floating-point sums. Gradients are summed over ranks (all-reduce, or
// reduce-scatter with ZeRO-1), loss terms and metrics are reduced over ranks (means weighted by
// sample counts), and only rank 0 prints, logs and writes files.
#pragma once
#include <stdint.h>

#include "data/latent_set.h"
#include "kernels/backend.h"
#include "model/config.h"
#include "optim/optimizer.h"
#include "train/dist.h"

typedef struct {
    int stage;            // 1: dynamic + complete path + FLOPs loss; 2: dynamic + FLOPs loss
    double lambda;        // target FLOPs ratio
    long lambda_warmup;   // the target falls linearly from 1 to lambda over these steps (0: at once)
    long lambda_hold;     // -1: the official schedule (the ramp starts at step 0, but the target is 1
                          // for the first 100 steps regardless; docs/algorithm.md 4.2); N >= 0: the
                          // target is 1 for steps 0..N-1, then the lambda_warmup ramp starts at N
    double flops_weight;  // weight of (mean F - target)^2
    int flops_group_size; // see DynamicTerms (0: the whole global batch). A group size dividing the
                          // micro-batch keeps the loss local to each pass; otherwise a group's
                          // mean F is summed over ranks during the pass (one pass per rank) or by
                          // a forward-only pass over the rank's micro-batches first (several)
    double tau, tau_end;  // straight-through temperature, linear from tau to tau_end over the run
    double threshold;     // decision threshold of the routers
} DyditTraining;

typedef struct {
    DitConfig model;
    const Backend *backend;    // where the run computes (every rank opens its own); NULL: the CPU
    const float *init_params;  // host weights to start from (table layout), or NULL for DiT's init
    const LatentSet *data;     // an in-memory set, or
    const char *data_dir;      // a directory of latent shards
    long steps;                // the run ends when this many steps are done (a resumed run continues)
    int batch;                 // global batch: samples per step over all ranks
    int micro_batch;           // samples per forward/backward pass on a rank; 0: the rank's whole slice
    int zero;                  // 1: ZeRO-1, AdamW's moments sharded over the ranks
    double bucket_mb;          // MiB of gradients per all-reduce bucket (0: 25)
    Dist *dist;                // the job's ranks; NULL: a single process
    double collective_timeout; // seconds a device collective may wait for the other ranks (0: forever)
    int stratified;            // timesteps stratified over the schedule's quarters (docs/algorithm.md 4.4)
    OptimConfig optim;
    DyditTraining dydit; // used when model.dynamic
    uint64_t seed;
    int log_every;            // a JSON line every this many steps (and the first and last)
    const char *log_path;     // JSON lines file (appended to when resuming); NULL: stdout
    const char *out_dir;      // weights and checkpoints go here; NULL: nothing written
    long checkpoint_every;    // 0: a checkpoint only at the end
    int keep_checkpoints;     // how many checkpoints to keep
    const char *resume;       // a checkpoint or run directory to continue from, or NULL
    const char *options_json; // the effective options, stored in what the run writes
    int quiet;                // no progress lines on stderr
    int probe_samples;        // DyDiT: samples of the EMA's sampling-ratio probe at checkpoints and the end (0: off)
    int probe_steps;          // DyDiT: DDPM steps of that probe
} TrainConfig;

typedef struct {
    double first_loss, last_loss; // total losses of the first and the last step run
    double mean_first, mean_last; // mean total loss over the first and the last 10% of the steps run
    double diffusion_last;        // mean (dynamic) mse + vb over the last 10% of the steps
    double flops_ratio_last;      // DyDiT: mean realised FLOPs ratio over the last 10% of the steps
    long skipped;                 // updates cancelled by the gradient policy or a non-finite loss
    double images_per_second;     // of the whole job
    long stopped_at;              // a graceful stop (stop_request.h): the step of the checkpoint written; else 0
} TrainSummary;

// The FLOPs target of `step` (docs/algorithm.md 4.2).
double dydit_target_at(const DyditTraining *d, long step);
// The straight-through temperature of `step` in a run of `steps` steps.
double dydit_tau_at(const DyditTraining *d, long step, long steps);

// Runs the loop on every rank of tc->dist; exits with a one-line error on invalid input (which
// ends every rank). The summary is the same on every rank. A stop request (train/stop_request.h:
// SIGTERM, SIGINT, SIGUSR1, the time limit) on any rank ends the run on every rank after the same
// step, with a checkpoint (summary.stopped_at). A failed periodic checkpoint
// is a warning (the previous one stays intact and training goes on); a failed final one is fatal.
TrainSummary train_run(const TrainConfig *tc);
