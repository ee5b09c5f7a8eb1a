// data/epoch_order.h: the order in which a run visits a dataset. Global sample g of the run
// (g = step * global_batch + position) is element g mod N of epoch g / N's permutation, a
// Fisher-Yates shuffle keyed by (seed, epoch). The order is a pure function of (seed, g), so a
// resumed run or a rank holding a slice of the batch computes it without shared state.
#pragma once
#include <stdint.h>

typedef struct {
    int64_t count; // N
    uint64_t seed;
    int64_t epoch; // epoch whose permutation `perm` holds; -1 before the first
    int64_t *perm; // (N)
} EpochOrder;

void epoch_order_init(EpochOrder *o, int64_t count, uint64_t seed);
void epoch_order_free(EpochOrder *o);
// Dataset index of global sample g.
int64_t epoch_order_index(EpochOrder *o, uint64_t g);
