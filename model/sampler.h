// model/sampler.h: ancestral DDPM and DDIM sampling with classifier-free guidance (docs/algorithm.md 2.4-2.7)
// on the inference engine (static, or DyDiT's dynamic engine).
//
// Guidance runs a batch of 2n rows: the n samples, then the same n latents with the null label.
// Both halves always see the same x_t; by default only output channels 0-2 are guided, exactly as
// DiT and DyDiT do (the standard form guides all C eps channels: cfg_all_channels). The initial
// latent of global sample g is normal noise from the stream (seed, RNG_SAMPLE, S, g) and step k's
// noise from (seed, RNG_SAMPLE, k, g), S being the number of steps, so samples do not depend on
// the batch they are generated in.
#pragma once
#include <stdint.h>

#include "model/diffusion.h"
#include "model/dit_infer.h"

typedef enum { SAMPLER_DDPM, SAMPLER_DDIM } SamplerKind;

typedef struct {
    SamplerKind kind;
    const char *spacing;  // respacing of the 1000-step schedule: "250", "50", "ddim50", ...
    float eta;            // DDIM noise scale (0: deterministic)
    float cfg_scale;      // guidance scale; 1 (or less) runs without guidance
    int cfg_all_channels; // 1: guide every eps channel instead of channels 0-2
    int clip_denoised;    // 1: clamp the x0 prediction to [-1, 1] (data in that range, e.g. pixels)
    uint64_t seed;
} SamplerConfig;

// Per-step statistics of one sampling run, one row per step in sampling order.
typedef struct {
    int timestep;                             // the network timestep of the step
    double macs_per_row;                      // executed multiply-adds of one row's forward
    double static_macs_per_row;               // what the static network executes per row
    double head_keep, group_keep, token_keep; // DyDiT
} SamplerStepStats;

typedef struct Sampler Sampler;

// A sampler for up to `capacity` samples per call (2 * capacity rows with guidance). engine_dynamic:
// for a DyDiT, 1 skips the switched-off work, 0 runs the complete (static) network. Dies with a
// one-line error on an invalid spacing.
Sampler *sampler_create(const DitModel *m, const SamplerConfig *cfg, int capacity, int engine_dynamic);
// clip_denoised's default without a VAE: models of 1 or 3 channels sample pixels in [-1, 1].
int sampler_clips_pixels(const DitConfig *c);
void sampler_destroy(Sampler *s);
int sampler_steps(const Sampler *s);

// What a run reports besides its samples; every member may be NULL.
typedef struct {
    SamplerStepStats *stats; // (sampler_steps) rows, in sampling order
    float *trace;            // host copies for checks: the initial latents (n, C, H, W), then each
                             // step's noise (S, n, C, H, W) in sampling order
    // called after each step's forward with the step's index in sampling order (the engine then
    // holds that forward's token decisions)
    void (*on_step)(void *ctx, int index, int timestep, const DitInfer *engine);
    void *ctx;
} SamplerRecord;

// Generates n samples with labels y (n) and global indices first, first + 1, ... into x_out (n, C,
// H, W) on the backend. record may be NULL.
void sampler_run(Sampler *s, const int32_t *y, int n, uint32_t first, float *x_out, const SamplerRecord *record);
// The engine, for the token decisions of the last forward.
const DitInfer *sampler_engine(const Sampler *s);
