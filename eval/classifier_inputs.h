// eval/classifier_inputs.h: images as the Fashion-MNIST classifier (model/classifier.h) sees them:
// 28x28 pixels v / 127.5 - 1 of the bytes an image file would hold. Real images come from the IDX
// files; generated ones from `dydit sample --latents` of a pixel-space model trained on
// `dydit encode --source fashion-mnist` shards (1x32x32: the 28x28 image padded by 2), first
// turned into the bytes a grid or npz would hold (images_to_u8), then cropped back to 28x28.
#pragma once
#include <stdint.h>

#include "data/idx.h"

// (count, 784) inputs of images [first, first + count) of a loaded split.
float *classifier_inputs_from_idx(const FashionMnist *m, int64_t first, int64_t count);

// (count, 784) inputs and labels (count) of a samples file (tensors `latents` (N, 1, 32, 32) and
// `labels` (N)). NULL with err on a missing file or other shapes.
float *classifier_inputs_from_samples(const char *path, int64_t *count, int32_t **labels, char *err, int err_size);
