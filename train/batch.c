#include "train/batch.h"

#include <string.h>

#include "common/util.h"
#include "data/epoch_order.h"
#include "data/loader.h"
#include "kernels/philox.h"
#include "model/diffusion.h"

struct DataSource {
    const LatentSet *set; // in memory, visited in `order`
    EpochOrder order;
    Loader *loader; // or shards
    DataShape shape;
};

DataSource *data_source_memory(const LatentSet *set, uint64_t seed) {
    DataSource *ds = xcalloc(1, sizeof(DataSource));
    ds->set = set;
    epoch_order_init(&ds->order, set->count, seed);
    ds->shape = (DataShape){set->count, set->channels, set->height, set->width, set->num_classes};
    return ds;
}

DataSource *data_source_shards(const char *dir, int global_batch, int rank, int world, uint64_t seed, char *err,
                               int err_size) {
    LoaderConfig cfg = {.global_batch = global_batch, .rank = rank, .world = world, .seed = seed, .prefetch = 2};
    Loader *l = loader_open(dir, &cfg, err, err_size);
    if (!l) return NULL;
    DataSource *ds = xcalloc(1, sizeof(DataSource));
    ds->loader = l;
    LoaderInfo info = loader_info(l);
    ds->shape = (DataShape){info.count, info.channels, info.height, info.width, info.num_classes};
    return ds;
}

DataShape data_source_shape(const DataSource *ds) { return ds->shape; }

void data_source_close(DataSource *ds) {
    if (!ds) return;
    if (ds->loader) loader_close(ds->loader);
    if (ds->set) epoch_order_free(&ds->order);
    free(ds);
}

void host_batch_alloc(HostBatch *hb, int count, size_t sample_numel) {
    hb->x0 = xmalloc((size_t)count * sample_numel * sizeof(float));
    hb->labels = xmalloc((size_t)count * sizeof(int32_t));
    hb->y = xmalloc((size_t)count * sizeof(int32_t));
    hb->y_complete = xmalloc((size_t)count * sizeof(int32_t));
    hb->t = xmalloc((size_t)count * sizeof(int32_t));
}

void host_batch_free(HostBatch *hb) {
    free(hb->x0);
    free(hb->labels);
    free(hb->y);
    free(hb->y_complete);
    free(hb->t);
    memset(hb, 0, sizeof(*hb));
}

// The label of global sample g after classifier-free-guidance dropout; `draw` selects an
// independent draw (0: the main path, 1: DyDiT's complete path).
static int32_t drop_label(const BatchRecipe *r, int32_t label, long step, uint32_t g, int draw) {
    double u = rng_open01(rng_u32(r->seed, RNG_LABEL_DROP, (uint32_t)step, g, (uint64_t)draw));
    return u < r->class_dropout ? r->num_classes : label;
}

// Clean latents and labels of the recipe's samples of the step, from memory or from the loader
// (whose rank slice is the same range).
static void read_samples(HostBatch *hb, const BatchRecipe *r, DataSource *ds, long step) {
    if (ds->loader) {
        char err[1024];
        if (loader_cursor(ds->loader) != (uint64_t)step) loader_seek(ds->loader, (uint64_t)step);
        if (loader_next(ds->loader, hb->x0, hb->labels, err, sizeof(err))) die("%s", err);
        return;
    }
    size_t numel = latent_set_sample_numel(ds->set);
    uint64_t first = (uint64_t)step * (uint64_t)r->global_batch + (uint64_t)r->first;
    for (int b = 0; b < r->count; b++) {
        int64_t i = epoch_order_index(&ds->order, first + (uint64_t)b);
        memcpy(hb->x0 + (size_t)b * numel, ds->set->latents + (size_t)i * numel, numel * sizeof(float));
        hb->labels[b] = ds->set->labels[i];
    }
}

void host_batch_fill(HostBatch *hb, const BatchRecipe *r, DataSource *ds, long step) {
    read_samples(hb, r, ds, step);
    uint32_t first = (uint32_t)((uint64_t)step * (uint64_t)r->global_batch + (uint64_t)r->first);
    for (int b = 0; b < r->count; b++) {
        uint32_t g = first + (uint32_t)b;
        hb->y[b] = drop_label(r, hb->labels[b], step, g, 0);
        hb->y_complete[b] = drop_label(r, hb->labels[b], step, g, 1);
    }
    if (r->stratified)
        diffusion_sample_timesteps_stratified(hb->t, r->count, r->timesteps, r->seed, (uint32_t)step, first);
    else
        diffusion_sample_timesteps(hb->t, r->count, r->timesteps, r->seed, (uint32_t)step, first);
}
