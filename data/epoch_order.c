#include "data/epoch_order.h"

#include <stdlib.h>

#include "common/util.h"
#include "kernels/philox.h"

void epoch_order_init(EpochOrder *o, int64_t count, uint64_t seed) {
    o->count = count;
    o->seed = seed;
    o->epoch = -1;
    o->perm = xmalloc((size_t)count * sizeof(int64_t));
}

void epoch_order_free(EpochOrder *o) {
    free(o->perm);
    o->perm = NULL;
}

static void shuffle(EpochOrder *o, int64_t epoch) {
    for (int64_t i = 0; i < o->count; i++) o->perm[i] = i;
    for (int64_t i = o->count - 1; i > 0; i--) {
        // the counter's sample field carries the epoch, its element the position
        uint32_t r = rng_u32(o->seed, RNG_DATA, 0, (uint32_t)epoch, (uint64_t)i);
        int64_t j = (int64_t)(((uint64_t)r * (uint64_t)(i + 1)) >> 32);
        int64_t tmp = o->perm[i];
        o->perm[i] = o->perm[j];
        o->perm[j] = tmp;
    }
    o->epoch = epoch;
}

int64_t epoch_order_index(EpochOrder *o, uint64_t g) {
    int64_t epoch = (int64_t)(g / (uint64_t)o->count);
    if (epoch != o->epoch) shuffle(o, epoch);
    return o->perm[g % (uint64_t)o->count];
}
