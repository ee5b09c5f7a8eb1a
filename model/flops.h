// model/flops.h: parameter counts and multiply-accumulate counts of a configuration (docs/algorithm.md 1.2).
// "GFLOPs" in the DiT and DyDiT papers are GMACs of one forward pass; MFU uses 2 x MACs.
#pragma once
#include <stddef.h>

#include "model/config.h"

typedef struct {
    double attention; // per block and sample: qkv + proj 4ND^2, QK^T and AV 2N^2 D
    double mlp;       // per block and sample: fc1 + fc2 2 N D M
    double adaln;     // per block and sample: 6 D^2 (once per image, not per token)
} BlockMacs;

BlockMacs dit_block_macs(const DitConfig *cfg);
// Everything outside the blocks: patch embedding, timestep MLP, final adaLN and Linear.
double dit_outside_block_macs(const DitConfig *cfg);
// One whole forward pass of one sample.
double dit_forward_macs(const DitConfig *cfg);
// DyDiT's routers per forward of one sample when they all run: every block's token router on all
// N tokens (N (D R + R)) and both width routers (2 (H - 1) D); docs/algorithm.md 5.5.
double dydit_router_macs(const DitConfig *cfg);
// Parameters including the frozen pos_embed (and a DyDiT's routers), and the trainable ones.
size_t dit_param_count(const DitConfig *cfg);
size_t dit_trainable_param_count(const DitConfig *cfg);
