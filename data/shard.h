// data/shard.h: latent shards, the files `dydit encode` writes and the loader reads.
//
// A shard is a safetensors file (data/safetensors.h, 64-bit offsets) holding N samples:
//
//   storage "sample":     latents  F16|F32 (N, C, H, W)     one fixed encoding per image
//   storage "posterior":  mean     F16|F32 (N, 2, C, H, W)  VAE posterior mean; [:, 0] encodes the
//                                                           image, [:, 1] its horizontal mirror
//                         std      F16|F32 (N, 2, C, H, W)  posterior standard deviation, same layout
//   both:                 labels   I64     (N)              class index in [0, number of classes)
//
// The training latent of sample n is scale_factor * latents[n]; with posterior storage it is
// scale_factor * (mean[n, f] + std[n, f] * eps), the flip f and eps drawn afresh every epoch, so
// a pre-encoded set keeps DiT's full augmentation (docs/algorithm.md 2.8). Values are stored in the encoder's
// own units; scale_factor (0.18215 for the SD VAE, 1 for pixels) is applied by the reader's user.
//
// __metadata__, all strings: format "dydit-latents", format_version "1", source, encoder
// ("identity" | "sd-vae"), scale_factor, image_size, channels, height, width, classes (a JSON
// list of names), count (N), storage ("sample" | "posterior"); writers may add more keys (dydit
// encode records the input items a shard covers). shard_open checks all of it against the
// tensors, reads the labels and checks their range; every error is one line "PATH: problem".
#pragma once
#include <stdint.h>

#include "data/safetensors.h"

#define SHARD_FORMAT "dydit-latents"
enum { SHARD_FORMAT_VERSION = 1 };

typedef enum { SHARD_SAMPLE, SHARD_POSTERIOR } ShardStorage;

typedef struct {
    char *source;                // where the images came from: "fashion-mnist/train", "folder:/data/train"
    char *encoder;               // "identity" (pixels) or "sd-vae"
    float scale_factor;          // what the loader multiplies by, in the float it computes with
    int image_size;              // side of the square images that were encoded
    int channels, height, width; // C, H, W of one latent
    int num_classes;
    char **classes; // (num_classes) names, index = label
    ShardStorage storage;
    StDtype dtype; // ST_F16 or ST_F32
} ShardLayout;

const char *shard_storage_name(ShardStorage storage); // "sample", "posterior"
// Deep copy and release of the strings a layout owns.
void shard_layout_copy(ShardLayout *dst, const ShardLayout *src);
void shard_layout_free(ShardLayout *l);
// 0 when a and b describe the same kind of set; else -1 with the first difference in what.
int shard_layout_compare(const ShardLayout *a, const ShardLayout *b, char *what, int what_size);
// The class names as one JSON list (caller frees), and its inverse (0, or -1 with err).
char *shard_classes_json(const ShardLayout *l);
int shard_classes_parse(const char *json, ShardLayout *l, char *err, int err_size);
// The shortest decimal text that reads back as exactly this float ("0.18215", not "0.182149991").
void shard_scale_text(float scale, char *out, int size);
// Elements of one latent (C * H * W) and of one stored sample (twice that for posterior storage).
int64_t shard_latent_numel(const ShardLayout *l);
int64_t shard_sample_numel(const ShardLayout *l);

// Converts n floats into n elements of dtype (F16 rounds to nearest even) at dst.
void shard_pack(StDtype dtype, void *dst, const float *src, int64_t n);

typedef struct {
    const char *key, *value;
} ShardMeta;

// Samples in the layout's dtype, as shard_pack wrote them: latents (count, C, H, W) for sample
// storage, mean and std (count, 2, C, H, W) for posterior storage; labels (count).
typedef struct {
    int64_t count;
    const void *latents, *mean, *std;
    const int64_t *labels;
    const ShardMeta *extra; // further metadata entries, extra_count of them
    int extra_count;
} ShardData;

// Writes a shard atomically (temporary file, fsync, rename). 0, or -1 with err.
int shard_write(const char *path, const ShardLayout *layout, const ShardData *data, char *err, int err_size);

typedef struct ShardFile ShardFile;

// Opens and validates a shard; keeps one file descriptor open for shard_read.
ShardFile *shard_open(const char *path, char *err, int err_size);
void shard_close(ShardFile *s);
const char *shard_path(const ShardFile *s);
const ShardLayout *shard_layout(const ShardFile *s);
int64_t shard_count(const ShardFile *s);
// (count) labels, checked to lie in [0, num_classes).
const int32_t *shard_labels(const ShardFile *s);
// Any metadata value, NULL when absent.
const char *shard_meta(const ShardFile *s, const char *key);
// Sample n as floats in stored units, each (C, H, W): sample storage: value = latents[n] (flip must
// be 0, std NULL); posterior storage: value = mean[n, flip], std = std[n, flip]. Reads only those
// bytes (pread; safe to call from several threads). 0, or -1 with err.
int shard_read(const ShardFile *s, int64_t n, int flip, float *value, float *std, char *err, int err_size);
