// data/shard_index.h: a directory of latent shards, shard-00000.safetensors, shard-00001..., and
// its index.json, written last by `dydit encode` so that its presence means the set is complete:
//
//   {"format": "dydit-latents-index", "format_version": 1, "count": 60000,
//    "channels": 1, "height": 32, "width": 32, "image_size": 32, "encoder": "identity",
//    "scale_factor": 1, "storage": "sample", "dtype": "F16", "source": "fashion-mnist/train",
//    "classes": ["T-shirt/top", ...], "shards": [{"file": "shard-00000.safetensors", "count": 8192}, ...]}
//
// The loader trusts nothing in it: every shard is opened and checked against it.
#pragma once
#include <stdint.h>

#include "data/shard.h"

#define SHARD_INDEX_FILE "index.json"

typedef struct {
    char *file; // relative to the directory
    int64_t count;
} ShardEntry;

typedef struct {
    ShardLayout layout;
    int64_t count; // sum of the shards' counts
    int shard_count;
    ShardEntry *shards;
} ShardIndex;

// "shard-00042.safetensors" (caller frees).
char *shard_file_name(int k);
// Writes DIR/index.json atomically. 0, or -1 with err.
int shard_index_write(const char *dir, const ShardIndex *index, char *err, int err_size);
// Reads and checks DIR/index.json. 0, or -1 with err.
int shard_index_read(const char *dir, ShardIndex *index, char *err, int err_size);
void shard_index_free(ShardIndex *index);
