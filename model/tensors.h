// model/tensors.h: the tensor table. For a configuration it lists every parameter with its
// official PyTorch name, shape and offset in one flat float buffer. The same table drives weight
// files, initialisation, the optimizer (one flat range), gradients (a mirror buffer) and EMA.
//
// Memory order groups each per-block tensor kind across layers, stacked as (L, ...): all qkv
// weights, then all qkv biases, ... This keeps the per-block adaLN projections of every block and
// of the final layer contiguous, so that the model computes all modulations from SiLU(c) with one
// GEMM and their input gradient with one GEMM. The frozen pos_embed comes first, so the trainable
// parameters are the contiguous range [trainable_begin, total).
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "model/config.h"

enum { TENSOR_NAME_MAX = 96, TENSOR_MAX_DIMS = 4 };

typedef struct {
    char name[TENSOR_NAME_MAX];
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    size_t offset; // in floats from the start of the buffer
    size_t numel;
    int trainable;
} TensorInfo;

typedef struct {
    TensorInfo *tensors;
    int count, capacity;
    size_t total;           // floats in the whole buffer
    size_t trainable_begin; // the trainable range is [trainable_begin, total)
} TensorTable;

TensorTable tensor_table_build(const DitConfig *cfg);
void tensor_table_free(TensorTable *table);
// NULL when the name is not in the table.
const TensorInfo *tensor_table_find(const TensorTable *table, const char *name);
// "[1152, 4, 2, 2]"
void tensor_shape_string(const TensorInfo *t, char *out, int size);

// Pointers to each tensor kind inside one buffer laid out by the table (parameters, gradients,
// optimizer moments and EMA all share this layout). Stacked kinds point at layer 0; layer l of a
// kind of per-layer size S starts at base + l * S.
typedef struct {
    float *pos_embed;             // (1, T, D), frozen
    float *x_embed_w, *x_embed_b; // (D, C, p, p), (D)
    float *t_fc1_w, *t_fc1_b;     // (D, F), (D)
    float *t_fc2_w, *t_fc2_b;     // (D, D), (D)
    float *y_table;               // (rows, D)
    float *qkv_w, *qkv_b;         // (L, 3D, D), (L, 3D)
    float *proj_w, *proj_b;       // (L, D, D), (L, D)
    float *fc1_w, *fc1_b;         // (L, M, D), (L, M)   M = mlp hidden
    float *fc2_w, *fc2_b;         // (L, D, M), (L, D)
    float *ada_w, *ada_b;         // (L*6D + 2D, D), (L*6D + 2D): every block, then the final layer
    float *final_w, *final_b;     // (p*p*C_out, D), (p*p*C_out)
    // DyDiT only (NULL for a DiT); R = token-router hidden width
    float *attn_router_w, *attn_router_b; // (L, H-1, D), (L, H-1)
    float *mlp_router_w, *mlp_router_b;   // (L, H-1, D), (L, H-1)
    float *token_fc1_w, *token_fc1_b;     // (L, R, D), (L, R)
    float *token_fc2_w, *token_fc2_b;     // (L, 1, R), (L, 1)
} DitWeights;

DitWeights dit_weights_bind(const TensorTable *table, float *base);
