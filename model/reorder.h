// model/reorder.h: importance ordering of heads and MLP hidden units before DyDiT fine-tuning
// (the paper's step, absent from the official code; docs/algorithm.md 3.9). DyDiT keeps head 0 and channel
// group 0 always on, so they should be the most important ones.
//
// Score of head h in a block: ||W_v rows of h||_F * ||W_proj columns of h||_F, a bound on how much
// the head can move the block output (queries and keys only shape the attention pattern). Score of
// MLP hidden unit j: ||fc1 row j|| * ||fc2 column j||. Heads are permuted by descending score (the
// q, k and v row blocks of qkv and the column blocks of proj together); hidden units are sorted by
// descending score (fc1 rows and bias, fc2 columns), so channel group 0 holds the top M / H units.
// Both are permutations of a sum's terms: the network computes the same function.
#pragma once
#include "model/tensors.h"

// Reorders every block's heads and hidden units in place. DyDiT router tensors, if any, are left
// as they are: reorder before the routers have learnt anything (their outputs index heads and
// channel groups).
void dit_reorder_by_importance(const DitConfig *cfg, const TensorTable *table, float *host);

// The per-head scores of block l (H values) and per-unit scores (M values), as used above.
void dit_head_scores(const DitConfig *cfg, const TensorTable *table, const float *host, int l, double *scores);
void dit_unit_scores(const DitConfig *cfg, const TensorTable *table, const float *host, int l, double *scores);
