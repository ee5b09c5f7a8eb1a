#include "train/device_collectives.h"

#include <stdlib.h>

#include "common/util.h"
#ifdef DYDIT_NCCL
#include "train/dist_nccl.h"
#endif

typedef enum { ALONE, HOST_MEMORY, NCCL, HOST_STAGING } Route;

struct DeviceCollectives {
    Dist *dist;
    const Ops *ops;
    Route route;
    float *host;   // HOST_STAGING: room for the largest buffer seen
    size_t host_n; // its floats
#ifdef DYDIT_NCCL
    DistNccl *nccl;
    float *padded; // NCCL: (world * ceil(n / world)) device floats, for the equal pieces NCCL moves
    size_t padded_n;
#endif
};

DeviceCollectives *device_collectives_open(Dist *d, const Backend *b, double timeout_s) {
    DeviceCollectives *c = xcalloc(1, sizeof(*c));
    c->dist = d;
    c->ops = b->ops;
    c->route = d->world == 1 ? ALONE : b->host_memory ? HOST_MEMORY : HOST_STAGING;
#ifdef DYDIT_NCCL
    if (d->world > 1 && b->cuda_device >= 0) {
        c->route = NCCL;
        c->nccl = dist_nccl_open(d, b->cuda_device, timeout_s);
    }
#else
    (void)timeout_s;
#endif
    return c;
}

void device_collectives_close(DeviceCollectives *c) {
    if (!c) return;
#ifdef DYDIT_NCCL
    if (c->nccl) dist_nccl_close(c->nccl);
    if (c->padded) c->ops->release(c->padded);
#endif
    free(c->host);
    free(c);
}

size_t device_shard_capacity(const Dist *d, size_t n) {
    size_t per = (n + (size_t)d->world - 1) / (size_t)d->world;
    return per ? per : 1;
}

static float *host_room(DeviceCollectives *c, size_t n) {
    if (n > c->host_n) {
        free(c->host);
        c->host = xmalloc(n * sizeof(float));
        c->host_n = n;
    }
    return c->host;
}

#ifdef DYDIT_NCCL
static float *padded_room(DeviceCollectives *c, size_t n) {
    size_t need = device_shard_capacity(c->dist, n) * (size_t)c->dist->world;
    if (need > c->padded_n) {
        if (c->padded) c->ops->release(c->padded);
        c->padded = c->ops->alloc(need * sizeof(float));
        c->padded_n = need;
    }
    return c->padded;
}
#endif

void device_allreduce_sum_f32(DeviceCollectives *c, float *x, size_t n, size_t bucket) {
    switch (c->route) {
    case ALONE:
        return;
    case HOST_MEMORY:
        dist_allreduce_sum_f32(c->dist, x, n, bucket);
        return;
    case NCCL:
#ifdef DYDIT_NCCL
        c->ops->synchronize();
        dist_nccl_allreduce_sum_f32(c->nccl, x, n);
        dist_nccl_wait(c->nccl);
#endif
        return;
    case HOST_STAGING: {
        float *host = host_room(c, n);
        c->ops->download(host, x, n * sizeof(float));
        dist_allreduce_sum_f32(c->dist, host, n, bucket);
        c->ops->upload(x, host, n * sizeof(float));
        return;
    }
    }
}

void device_reduce_scatter_sum_f32(DeviceCollectives *c, const float *full, float *shard, size_t n) {
    DistShard mine = dist_shard(n, c->dist->world, c->dist->rank);
    switch (c->route) {
    case ALONE:
        c->ops->copy(shard, full, n * sizeof(float));
        return;
    case HOST_MEMORY:
        dist_reduce_scatter_sum_f32(c->dist, full, shard, n);
        return;
    case NCCL:
#ifdef DYDIT_NCCL
    {
        float *padded = padded_room(c, n); // the tail beyond n only feeds the last shard's unused tail
        c->ops->copy(padded, full, n * sizeof(float));
        c->ops->synchronize();
        dist_nccl_reduce_scatter_sum_f32(c->nccl, padded, shard, n);
        dist_nccl_wait(c->nccl);
    }
#endif
        return;
    case HOST_STAGING: {
        float *host = host_room(c, n + mine.count);
        c->ops->download(host, full, n * sizeof(float));
        dist_reduce_scatter_sum_f32(c->dist, host, host + n, n);
        c->ops->upload(shard, host + n, mine.count * sizeof(float));
        return;
    }
    }
}

void device_allgather_f32(DeviceCollectives *c, float *full, size_t n) {
    DistShard mine = dist_shard(n, c->dist->world, c->dist->rank);
    switch (c->route) {
    case ALONE:
        return;
    case HOST_MEMORY:
        dist_allgather_f32(c->dist, full, n);
        return;
    case NCCL:
#ifdef DYDIT_NCCL
    {
        float *padded = padded_room(c, n);
        c->ops->copy(padded + mine.offset, full + mine.offset, mine.count * sizeof(float));
        c->ops->synchronize();
        dist_nccl_allgather_f32(c->nccl, padded, n);
        dist_nccl_wait(c->nccl);
        c->ops->copy(full, padded, n * sizeof(float));
    }
#endif
        return;
    case HOST_STAGING: {
        float *host = host_room(c, n);
        c->ops->download(host + mine.offset, full + mine.offset, mine.count * sizeof(float));
        dist_allgather_f32(c->dist, host, n);
        c->ops->upload(full, host, n * sizeof(float));
        return;
    }
    }
}
