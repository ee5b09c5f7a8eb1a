// data/latent_set.h: a training set of latents held in memory (small sets, tests, quickstarts).
// Larger sets stream from shards; this one either reads one safetensors file holding `latents`
// (N, C, H, W) and `labels` (N), or generates a class-conditional synthetic set.
#pragma once
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int64_t count; // N
    int channels, height, width;
    int num_classes; // labels lie in [0, num_classes)
    float *latents;  // (N, C, H, W)
    int32_t *labels; // (N)
} LatentSet;

// Reads `latents` (F32/F16/BF16) and `labels` (any integer dtype) from a safetensors file; the
// number of classes is the metadata key `num_classes` when present, else max label + 1.
// 0, or -1 with a one-line "PATH: problem" in err.
int latent_set_load(LatentSet *set, const char *path, char *err, int err_size);

// N samples of C x S x S: each class k draws a smooth plane wave with its own frequencies and
// phases per channel, plus a little per-sample noise (values within about [-1, 1]). Learnable
// within a few hundred steps by a tiny DiT, so a falling loss is a meaningful signal.
void latent_set_synthetic(LatentSet *set, int64_t count, int channels, int size, int num_classes, uint64_t seed);

void latent_set_free(LatentSet *set);
size_t latent_set_sample_numel(const LatentSet *set);
