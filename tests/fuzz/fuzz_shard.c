// libFuzzer target: the latent shard reader (safetensors structure, metadata, tensor shapes,
// labels) and reading every sample of a shard it accepts.
#include "tests/fuzz/memfile.h"

#include "data/shard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    ShardFile *s = shard_open(memfile_path(data, size), err, sizeof(err));
    if (!s) return 0;
    int64_t numel = shard_latent_numel(shard_layout(s));
    float *value = malloc((size_t)numel * sizeof(float)), *std = malloc((size_t)numel * sizeof(float));
    int flips = shard_layout(s)->storage == SHARD_POSTERIOR ? 2 : 1;
    for (int64_t n = 0; n < shard_count(s) && n < 64; n++)
        for (int flip = 0; flip < flips; flip++)
            if (shard_read(s, n, flip, value, flips == 2 ? std : NULL, err, sizeof(err))) abort();
    free(value);
    free(std);
    shard_close(s);
    return 0;
}
