#include "model/reorder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static double row_norm(const float *w, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)w[i] * w[i];
    return sqrt(s);
}

// ||columns [c0, c0 + count) of a row-major (rows, cols) matrix||_F
static double column_block_norm(const float *w, int rows, int cols, int c0, int count) {
    double s = 0;
    for (int r = 0; r < rows; r++)
        for (int c = c0; c < c0 + count; c++) s += (double)w[(size_t)r * cols + c] * w[(size_t)r * cols + c];
    return sqrt(s);
}

void dit_head_scores(const DitConfig *cfg, const TensorTable *table, const float *host, int l, double *scores) {
    DitWeights w = dit_weights_bind(table, (float *)host);
    int D = cfg->hidden, hd = dit_head_dim(cfg);
    const float *qkv = w.qkv_w + (size_t)l * 3 * D * D, *proj = w.proj_w + (size_t)l * D * D;
    for (int h = 0; h < cfg->heads; h++) {
        const float *v_rows = qkv + ((size_t)2 * D + (size_t)h * hd) * D; // value rows of head h
        scores[h] = row_norm(v_rows, (size_t)hd * D) * column_block_norm(proj, D, D, h * hd, hd);
    }
}

void dit_unit_scores(const DitConfig *cfg, const TensorTable *table, const float *host, int l, double *scores) {
    DitWeights w = dit_weights_bind(table, (float *)host);
    int D = cfg->hidden, M = dit_mlp_hidden(cfg);
    const float *fc1 = w.fc1_w + (size_t)l * M * D, *fc2 = w.fc2_w + (size_t)l * D * M;
    for (int j = 0; j < M; j++)
        scores[j] = row_norm(fc1 + (size_t)j * D, (size_t)D) * column_block_norm(fc2, D, M, j, 1);
}

static const double *sort_scores; // qsort has no context argument
static int by_descending_score(const void *a, const void *b) {
    double x = sort_scores[*(const int *)a], y = sort_scores[*(const int *)b];
    if (x != y) return x < y ? 1 : -1;
    return *(const int *)a - *(const int *)b; // stable for ties
}

static void descending_order(const double *scores, int n, int *order) {
    for (int i = 0; i < n; i++) order[i] = i;
    sort_scores = scores;
    qsort(order, (size_t)n, sizeof(int), by_descending_score);
}

// Row blocks: dst block i = src block order[i] (blocks of `block` floats).
static void permute_blocks(float *x, const int *order, int n, size_t block) {
    float *copy = xmalloc((size_t)n * block * sizeof(float));
    memcpy(copy, x, (size_t)n * block * sizeof(float));
    for (int i = 0; i < n; i++) memcpy(x + (size_t)i * block, copy + (size_t)order[i] * block, block * sizeof(float));
    free(copy);
}

// Column blocks of a row-major (rows, n * block) matrix.
static void permute_column_blocks(float *x, int rows, const int *order, int n, int block) {
    size_t cols = (size_t)n * block;
    float *row = xmalloc(cols * sizeof(float));
    for (int r = 0; r < rows; r++) {
        float *xr = x + (size_t)r * cols;
        memcpy(row, xr, cols * sizeof(float));
        for (int i = 0; i < n; i++)
            memcpy(xr + (size_t)i * block, row + (size_t)order[i] * block, block * sizeof(float));
    }
    free(row);
}

void dit_reorder_by_importance(const DitConfig *cfg, const TensorTable *table, float *host) {
    DitWeights w = dit_weights_bind(table, host);
    int D = cfg->hidden, H = cfg->heads, hd = dit_head_dim(cfg), M = dit_mlp_hidden(cfg);
    double *scores = xmalloc(sizeof(double) * (size_t)(H > M ? H : M));
    int *order = xmalloc(sizeof(int) * (size_t)(H > M ? H : M));
    for (int l = 0; l < cfg->depth; l++) {
        float *qkv_w = w.qkv_w + (size_t)l * 3 * D * D, *qkv_b = w.qkv_b + (size_t)l * 3 * D;
        dit_head_scores(cfg, table, host, l, scores);
        descending_order(scores, H, order);
        for (int which = 0; which < 3; which++) { // q, k and v rows move together
            permute_blocks(qkv_w + (size_t)which * D * D, order, H, (size_t)hd * D);
            permute_blocks(qkv_b + (size_t)which * D, order, H, (size_t)hd);
        }
        permute_column_blocks(w.proj_w + (size_t)l * D * D, D, order, H, hd);

        dit_unit_scores(cfg, table, host, l, scores);
        descending_order(scores, M, order);
        permute_blocks(w.fc1_w + (size_t)l * M * D, order, M, (size_t)D);
        permute_blocks(w.fc1_b + (size_t)l * M, order, M, 1);
        permute_column_blocks(w.fc2_w + (size_t)l * D * M, D, order, M, 1);
    }
    free(scores);
    free(order);
}
