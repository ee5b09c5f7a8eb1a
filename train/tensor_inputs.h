// train/tensor_inputs.h: reading the named input tensors of `dydit forward` and `dydit grad`
// with one-line errors that name the file, the tensor and what was expected.
#pragma once
#include <stdint.h>

#include "data/safetensors.h"

// A float tensor of exactly the given shape; returns a malloc'd host array.
float *input_floats(const StFile *f, const char *name, int ndim, const int64_t *shape);
// Integers in [0, limit) of shape (B): labels.
int32_t *input_labels(const StFile *f, const char *name, int64_t B, int64_t limit);
// Timesteps of shape (B), integer or float dtype, as floats; with `integral`, each must be a whole
// number in [0, limit).
float *input_timesteps(const StFile *f, const char *name, int64_t B, int integral, int64_t limit);
// The batch size: the first dimension of the named tensor.
int64_t input_batch(const StFile *f, const char *name);
