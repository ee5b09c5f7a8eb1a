// model/dit_infer.h: DiT / DyDiT inference. A forward keeps nothing for a backward, so one
// layer's buffers serve every layer. For a DyDiT it is the engine that really skips work (docs/algorithm.md 5):
//  - width: routers that read the timestep decide for the whole batch; each timestep's active heads
//    and channel groups of every layer are computed once and cached. Routers that read the class
//    (router_input condition) decide per row: the rows are sorted into groups of equal patterns,
//    each group runs as one narrowed batch, and the outputs return to the caller's order. Attention runs over all tokens
//    with the active heads only (qkv rows and proj columns of those heads, packed); the MLP uses
//    the fc1 rows and fc2 columns of the active groups. Packed slices are kept per layer and
//    re-packed only when the layer's pattern changes;
//  - tokens: the token router runs on every token; the kept tokens of the whole batch are gathered
//    (each row remembers its sample for modulate and gate), go through the narrowed MLP and are
//    scatter-added back. Dropped tokens are untouched.
// It computes what the masked (training-form) forward computes in eval mode, up to float32
// rounding: only the order of some sums differs.
#pragma once
#include <stdint.h>

#include "model/dit.h"

typedef struct DitInfer DitInfer;

typedef struct {
    double macs;                              // multiply-adds of the last forward, whole batch, as executed
    double static_macs;                       // what the static model would have executed on that batch
    double head_keep, group_keep, token_keep; // DyDiT: fractions of heads, channel groups, tokens on
    int width_groups; // DyDiT: distinct width patterns among the rows (1 unless the routers read the class)
} InferStats;

// An engine for batches of up to `capacity` samples. dynamic: 1 skips what a DyDiT's routers
// switch off; 0 runs the static network (a DiT, or a DyDiT's complete path). The model must stay
// alive and unchanged while the engine exists.
DitInfer *dit_infer_create(const DitModel *m, int capacity, int dynamic);
void dit_infer_destroy(DitInfer *e);

// out (B, C_out, H, W) = network(x (B, C, H, W), t, y (B)), every sample at the same timestep t
// (a sampler's batch, guidance halves included); x, out on the backend, y on the host.
void dit_infer_forward(DitInfer *e, const float *x, float t, const int32_t *y, int B, float *out);
InferStats dit_infer_stats(const DitInfer *e);
// DyDiT, after a dynamic forward: host copy of the token decisions (B, L, T), 1 kept / 0 dropped.
const float *dit_infer_token_keep(const DitInfer *e);
// Distinct width patterns packed so far (a measure of how often slices were re-packed).
long dit_infer_repacks(const DitInfer *e);
