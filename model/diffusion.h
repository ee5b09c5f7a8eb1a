// model/diffusion.h: the Gaussian diffusion schedule (docs/algorithm.md 2.1), timestep respacing
// (docs/algorithm.md 2.4), the per-sample coefficients the diffusion ops consume, and timestep
// sampling (docs/algorithm.md 2.2).
//
// Every table is float64, as in the reference code; per-sample values are gathered from the
// float64 tables and rounded once to float32, which is what the reference code feeds its float32
// loss and sampler arithmetic.
#pragma once
#include <stdint.h>

typedef struct {
    int T;                                  // number of steps; tables are indexed by k in [0, T)
    int *timestep_map;                      // (T): the timestep the network sees at step k
                                            // (identity, except for a respaced schedule)
    double *betas;                          // (T) beta_k
    double *alphas_cumprod;                 // (T) abar_k = prod_{j <= k} (1 - beta_j)
    double *alphas_cumprod_prev;            // (T) abar_{k-1}, with abar_{-1} = 1
    double *sqrt_alphas_cumprod;            // (T) sqrt(abar)
    double *sqrt_one_minus_alphas_cumprod;  // (T) sqrt(1 - abar)
    double *sqrt_recip_alphas_cumprod;      // (T) sqrt(1 / abar)
    double *sqrt_recipm1_alphas_cumprod;    // (T) sqrt(1 / abar - 1)
    double *posterior_variance;             // (T) beta~_k = beta_k (1 - abar_{k-1}) / (1 - abar_k)
    double *posterior_log_variance_clipped; // (T) log beta~_k, entry 0 replaced by log beta~_1
    double *posterior_mean_coef1;           // (T) c1_k = beta_k sqrt(abar_{k-1}) / (1 - abar_k)
    double *posterior_mean_coef2;           // (T) c2_k = (1 - abar_{k-1}) sqrt(alpha_k) / (1 - abar_k)
    double *log_betas;                      // (T) log beta_k
} DiffusionSchedule;

// Builds every table from betas (T of them, each in (0, 1], T >= 2) with the identity timestep map.
// Dies on invalid input.
DiffusionSchedule diffusion_schedule_from_betas(const double *betas, int T);
// The linear schedule: betas = linspace(s * 1e-4, s * 0.02, T) with s = 1000 / T, computed like
// numpy.linspace (start + i * step, last entry exactly the end). T = 1000 is DiT's schedule.
DiffusionSchedule diffusion_schedule_linear(int T);
void diffusion_schedule_free(DiffusionSchedule *s);

// Parses a respacing string for a T-step schedule (docs/algorithm.md 2.4): "N" or comma-separated section
// counts "N1,N2,..." (T split into equal sections, each strided evenly with Python's
// round-half-to-even), or "ddimN" (the smallest integer stride i with len(range(0, T, i)) = N).
// Writes the kept steps in increasing order into steps (capacity T) and returns their count,
// or returns -1 and writes a one-line reason into why.
int diffusion_space_timesteps(int T, const char *spec, int *steps, char *why, int why_size);
// The schedule restricted to the kept steps (increasing, count >= 2): beta'_k =
// 1 - abar_{steps[k]} / abar_{steps[k-1]} (abar_{steps[-1]} = 1), every table rebuilt from beta',
// and timestep_map[k] = base->timestep_map[steps[k]].
DiffusionSchedule diffusion_schedule_respace(const DiffusionSchedule *base, const int *steps, int count);

// coef (B, COEF_COUNT) laid out as enum DiffusionCoef (kernels/ops.h), for step indices t (B) of s.
void diffusion_gather_coefs(const DiffusionSchedule *s, const int32_t *t, int B, float *coef);

// t (B): timesteps uniform in [0, T), sample b drawn from the stream (seed, RNG_TIMESTEP, step,
// sample0 + b), so a slice of a global batch draws what the whole batch draws.
void diffusion_sample_timesteps(int32_t *t, int B, int T, uint64_t seed, uint32_t step, uint32_t sample0);

// DyDiT's stratified draw (docs/algorithm.md 4.4): global sample g gets quarter g mod 4 and t uniform within it,
// [q T/4, (q + 1) T/4), so every four consecutive samples cover the four quarters once. T >= 4.
void diffusion_sample_timesteps_stratified(int32_t *t, int B, int T, uint64_t seed, uint32_t step, uint32_t sample0);
