#include "data/loader.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "data/epoch_order.h"
#include "data/shard_index.h"
#include "kernels/philox.h"

enum { LOADER_ERR = 512, LOADER_MAX_PREFETCH = 64 };

typedef struct {
    float *x;        // (B, C, H, W)
    int32_t *labels; // (B)
    int rc;
    char err[LOADER_ERR];
} Batch;

struct Loader {
    LoaderConfig cfg;
    int local_batch;
    ShardIndex index;
    ShardFile **shards; // (shard_count)
    int64_t *first;     // (shard_count + 1) dataset index of each shard's first sample
    int64_t numel;      // C * H * W
    float scale;
    // used by whichever side reads batches: the caller without prefetch, else the thread
    EpochOrder order;
    float *std; // posterior storage: std then eps of one sample, 2 x (C, H, W)
    uint64_t next;
    // prefetch: the thread fills ring[s % prefetch] for steps next <= s < produced
    pthread_t thread;
    int running, stop;
    pthread_mutex_t mutex;
    pthread_cond_t changed;
    Batch *ring;
    uint64_t produced;
};

static int shard_of(const Loader *l, int64_t i) {
    int lo = 0, hi = l->index.shard_count - 1; // last shard whose first sample is <= i
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if (l->first[mid] <= i)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

// eps[k] for k < n: the numbers rng_normal gives, one Philox block per four elements.
static void posterior_noise(float *eps, int64_t n, uint64_t seed, uint32_t epoch, uint32_t sample) {
    for (int64_t b = 0; b * 4 < n; b++) {
        PhiloxBlock r = rng_block(seed, RNG_POSTERIOR, epoch, sample, (uint32_t)b);
        for (int pair = 0; pair < 4; pair += 2) {
            double u1 = rng_open01(r.v[pair]), u2 = rng_open01(r.v[pair + 1]);
            double radius = sqrt(-2.0 * log(u1)), theta = 6.283185307179586 * u2;
            if (4 * b + pair < n) eps[4 * b + pair] = (float)(radius * cos(theta));
            if (4 * b + pair + 1 < n) eps[4 * b + pair + 1] = (float)(radius * sin(theta));
        }
    }
}

// Dataset sample i as seen in epoch `epoch`, into x (C, H, W).
static int read_sample(Loader *l, int64_t i, uint64_t epoch, float *x, int32_t *label, char *err, int err_size) {
    int k = shard_of(l, i);
    const ShardFile *s = l->shards[k];
    int64_t n = i - l->first[k];
    *label = shard_labels(s)[n];
    if (l->index.layout.storage == SHARD_SAMPLE) {
        if (shard_read(s, n, 0, x, NULL, err, err_size)) return -1;
        for (int64_t e = 0; e < l->numel; e++) x[e] *= l->scale;
    } else {
        int flip = (int)(rng_u32(l->cfg.seed, RNG_FLIP, (uint32_t)epoch, (uint32_t)i, 0) >> 31);
        if (shard_read(s, n, flip, x, l->std, err, err_size)) return -1;
        float *eps = l->std + l->numel; // the scratch holds std, then eps
        posterior_noise(eps, l->numel, l->cfg.seed, (uint32_t)epoch, (uint32_t)i);
        for (int64_t e = 0; e < l->numel; e++) x[e] = l->scale * (x[e] + l->std[e] * eps[e]);
    }
    for (int64_t e = 0; e < l->numel; e++)
        if (!isfinite(x[e]))
            return fail_at(err, err_size, shard_path(s), "sample %lld holds a non-finite value at element %lld",
                           (long long)n, (long long)e);
    return 0;
}

// This rank's slice of step `step`.
static int read_batch(Loader *l, uint64_t step, float *x, int32_t *labels, char *err, int err_size) {
    uint64_t g0 = step * (uint64_t)l->cfg.global_batch + (uint64_t)l->cfg.rank * (uint64_t)l->local_batch;
    for (int j = 0; j < l->local_batch; j++) {
        uint64_t g = g0 + (uint64_t)j;
        int64_t i = epoch_order_index(&l->order, g);
        if (read_sample(l, i, g / (uint64_t)l->index.count, x + (size_t)j * (size_t)l->numel, labels + j, err,
                        err_size))
            return -1;
    }
    return 0;
}

static void *prefetch_main(void *arg) {
    Loader *l = arg;
    int depth = l->cfg.prefetch;
    pthread_mutex_lock(&l->mutex);
    while (!l->stop) {
        if (l->produced - l->next >= (uint64_t)depth) {
            pthread_cond_wait(&l->changed, &l->mutex);
            continue;
        }
        uint64_t step = l->produced;
        Batch *b = &l->ring[step % (uint64_t)depth];
        pthread_mutex_unlock(&l->mutex);
        int rc = read_batch(l, step, b->x, b->labels, b->err, LOADER_ERR);
        pthread_mutex_lock(&l->mutex);
        b->rc = rc;
        l->produced = step + 1;
        pthread_cond_broadcast(&l->changed);
        if (rc) break; // the caller reports it; nothing after a failed step is read
    }
    pthread_mutex_unlock(&l->mutex);
    return NULL;
}

static void prefetch_stop(Loader *l) {
    if (!l->running) return;
    pthread_mutex_lock(&l->mutex);
    l->stop = 1;
    pthread_cond_broadcast(&l->changed);
    pthread_mutex_unlock(&l->mutex);
    pthread_join(l->thread, NULL);
    l->running = 0;
}

static int open_shards(Loader *l, const char *dir, char *err, int err_size) {
    const ShardIndex *ix = &l->index;
    char *index_path = xasprintf("%s/%s", dir, SHARD_INDEX_FILE), what[300];
    int rc = 0;
    l->shards = xcalloc((size_t)ix->shard_count, sizeof(ShardFile *));
    l->first = xcalloc((size_t)ix->shard_count + 1, sizeof(int64_t));
    for (int k = 0; k < ix->shard_count && rc == 0; k++) {
        char *path = xasprintf("%s/%s", dir, ix->shards[k].file);
        ShardFile *s = l->shards[k] = shard_open(path, err, err_size);
        if (!s)
            rc = -1;
        else if (shard_layout_compare(shard_layout(s), &ix->layout, what, sizeof(what)))
            rc = fail_at(err, err_size, path, "does not match %s: %s", index_path, what);
        else if (shard_count(s) != ix->shards[k].count)
            rc = fail_at(err, err_size, path, "holds %lld samples, %s says %lld", (long long)shard_count(s), index_path,
                         (long long)ix->shards[k].count);
        l->first[k + 1] = l->first[k] + ix->shards[k].count;
        free(path);
    }
    free(index_path);
    return rc;
}

Loader *loader_open(const char *dir, const LoaderConfig *cfg, char *err, int err_size) {
    if (cfg->world < 1 || cfg->rank < 0 || cfg->rank >= cfg->world || cfg->global_batch < 1 ||
        cfg->global_batch % cfg->world || cfg->prefetch < 0 || cfg->prefetch > LOADER_MAX_PREFETCH) {
        snprintf(err, (size_t)err_size,
                 "loader: global batch %d, rank %d of %d, prefetch %d: want rank < world, a batch divisible by the "
                 "world size and prefetch in [0, %d]",
                 cfg->global_batch, cfg->rank, cfg->world, cfg->prefetch, LOADER_MAX_PREFETCH);
        return NULL;
    }
    Loader *l = xcalloc(1, sizeof(*l));
    l->cfg = *cfg;
    l->local_batch = cfg->global_batch / cfg->world;
    if (shard_index_read(dir, &l->index, err, err_size) || open_shards(l, dir, err, err_size)) {
        loader_close(l);
        return NULL;
    }
    if (l->index.count > UINT32_MAX) { // the Philox counter carries the dataset index in 32 bits
        fail_at(err, err_size, dir, "holds %lld samples, more than 2^32", (long long)l->index.count);
        loader_close(l);
        return NULL;
    }
    l->numel = shard_latent_numel(&l->index.layout);
    l->scale = l->index.layout.scale_factor;
    l->std = xmalloc(2 * (size_t)l->numel * sizeof(float));
    epoch_order_init(&l->order, l->index.count, cfg->seed);
    pthread_mutex_init(&l->mutex, NULL);
    pthread_cond_init(&l->changed, NULL);
    l->ring = xcalloc((size_t)(cfg->prefetch ? cfg->prefetch : 1), sizeof(Batch));
    for (int b = 0; b < cfg->prefetch; b++) {
        l->ring[b].x = xmalloc((size_t)l->local_batch * (size_t)l->numel * sizeof(float));
        l->ring[b].labels = xmalloc((size_t)l->local_batch * sizeof(int32_t));
    }
    return l;
}

LoaderInfo loader_info(const Loader *l) {
    const ShardLayout *lay = &l->index.layout;
    return (LoaderInfo){l->index.count, lay->channels, lay->height, lay->width, lay->num_classes, l->local_batch, lay};
}

uint64_t loader_cursor(const Loader *l) { return l->next; }

int loader_next(Loader *l, float *x0, int32_t *labels, char *err, int err_size) {
    if (l->cfg.prefetch == 0) {
        if (read_batch(l, l->next, x0, labels, err, err_size)) return -1;
        l->next++;
        return 0;
    }
    if (!l->running) {
        l->stop = 0;
        l->produced = l->next;
        if (pthread_create(&l->thread, NULL, prefetch_main, l))
            return snprintf(err, (size_t)err_size, "loader: cannot start the prefetch thread"), -1;
        l->running = 1;
    }
    pthread_mutex_lock(&l->mutex);
    while (l->produced <= l->next) pthread_cond_wait(&l->changed, &l->mutex);
    const Batch *b = &l->ring[l->next % (uint64_t)l->cfg.prefetch];
    int rc = b->rc;
    if (rc) {
        snprintf(err, (size_t)err_size, "%s", b->err);
    } else {
        memcpy(x0, b->x, (size_t)l->local_batch * (size_t)l->numel * sizeof(float));
        memcpy(labels, b->labels, (size_t)l->local_batch * sizeof(int32_t));
        l->next++;
        pthread_cond_broadcast(&l->changed);
    }
    pthread_mutex_unlock(&l->mutex);
    return rc;
}

void loader_seek(Loader *l, uint64_t step) {
    prefetch_stop(l);
    l->next = step;
}

void loader_close(Loader *l) {
    if (!l) return;
    prefetch_stop(l);
    if (l->ring) {
        for (int b = 0; b < l->cfg.prefetch; b++) {
            free(l->ring[b].x);
            free(l->ring[b].labels);
        }
        free(l->ring);
        pthread_mutex_destroy(&l->mutex);
        pthread_cond_destroy(&l->changed);
        epoch_order_free(&l->order);
    }
    for (int k = 0; k < l->index.shard_count && l->shards; k++) shard_close(l->shards[k]);
    free(l->shards);
    free(l->first);
    free(l->std);
    shard_index_free(&l->index);
    free(l);
}
