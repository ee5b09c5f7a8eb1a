// train/cmd_encode.c: `dydit encode`, images -> a directory of latent shards (data/shard.h).
//
// Input items are numbered; shard k covers items [k * shard_size, (k + 1) * shard_size) whatever
// happens to them, so a re-run knows which shards are finished: each existing shard is opened,
// validated and compared with this run's settings; valid ones are kept, missing or broken ones
// are encoded again. Shards are written under a temporary name and renamed, and index.json is
// written last, so an interrupted run leaves nothing that looks finished but is not.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "data/decode_pool.h"
#include "data/image_source.h"
#include "data/shard_index.h"
#include "train/commands.h"
#include "train/device_options.h"
#include "train/latent_encoder.h"
#include "train/options.h"

typedef struct {
    const char *source, *split, *fashion_mnist_dir, *input, *out, *encoder, *vae, *dtype;
    int image_size, shard_size, batch, workers, flip_storage, grayscale, seed, quiet;
    DeviceOptions device; // of the VAE
} EncodeOptions;

enum { ENCODE_OPTIONS = 16, SHARD_DEFAULT_IMAGES = 8192 };
#define SHARD_DEFAULT_BYTES (256ll << 20)

static void add_options(EncodeOptions *o, Option *opts) {
    Option list[ENCODE_OPTIONS] = {
        {"source", OPT_STRING, &o->source, "fashion-mnist, or folder (an ImageNet-style tree)", NULL, 0, NO_RANGE},
        {"split", OPT_STRING, &o->split, "fashion-mnist: train (60000 images) or test (10000)", NULL, 0, NO_RANGE},
        {"fashion-mnist-dir", OPT_STRING, &o->fashion_mnist_dir,
         "fashion-mnist: folder of the {train,t10k}-*-ubyte.gz files", NULL, 0, NO_RANGE},
        {"input", OPT_STRING, &o->input, "folder: the root, one sub-folder per class", NULL, 0, NO_RANGE},
        {"out", OPT_STRING, &o->out, "output folder for the shards and index.json (required)", NULL, 0, NO_RANGE},
        {"image-size", OPT_INT, &o->image_size,
         "side of the encoded images: Fashion-MNIST is padded, folders are ADM-center-cropped",
         "32 for fashion-mnist, 256 for folder", 0, RANGE(1, 8192)},
        {"encoder", OPT_STRING, &o->encoder, "identity (store the pixels) or sd-vae",
         "identity for fashion-mnist, sd-vae for folder", 0, NO_RANGE},
        {"vae", OPT_STRING, &o->vae, "sd-vae: the VAE weights (safetensors)", NULL, 0, NO_RANGE},
        {"flip-storage", OPT_FLAG, &o->flip_storage,
         "store mean and std for both horizontal flips: training redraws flip and posterior sample every epoch "
         "(without it: one fixed sample of the unflipped image)",
         "off", 0, NO_RANGE},
        {"grayscale", OPT_FLAG, &o->grayscale, "folder: encode luma only (1 channel)", "off", 0, NO_RANGE},
        {"shard-size", OPT_INT, &o->shard_size, "input images per shard", "8192, fewer when a shard would pass 256 MiB",
         0, RANGE(1, COUNT_MAX)},
        {"dtype", OPT_STRING, &o->dtype, "stored precision: f16 or f32", NULL, 0, NO_RANGE},
        {"batch", OPT_INT, &o->batch, "images per encoder call", NULL, 0, RANGE(1, BATCH_MAX)},
        {"workers", OPT_INT, &o->workers, "image decoding threads", "the number of cores", 0, RANGE(1, THREADS_MAX)},
        {"seed", OPT_INT, &o->seed, "sd-vae without --flip-storage: seed of the stored posterior sample", NULL, 0,
         SEED_RANGE},
        {"quiet", OPT_FLAG, &o->quiet, "no options listing and no progress on stderr", "off", 0, NO_RANGE},
    };
    memcpy(opts, list, sizeof(list));
    device_options_add(&o->device, opts, ENCODE_OPTIONS);
}

