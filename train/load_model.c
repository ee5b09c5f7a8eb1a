#include "train/load_model.h"

#include <stdlib.h>

#include "common/util.h"

void load_model(DitModel *m, const char *path, const WeightsHints *hints, const Ops *ops) {
    DitConfig cfg;
    TensorTable table;
    float *host;
    char err[1024];
    if (weights_load_file(path, hints, &cfg, &table, &host, err, sizeof(err))) die("%s", err);
    dit_model_create(m, &cfg, ops);
    if (table.total != m->table.total) die("internal: weights table does not match the model's");
    ops->upload(m->params, host, table.total * sizeof(float));
    free(host);
    tensor_table_free(&table);
}
