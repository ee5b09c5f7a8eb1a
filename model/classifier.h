// model/classifier.h: the small Fashion-MNIST classifier behind dydit's quality metric (FMNIST-FD,
// eval/frechet.h): an MLP 784 -> 256 -> 128 -> 10 with ReLUs on 28x28 images scaled to [-1, 1]
// (the DiT's pixel scale). Its features are the 128 ReLU outputs of the penultimate layer. Like
// the DiT it runs through an Ops table; the softmax cross-entropy is computed on the host from
// the 10 logits per image.
//
// Parameters live in one flat buffer in the order of classifier_tensors (PyTorch nn.Linear
// layout: weight (out, in), bias (out)); files are safetensors with those names.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"

enum { CLASSIFIER_INPUT = 784, CLASSIFIER_HIDDEN = 256, CLASSIFIER_FEATURES = 128, CLASSIFIER_CLASSES = 10 };

typedef struct {
    const Ops *ops;
    int max_batch;
    size_t param_count;
    float *params, *grads, *adam_m, *adam_v;      // (param_count) each
    float *x, *h1, *a1, *h2, *features, *logits;  // activations of the last forward, (B, width)
    float *dlogits, *dfeatures, *dh2, *da1, *dh1; // their gradients
} Classifier;

// Allocates a classifier for batches up to max_batch with PyTorch's default nn.Linear
// initialisation (weights and biases uniform in +-1/sqrt(fan_in)) drawn from seed.
void classifier_init(Classifier *c, const Ops *ops, int max_batch, uint64_t seed);
void classifier_free(Classifier *c);
// Name and offset/size of parameter tensor i (0 <= i < 6) in the flat buffer; NULL past the end.
const char *classifier_tensor(int i, size_t *offset, int64_t shape[2], int *ndim);

// x (B, 784) on the host, pixels in [-1, 1]: computes features (B, 128) and logits (B, 10) on the
// backend.
void classifier_forward(Classifier *c, const float *x, int B);
// After a forward: the mean cross-entropy of the logits against labels (B); with want_grads the
// parameter gradients of that mean are written into grads (overwritten). correct (may be NULL)
// receives how many argmax predictions equal the labels.
double classifier_loss(Classifier *c, const int32_t *labels, int B, int want_grads, int *correct);
// The argmax class of each of the B logits of the last forward.
void classifier_predict(Classifier *c, int B, int32_t *classes);

// Features (N, 128) and predicted classes (N) of inputs x (N, 784) on the host, in batches of
// max_batch; either output may be NULL.
void classifier_features(Classifier *c, const float *x, int64_t N, float *features, int32_t *classes);

int classifier_save(const Classifier *c, const char *path, char *err, int err_size);
int classifier_load(Classifier *c, const char *path, char *err, int err_size);
