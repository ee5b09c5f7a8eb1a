// tests/shard_fixture.h: small latent-shard sets with recognisable contents, written through
// data/shard.h and data/shard_index.h, for the shard and loader tests.
#pragma once
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "data/shard_index.h"

static const char *fixture_class_names[] = {"zero", "one",   "two",   "three", "four", "five",
                                            "six",  "seven", "eight", "nine",  "ten",  "eleven"};

// A layout of C x H x W latents with `classes` (at most 12) classes; strings point at constants.
static inline ShardLayout fixture_layout(int C, int H, int W, int classes, ShardStorage storage, StDtype dtype,
                                         float scale) {
    ShardLayout l = {.source = (char *)"fixture",
                     .encoder = (char *)"identity",
                     .scale_factor = scale,
                     .image_size = H,
                     .channels = C,
                     .height = H,
                     .width = W,
                     .num_classes = classes,
                     .classes = (char **)fixture_class_names,
                     .storage = storage,
                     .dtype = dtype};
    return l;
}

// Stored value of sample i (flip f for posterior storage), element e; and its std.
typedef float (*FixtureValue)(int64_t i, int flip, int64_t e);

// Writes shards with the given counts (dataset indices continue from shard to shard) and the
// index into dir; labels are i % classes. 0, or -1 with err.
static inline int fixture_write_set(const char *dir, const ShardLayout *l, const int64_t *counts, int shards,
                                    FixtureValue value, FixtureValue std, char *err, int err_size) {
    make_dirs(dir);
    int64_t numel = shard_latent_numel(l), flips = l->storage == SHARD_POSTERIOR ? 2 : 1, first = 0;
    ShardIndex ix = {.shard_count = shards, .shards = xcalloc((size_t)shards, sizeof(ShardEntry))};
    int rc = 0;
    for (int k = 0; k < shards && rc == 0; k++) {
        int64_t n = counts[k], total = (n ? n : 1) * flips * numel;
        float *v = xmalloc(sizeof(float) * (size_t)total), *s = xmalloc(sizeof(float) * (size_t)total);
        void *pv = xmalloc(sizeof(float) * (size_t)total), *ps = xmalloc(sizeof(float) * (size_t)total);
        int64_t *labels = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        for (int64_t j = 0; j < n; j++) {
            labels[j] = (first + j) % l->num_classes;
            for (int f = 0; f < flips; f++)
                for (int64_t e = 0; e < numel; e++) {
                    v[(j * flips + f) * numel + e] = value(first + j, f, e);
                    s[(j * flips + f) * numel + e] = std ? std(first + j, f, e) : 0.0f;
                }
        }
        shard_pack(l->dtype, pv, v, n * flips * numel);
        shard_pack(l->dtype, ps, s, n * flips * numel);
        ShardData d = {.count = n, .latents = pv, .mean = pv, .std = ps, .labels = labels};
        ix.shards[k].file = shard_file_name(k);
        ix.shards[k].count = n;
        char *path = xasprintf("%s/%s", dir, ix.shards[k].file);
        rc = shard_write(path, l, &d, err, err_size);
        free(path);
        free(v);
        free(s);
        free(pv);
        free(ps);
        free(labels);
        first += n;
    }
    ix.count = first;
    shard_layout_copy(&ix.layout, l);
    if (rc == 0) rc = shard_index_write(dir, &ix, err, err_size);
    shard_index_free(&ix);
    return rc;
}
