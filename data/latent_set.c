#include "data/latent_set.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "data/safetensors.h"
#include "kernels/philox.h"

size_t latent_set_sample_numel(const LatentSet *s) { return (size_t)s->channels * s->height * s->width; }

void latent_set_free(LatentSet *s) {
    free(s->latents);
    free(s->labels);
    memset(s, 0, sizeof(*s));
}

#define FAIL(...)                                                                                                      \
    do {                                                                                                               \
        snprintf(err, (size_t)err_size, __VA_ARGS__);                                                                  \
        goto fail;                                                                                                     \
    } while (0)

int latent_set_load(LatentSet *s, const char *path, char *err, int err_size) {
    memset(s, 0, sizeof(*s));
    int64_t *labels = NULL;
    StFile *f = st_open(path, err, err_size);
    if (!f) return -1;
    const StTensor *lat = st_find(f, "latents"), *lab = st_find(f, "labels");
    if (!lat) FAIL("%s: no tensor 'latents' (want N x C x H x W)", path);
    if (!lab) FAIL("%s: no tensor 'labels' (want N integers)", path);
    if (lat->ndim != 4) FAIL("%s: tensor 'latents' has %d dims, want 4 (N, C, H, W)", path, lat->ndim);
    if (lab->ndim != 1 || lab->shape[0] != lat->shape[0])
        FAIL("%s: tensor 'labels' must have shape [%lld] to match 'latents'", path, (long long)lat->shape[0]);
    if (lat->shape[0] < 1) FAIL("%s: the set is empty", path);
    s->count = lat->shape[0];
    s->channels = (int)lat->shape[1];
    s->height = (int)lat->shape[2];
    s->width = (int)lat->shape[3];
    s->latents = xmalloc((size_t)st_numel(lat) * sizeof(float));
    if (st_read_f32(f, lat, s->latents, err, err_size)) goto fail;
    labels = xmalloc((size_t)s->count * sizeof(int64_t));
    if (st_read_i64(f, lab, labels, err, err_size)) goto fail;
    s->labels = xmalloc((size_t)s->count * sizeof(int32_t));
    int64_t max_label = 0;
    for (int64_t i = 0; i < s->count; i++) {
        if (labels[i] < 0 || labels[i] > INT32_MAX)
            FAIL("%s: label %lld of sample %lld is out of range", path, (long long)labels[i], (long long)i);
        s->labels[i] = (int32_t)labels[i];
        if (labels[i] > max_label) max_label = labels[i];
    }
    s->num_classes = (int)max_label + 1;
    const char *meta = st_meta(f, "num_classes");
    long declared;
    if (meta) {
        if (parse_long(meta, &declared) || declared <= max_label)
            FAIL("%s: metadata num_classes '%s' does not cover the largest label %lld", path, meta,
                 (long long)max_label);
        s->num_classes = (int)declared;
    }
    for (size_t i = 0; i < (size_t)st_numel(lat); i++)
        if (!isfinite(s->latents[i])) FAIL("%s: latents hold a non-finite value at element %zu", path, i);
    free(labels);
    st_close(f);
    return 0;
fail:
    free(labels);
    st_close(f);
    latent_set_free(s);
    return -1;
}

void latent_set_synthetic(LatentSet *s, int64_t count, int channels, int size, int num_classes, uint64_t seed) {
    memset(s, 0, sizeof(*s));
    s->count = count;
    s->channels = channels;
    s->height = s->width = size;
    s->num_classes = num_classes;
    int64_t pixels, elements;
    if (mul_i64(size, size, &pixels) || mul_i64(pixels, channels, &elements) || mul_i64(elements, count, &elements))
        die("a synthetic set of %lld latents of %dx%dx%d has more elements than 64 bits count", (long long)count,
            channels, size, size);
    s->latents = xmalloc_array((size_t)elements, sizeof(float));
    s->labels = xmalloc_array((size_t)count, sizeof(int32_t));
    const double two_pi = 6.283185307179586;
    for (int64_t i = 0; i < count; i++) {
        int k = (int)(i % num_classes);
        s->labels[i] = k;
        // class k: frequencies from its index, a phase per channel; all from the seed
        double fy = 1 + rng_below(rng_u32(seed, RNG_DATA, 1, (uint32_t)k, 0), 3);
        double fx = 1 + rng_below(rng_u32(seed, RNG_DATA, 1, (uint32_t)k, 1), 3);
        float *x = s->latents + (size_t)i * channels * size * size;
        for (int c = 0; c < channels; c++) {
            double phase = two_pi * rng_open01(rng_u32(seed, RNG_DATA, 1, (uint32_t)k, 2 + (uint64_t)c));
            for (int h = 0; h < size; h++)
                for (int w = 0; w < size; w++) {
                    size_t e = ((size_t)c * size + h) * size + w;
                    double wave = sin(two_pi * (fy * h + fx * w) / size + phase);
                    x[e] = (float)(0.8 * wave) + 0.1f * rng_normal(seed, RNG_DATA, 2, (uint32_t)i, e);
                }
        }
    }
}
