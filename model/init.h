// model/init.h: DiT parameter initialisation (docs/algorithm.md 1.9) and the fixed sin-cos position table.
#pragma once
#include <stdint.h>

#include "model/tensors.h"

// out (T, D): 2-D sin-cos table; channels [0, D/2) encode the patch column, [D/2, D) the row,
// each half [sin..., cos...]; computed in double, rounded once to float.
void dit_pos_embed_fill(const DitConfig *cfg, float *out);

// Fills a host buffer laid out by `table` (table->total floats) with DiT's initialisation:
// xavier-uniform Linear/patch weights and zero biases, N(0, 0.02) label table and timestep-MLP
// weights, zero adaLN and final layers, the sin-cos pos_embed; for a DyDiT, xavier router weights
// with biases 15 (width routers) and 35 (the token router's output). Deterministic in `seed`.
void dit_init_host(const DitConfig *cfg, const TensorTable *table, float *host, uint64_t seed);

// DyDiT's default initial router biases (docs/algorithm.md 3.6).
#define DYDIT_WIDTH_ROUTER_BIAS 15.0f
#define DYDIT_TOKEN_ROUTER_BIAS 35.0f

// Sets every width router's bias to `width` and every token router's output bias to `token`
// (new routers start far on by default; smaller values let short runs reach the decision
// boundary sooner).
void dydit_set_router_biases(const TensorTable *table, float *host, float width, float token);
