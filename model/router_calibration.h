// model/router_calibration.h: the FLOPs ratio a DyDiT realises when it samples, and a shift of its
// routers' output biases that makes that ratio meet a target.
//
// Training decides with logistic noise and a temperature, sampling decides deterministically
// (logit > 0), and the EMA weights lag the routers' last moves: a model trained to lambda 0.5 can
// sample at 0.6 or more. Adding one shift delta to the output bias of every router (head, channel
// group and token routers) moves every logit by delta, so the realised ratio rises monotonically
// with delta (up to the feedback of token decisions on the generated images), and a bracketing
// search finds the delta whose realised ratio lies within a tolerance of the target.
#pragma once
#include <stdint.h>

#include "model/sampler.h"

// What one measurement samples: `samples` images with labels 0, 1, ... (mod classes), DDPM with
// `steps` steps and guidance `cfg_scale`, noise from `seed`; clip_denoised as in SamplerConfig
// (token decisions follow the images, so the probe should sample as the user will).
typedef struct {
    int samples, steps;
    float cfg_scale;
    int clip_denoised;
    uint64_t seed;
} RatioProbe;

// Runs the probe on the dynamic engine and returns the mean over its steps of the executed MACs
// per row over the static network's; stats (sampler_steps rows, may be NULL) receives each step.
double dydit_sampling_ratio(const DitModel *m, const RatioProbe *p, SamplerStepStats *stats);

// The same for other weights of m's configuration (e.g. the EMA during training): params
// (table.total floats) on m's backend; m's own weights are not touched.
double dydit_sampling_ratio_of(const DitModel *m, float *params, const RatioProbe *p);

// The number of steps the probe's schedule has (the rows dydit_sampling_ratio fills).
int ratio_probe_steps(const DitModel *m, const RatioProbe *p);

typedef struct {
    double delta;        // the bias shift applied
    double ratio_before; // realised ratio at delta 0
    double ratio;        // realised ratio at delta
    int evaluations;     // probe runs taken
} RouterCalibration;

// Shifts m's router output biases (on its backend) by the delta whose realised ratio is closest to
// target, searching until it is within tolerance or the bracket is narrower than 1e-4. progress
// (may be NULL) is called after every probe run. Dies when no delta in [-64, 64] brackets the target.
RouterCalibration dydit_calibrate_routers(DitModel *m, const RatioProbe *p, double target, double tolerance,
                                          void (*progress)(double delta, double ratio));
