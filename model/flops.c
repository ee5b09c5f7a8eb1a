#include "model/flops.h"

#include "model/tensors.h"

BlockMacs dit_block_macs(const DitConfig *c) {
    double N = dit_tokens(c), D = c->hidden, M = dit_mlp_hidden(c);
    BlockMacs b = {
        .attention = 4.0 * N * D * D + 2.0 * N * N * D,
        .mlp = 2.0 * N * D * M,
        .adaln = 6.0 * D * D,
    };
    return b;
}

double dit_outside_block_macs(const DitConfig *c) {
    double N = dit_tokens(c), D = c->hidden, F = c->frequency_size;
    return N * dit_patch_in(c) * D + F * D + D * D + 2.0 * D * D + N * D * dit_patch_out(c);
}

double dit_forward_macs(const DitConfig *c) {
    BlockMacs b = dit_block_macs(c);
    return c->depth * (b.attention + b.mlp + b.adaln) + dit_outside_block_macs(c);
}

double dydit_router_macs(const DitConfig *c) {
    double N = dit_tokens(c), D = c->hidden, R = dit_token_router_hidden(c), H = c->heads;
    return c->depth * (N * (D * R + R) + 2.0 * (H - 1) * D);
}

size_t dit_param_count(const DitConfig *c) {
    TensorTable t = tensor_table_build(c);
    size_t n = t.total;
    tensor_table_free(&t);
    return n;
}

size_t dit_trainable_param_count(const DitConfig *c) {
    TensorTable t = tensor_table_build(c);
    size_t n = t.total - t.trainable_begin;
    tensor_table_free(&t);
    return n;
}
