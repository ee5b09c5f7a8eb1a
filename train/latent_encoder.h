// train/latent_encoder.h: what `dydit encode` stores for a batch of images: the pixels themselves
// ("identity") or the SD VAE posterior ("sd-vae", model/vae.h, docs/algorithm.md 8.2 and 2.8).
//
// Sample storage keeps one latent per image: the image, or mean + std * eps of the unflipped
// image's posterior, eps = normal(seed, RNG_POSTERIOR, UINT32_MAX, item, element) so a resumed
// encode redraws the same numbers. Posterior storage keeps mean and std for the image and for its
// horizontal mirror (for identity: both images and a zero std), so the loader can draw the flip
// and the posterior sample afresh every epoch.
#pragma once
#include <stdint.h>

#include "data/shard.h"
#include "kernels/ops.h"

typedef struct LatentEncoder LatentEncoder;

// kind "identity" or "sd-vae" (then vae_path names the weights, run on `ops`); images have `channels` channels
// (a single channel is repeated to RGB for the VAE) and side `size`; at most `batch` per call.
// NULL with a one-line err.
LatentEncoder *latent_encoder_open(const char *kind, const char *vae_path, const Ops *ops, int channels, int size,
                                   int batch, char *err, int err_size);
void latent_encoder_close(LatentEncoder *e);
// Shape of one latent and the factor the loader multiplies stored values by.
void latent_encoder_shape(const LatentEncoder *e, int *channels, int *height, int *width, float *scale_factor);

// images (B, channels, size, size) in [-1, 1], items (B) their input item numbers ->
// sample storage: latents (B, C, H, W); posterior storage: mean and std (B, 2, C, H, W).
void latent_encoder_run(LatentEncoder *e, const float *images, const int64_t *items, int B, ShardStorage storage,
                        uint64_t seed, float *latents, float *mean, float *std);
