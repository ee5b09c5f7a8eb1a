// model/init.h: DiT parameter initialisation (SPEC 1.9) and the fixed sin-cos position table.
#pragma once
#include <stdint.h>

#include "model/tensors.h"

// out (T, D): 2-D sin-cos table; channels [0, D/2) encode the patch column, [D/2, D) the row,
// each half [sin..., cos...]; computed in double, rounded once to float.
void dit_pos_embed_fill(const DitConfig *cfg, float *out);

// Fills a host buffer laid out by `table` (table->total floats) with DiT's initialisation:
// xavier-uniform Linear/patch weights and zero biases, N(0, 0.02) label table and timestep-MLP
// weights, zero adaLN and final layers, the sin-cos pos_embed. Deterministic in `seed`.
void dit_init_host(const DitConfig *cfg, const TensorTable *table, float *host, uint64_t seed);