/* ---------------------------------------------------------------------------------------------
 * Progress on stderr: a bar redrawn in place on a terminal, one line per shard otherwise
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    int64_t total, done;
    double start, last;
    int tty, quiet, drawn;
} Progress;

static void format_eta(double seconds, char *out, size_t size) {
    long s = seconds < 0 ? 0 : seconds > 1e8 ? 99999999 : (long)(seconds + 0.5);
    if (s >= 3600)
        snprintf(out, size, "%ldh%02ldm", s / 3600, s / 60 % 60);
    else if (s >= 60)
        snprintf(out, size, "%ldm%02lds", s / 60, s % 60);
    else
        snprintf(out, size, "%lds", s);
}

static double progress_rate(const Progress *p) {
    double t = now_seconds() - p->start;
    return t > 0 ? (double)p->done / t : 0.0;
}

static void progress_text(const Progress *p, char *out, size_t size) {
    double rate = progress_rate(p);
    char eta[32];
    format_eta(rate > 0 ? (double)(p->total - p->done) / rate : 0, eta, sizeof(eta));
    snprintf(out, size, "%lld/%lld images  %.3g img/s  ETA %s", (long long)p->done, (long long)p->total, rate, eta);
}

static void progress_draw(Progress *p, int force) {
    double t = now_seconds();
    if (p->quiet || !p->tty || (!force && t - p->last < 0.2)) return;
    p->last = t;
    enum { WIDTH = 30 };
    int filled = p->total ? (int)(WIDTH * p->done / p->total) : WIDTH;
    char text[160];
    progress_text(p, text, sizeof(text));
    fprintf(stderr, "\r[%.*s%*s] %s\033[K", filled, "##############################", WIDTH - filled, "", text);
    p->drawn = 1;
}

// Ends the bar's line so that a message can follow.
static void progress_break(Progress *p) {
    if (p->drawn) fputc('\n', stderr);
    p->drawn = 0;
}

/* ---------------------------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    const EncodeOptions *o;
    const char *options_json;
    const ImageSource *src;
    LatentEncoder *encoder;
    const ShardLayout *layout;
    DecodePool *pool;
    Progress progress;
    int64_t skipped, upscaled;
    float *images;               // (batch, channels, size, size)
    int64_t *items;              // (batch) input item of each staged image
    float *latents, *mean, *std; // encoder outputs for the staged images
} Encoding;

// The first image the crop enlarges gets one warning: an --image-size above the data's own
// resolution inflates every latent without adding detail. The others are counted in the summary.
static void note_upscaled(Encoding *en, int64_t item, const ImageItem *it) {
    if (en->upscaled++ > 0) return;
    progress_break(&en->progress);
    warn("%s: %dx%d image upscaled to --image-size %d (further upscaled images are only counted)",
         en->src->folder.paths[item], it->width, it->height, en->src->size);
}

// Encodes the `pending` staged images and stores them as samples [at, at + pending) of a shard.
static void flush_batch(Encoding *en, int pending, int64_t at, void *values, void *stds) {
    if (pending == 0) return;
    const ShardLayout *l = en->layout;
    int64_t n = shard_sample_numel(l), esize = st_dtype_size(l->dtype);
    int posterior = l->storage == SHARD_POSTERIOR;
    latent_encoder_run(en->encoder, en->images, en->items, pending, l->storage, (uint64_t)en->o->seed, en->latents,
                       en->mean, en->std);
    shard_pack(l->dtype, (char *)values + at * n * esize, posterior ? en->mean : en->latents, pending * n);
    if (posterior) shard_pack(l->dtype, (char *)stds + at * n * esize, en->std, pending * n);
}

// Encodes items [first, first + n) into shard k; returns its sample count (unreadable images are
// reported and left out).
static int64_t encode_shard(Encoding *en, int k, int64_t first, int64_t n, const char *path) {
    const ShardLayout *l = en->layout;
    size_t sample_bytes = (size_t)shard_sample_numel(l) * (size_t)st_dtype_size(l->dtype);
    size_t image_numel = (size_t)en->src->channels * en->src->size * en->src->size;
    int posterior = l->storage == SHARD_POSTERIOR;
    void *values = xmalloc(sample_bytes * (size_t)(n ? n : 1));
    void *stds = posterior ? xmalloc(sample_bytes * (size_t)(n ? n : 1)) : NULL;
    int64_t *labels = xmalloc(sizeof(int64_t) * (size_t)(n ? n : 1)), count = 0, skipped = 0;
    int pending = 0;
    char err[1024];
    for (int64_t j = 0; j < n; j++) {
        const float *image;
        ImageItem item;
        if (decode_pool_next(en->pool, &image, &item, err, sizeof(err))) {
            progress_break(&en->progress);
            fprintf(stderr, "warning: %s (skipped)\n", err);
            skipped++;
        } else {
            if (item.upscaled) note_upscaled(en, first + j, &item);
            memcpy(en->images + (size_t)pending * image_numel, image, image_numel * sizeof(float));
            en->items[pending] = first + j;
            labels[count + pending] = item.label;
            if (++pending == en->o->batch) {
                flush_batch(en, pending, count, values, stds);
                count += pending;
                pending = 0;
            }
        }
        en->progress.done++;
        progress_draw(&en->progress, 0);
    }
    flush_batch(en, pending, count, values, stds);
    count += pending;
    en->skipped += skipped;

    char num[6][32];
    snprintf(num[0], sizeof(num[0]), "%d", k);
    snprintf(num[1], sizeof(num[1]), "%lld", (long long)first);
    snprintf(num[2], sizeof(num[2]), "%lld", (long long)n);
    snprintf(num[3], sizeof(num[3]), "%lld", (long long)en->src->count);
    snprintf(num[4], sizeof(num[4]), "%lld", (long long)skipped);
    snprintf(num[5], sizeof(num[5]), "%d", en->o->seed);
    ShardMeta extra[] = {
        {"shard", num[0]},   {"first_item", num[1]}, {"item_count", num[2]},       {"source_items", num[3]},
        {"skipped", num[4]}, {"seed", num[5]},       {"options", en->options_json}};
    ShardData data = {.count = count,
                      .latents = posterior ? NULL : values,
                      .mean = posterior ? values : NULL,
                      .std = stds,
                      .labels = labels,
                      .extra = extra,
                      .extra_count = (int)(sizeof(extra) / sizeof(extra[0]))};
    if (shard_write(path, l, &data, err, sizeof(err))) {
        progress_break(&en->progress);
        die("%s", err);
    }
    free(values);
    free(stds);
    free(labels);
    if (!en->o->quiet && !en->progress.tty) {
        char text[160];
        progress_text(&en->progress, text, sizeof(text));
        fprintf(stderr, "%s: %lld images; %s\n", path, (long long)count, text);
    }
    return count;
}

// Shard k covers input items [*first, *first + *n).
static void shard_range(int64_t count, int shard_size, int k, int64_t *first, int64_t *n) {
    *first = (int64_t)k * shard_size;
    *n = count - *first < shard_size ? count - *first : shard_size;
}

// 1 when the shard at path is finished and was written with these settings (its sample count goes
// to *count; seed is compared unless NULL); 0 when it is absent or broken. A valid shard written
// with other settings stops the run: it belongs to a different set and is not ours to overwrite.
static int shard_reusable(const char *path, const ShardLayout *layout, int64_t first, int64_t n, int64_t total,
                          const char *seed, int64_t *count) {
    if (access(path, F_OK) != 0) return 0;
    char err[1024], what[300];
    ShardFile *s = shard_open(path, err, sizeof(err));
    if (!s) {
        warn("%s; encoding it again", err);
        return 0;
    }
    char want[3][32];
    snprintf(want[0], sizeof(want[0]), "%lld", (long long)first);
    snprintf(want[1], sizeof(want[1]), "%lld", (long long)n);
    snprintf(want[2], sizeof(want[2]), "%lld", (long long)total);
    const char *keys[4] = {"first_item", "item_count", "source_items", "seed"};
    const char *values[4] = {want[0], want[1], want[2], seed};
    int same = shard_layout_compare(shard_layout(s), layout, what, sizeof(what)) == 0;
    for (int i = 0; i < (seed ? 4 : 3) && same; i++) {
        const char *have = shard_meta(s, keys[i]);
        if (!have || strcmp(have, values[i]))
            snprintf(what, sizeof(what), "%s %s vs %s", keys[i], have ? have : "(none)", values[i]), same = 0;
    }
    if (!same) die("%s was written with other settings (%s); use another --out or remove the old shards", path, what);
    *count = shard_count(s);
    shard_close(s);
    return 1;
}

// Temporary files of an interrupted run (shard-*.safetensors.tmp.*, index.json.tmp.*).
static void remove_stale_temporaries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if ((starts_with(e->d_name, "shard-") || starts_with(e->d_name, SHARD_INDEX_FILE)) &&
            strstr(e->d_name, ".tmp.")) {
            char *path = xasprintf("%s/%s", dir, e->d_name);
            unlink(path);
            free(path);
        }
    }
    closedir(d);
}

// An encode without a single readable image leaves nothing behind: not the empty shards it wrote
// (no index.json would describe them), nor the folder when it made it.
static void remove_written_shards(const char *dir, const ShardIndex *index, const int *written, int remove_dir) {
    for (int k = 0; k < index->shard_count; k++) {
        if (!written[k]) continue;
        char *path = xasprintf("%s/%s", dir, index->shards[k].file);
        unlink(path);
        free(path);
    }
    if (remove_dir) rmdir(dir);
}

static void check_options(EncodeOptions *o, const OptionSet *set) {
    options_require_utf8(set);
    int mnist = !strcmp(o->source, "fashion-mnist"), folder = !strcmp(o->source, "folder");
    if (!mnist && !folder) die("--source must be fashion-mnist or folder, not '%s'", o->source);
    if (!o->out) die("--out is required: the folder the shards go to");
    if (folder && !o->input) die("--source folder needs --input DIR (one sub-folder per class)");
    if (mnist && o->input) die("--input is for --source folder");
    if (mnist && o->grayscale) die("--grayscale is for --source folder (Fashion-MNIST is gray already)");
    if (folder && (options_was_set(set, "split") || options_was_set(set, "fashion-mnist-dir")))
        die("--split and --fashion-mnist-dir are for --source fashion-mnist");
    if (!options_was_set(set, "image-size")) o->image_size = mnist ? 32 : 256;
    if (!o->encoder) o->encoder = mnist ? "identity" : "sd-vae";
    if (o->vae && strcmp(o->encoder, "sd-vae")) die("--vae is for --encoder sd-vae");
    if (strcmp(o->dtype, "f16") && strcmp(o->dtype, "f32")) die("--dtype must be f16 or f32, not '%s'", o->dtype);
}

int cmd_encode(int argc, char **argv) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    EncodeOptions o = {.source = "fashion-mnist",
                       .split = "train",
                       .fashion_mnist_dir = FASHION_MNIST_DIR,
                       .dtype = "f16",
                       .batch = 32,
                       .workers = cores > 0 ? (int)cores : 1};
    Option opts[ENCODE_OPTIONS + DEVICE_OPTION_COUNT];
    add_options(&o, opts);
    OptionSet set = {"encode", "Encode images into a directory of latent shards for dydit train --data.",
                     "dydit encode --source fashion-mnist|folder [--input DIR] --out DIR [options]", opts,
                     ENCODE_OPTIONS + DEVICE_OPTION_COUNT};
    options_parse(&set, argc, argv);
    check_options(&o, &set);

    char err[1024];
    ImageSource src;
    int rc = !strcmp(o.source, "folder")
                 ? image_source_folder(&src, o.input, o.image_size, o.grayscale, err, sizeof(err))
                 : image_source_fashion_mnist(&src, o.fashion_mnist_dir, o.split, o.image_size, err, sizeof(err));
    if (rc) die("%s", err);
    Backend backend = device_options_open(&o.device, 0);
    LatentEncoder *encoder =
        latent_encoder_open(o.encoder, o.vae, backend.ops, src.channels, src.size, o.batch, err, sizeof(err));
    if (!encoder) die("%s", err);
    ShardLayout layout = {.source = src.name,
                          .encoder = (char *)o.encoder,
                          .image_size = src.size,
                          .num_classes = src.num_classes,
                          .classes = (char **)src.classes,
                          .storage = o.flip_storage ? SHARD_POSTERIOR : SHARD_SAMPLE,
                          .dtype = strcmp(o.dtype, "f16") ? ST_F32 : ST_F16};
    latent_encoder_shape(encoder, &layout.channels, &layout.height, &layout.width, &layout.scale_factor);
    if (!options_was_set(&set, "shard-size")) { // a shard is built in memory before it is written
        int64_t fit = SHARD_DEFAULT_BYTES / (shard_sample_numel(&layout) * st_dtype_size(layout.dtype));
        o.shard_size = fit < 1 ? 1 : fit < SHARD_DEFAULT_IMAGES ? (int)fit : SHARD_DEFAULT_IMAGES;
    }
    int out_is_new = !dir_exists(o.out);
    if (make_dirs(o.out)) die("cannot create the output folder %s", o.out);
    remove_stale_temporaries(o.out);
    // which shards are finished; the items of the others, in order, go to the decoding pool
    int shards = (int)((src.count + o.shard_size - 1) / o.shard_size);
    ShardIndex index = {.count = 0, .shard_count = shards, .shards = xcalloc((size_t)shards, sizeof(ShardEntry))};
    int *todo = xcalloc((size_t)shards, sizeof(int));
    int64_t *items = xmalloc(sizeof(int64_t) * (size_t)src.count), n_items = 0, reused_images = 0;
    int reused = 0;
    char seed[32]; // only a baked VAE sample depends on it
    snprintf(seed, sizeof(seed), "%d", o.seed);
    int seed_matters = layout.storage == SHARD_SAMPLE && !strcmp(layout.encoder, "sd-vae");
    for (int k = 0; k < shards; k++) {
        int64_t first, n;
        shard_range(src.count, o.shard_size, k, &first, &n);
        index.shards[k].file = shard_file_name(k);
        char *path = xasprintf("%s/%s", o.out, index.shards[k].file);
        if (shard_reusable(path, &layout, first, n, src.count, seed_matters ? seed : NULL, &index.shards[k].count)) {
            reused++;
            reused_images += index.shards[k].count;
        } else {
            todo[k] = 1;
            for (int64_t j = 0; j < n; j++) items[n_items++] = first + j;
        }
        free(path);
    }
    // everything that can refuse the run was checked before anything is printed
    char *options_json = options_to_json(&set);
    if (!o.quiet) {
        fprintf(stderr, "dydit encode, effective options:\n");
        options_print(&set, stderr, "  ");
        device_print(&backend);
        fprintf(stderr, "%s: %lld images, %d classes, %s to %dx%d%s -> %dx%dx%d %s latents, storage %s\n", src.name,
                (long long)src.count, src.num_classes, src.mnist.images ? "padded" : "center-cropped", src.size,
                src.size, options_was_set(&set, "image-size") ? "" : " (the default --image-size)", layout.channels,
                layout.height, layout.width, st_dtype_name(layout.dtype), shard_storage_name(layout.storage));
        if (reused)
            fprintf(stderr, "reusing %d finished shard%s (%lld images)\n", reused, reused == 1 ? "" : "s",
                    (long long)reused_images);
    }

    size_t image_numel = (size_t)src.channels * src.size * src.size, sample = (size_t)shard_sample_numel(&layout);
    Encoding en = {.o = &o, .options_json = options_json, .src = &src, .encoder = encoder, .layout = &layout};
    en.images = xmalloc(sizeof(float) * (size_t)o.batch * image_numel);
    en.items = xmalloc(sizeof(int64_t) * (size_t)o.batch);
    en.latents = xmalloc(sizeof(float) * (size_t)o.batch * sample);
    en.mean = xmalloc(sizeof(float) * (size_t)o.batch * sample);
    en.std = xmalloc(sizeof(float) * (size_t)o.batch * sample);
    en.progress = (Progress){.total = n_items, .start = now_seconds(), .tty = isatty(2), .quiet = o.quiet};
    int window = 2 * o.batch > 4 * o.workers ? 2 * o.batch : 4 * o.workers;
    en.pool = decode_pool_start(&src, items, n_items, o.workers, window);
    for (int k = 0; k < shards; k++) {
        if (!todo[k]) continue;
        int64_t first, n;
        shard_range(src.count, o.shard_size, k, &first, &n);
        char *path = xasprintf("%s/%s", o.out, index.shards[k].file);
        index.shards[k].count = encode_shard(&en, k, first, n, path);
        free(path);
    }
    progress_draw(&en.progress, 1);
    progress_break(&en.progress);
    decode_pool_stop(en.pool);
    double seconds = now_seconds() - en.progress.start;

    for (int k = 0; k < shards; k++) index.count += index.shards[k].count;
    if (index.count == 0) {
        remove_written_shards(o.out, &index, todo, out_is_new);
        die("%s: no image could be read; nothing written", src.name);
    }
    shard_layout_copy(&index.layout, &layout);
    if (shard_index_write(o.out, &index, err, sizeof(err))) die("%s", err);

    printf("%s: %lld samples (%dx%dx%d %s, storage %s, encoder %s) in %d shards\n", o.out, (long long)index.count,
           layout.channels, layout.height, layout.width, st_dtype_name(layout.dtype),
           shard_storage_name(layout.storage), layout.encoder, shards);
    printf("encoded %lld images in %.2f s (%.3g images/s); reused %d shards (%lld images); skipped %lld unreadable "
           "images; ignored %lld non-image files; upscaled %lld images smaller than %dx%d\n",
           (long long)(n_items - en.skipped), seconds, seconds > 0 ? (double)n_items / seconds : 0.0, reused,
           (long long)reused_images, (long long)en.skipped, (long long)src.ignored, (long long)en.upscaled, src.size,
           src.size);

    shard_index_free(&index);
    free(todo);
    free(items);
    free(en.images);
    free(en.items);
    free(en.latents);
    free(en.mean);
    free(en.std);
    free(options_json);
    latent_encoder_close(encoder);
    image_source_free(&src);
    return 0;
}
