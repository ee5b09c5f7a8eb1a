// train/load_model.h: a DitModel built from a weights file, for the commands that read one.
#pragma once
#include "model/dit.h"
#include "model/weights.h"

// Reads the configuration and weights (exits with a one-line error on failure), creates the model
// on `ops` and uploads the parameters.
void load_model(DitModel *m, const char *path, const WeightsHints *hints, const Ops *ops);
