#include "model/classifier.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "data/safetensors.h"
#include "kernels/philox.h"

#define CLASSIFIER_FORMAT "dydit-fmnist-classifier"

typedef struct {
    const char *name;
    int out, in; // in == 0: a bias of `out` values
} TensorSpec;

static const TensorSpec tensors[] = {
    {"fc1.weight", CLASSIFIER_HIDDEN, CLASSIFIER_INPUT},     {"fc1.bias", CLASSIFIER_HIDDEN, 0},
    {"fc2.weight", CLASSIFIER_FEATURES, CLASSIFIER_HIDDEN},  {"fc2.bias", CLASSIFIER_FEATURES, 0},
    {"fc3.weight", CLASSIFIER_CLASSES, CLASSIFIER_FEATURES}, {"fc3.bias", CLASSIFIER_CLASSES, 0},
};
enum { TENSOR_COUNT = sizeof(tensors) / sizeof(tensors[0]) };

static size_t tensor_size(int i) { return (size_t)tensors[i].out * (tensors[i].in ? tensors[i].in : 1); }

const char *classifier_tensor(int i, size_t *offset, int64_t shape[2], int *ndim) {
    if (i < 0 || i >= TENSOR_COUNT) return NULL;
    *offset = 0;
    for (int k = 0; k < i; k++) *offset += tensor_size(k);
    shape[0] = tensors[i].out;
    shape[1] = tensors[i].in;
    *ndim = tensors[i].in ? 2 : 1;
    return tensors[i].name;
}

// Tensor i inside a flat buffer (parameters or gradients).
static float *param(const Classifier *c, float *base, int i) {
    size_t offset;
    int64_t shape[2];
    int ndim;
    classifier_tensor(i, &offset, shape, &ndim);
    (void)c;
    return base + offset;
}

void classifier_init(Classifier *c, const Ops *ops, int max_batch, uint64_t seed) {
    memset(c, 0, sizeof(*c));
    c->ops = ops;
    c->max_batch = max_batch;
    for (int i = 0; i < TENSOR_COUNT; i++) c->param_count += tensor_size(i);
    size_t pbytes = c->param_count * sizeof(float);
    c->params = ops->alloc(pbytes);
    c->grads = ops->alloc(pbytes);
    c->adam_m = ops->alloc(pbytes);
    c->adam_v = ops->alloc(pbytes);
    size_t B = (size_t)max_batch;
    c->x = ops->alloc(B * CLASSIFIER_INPUT * sizeof(float));
    float **hidden[] = {&c->h1, &c->a1, &c->dh1, &c->da1};
    for (int i = 0; i < 4; i++) *hidden[i] = ops->alloc(B * CLASSIFIER_HIDDEN * sizeof(float));
    float **feature[] = {&c->h2, &c->features, &c->dh2, &c->dfeatures};
    for (int i = 0; i < 4; i++) *feature[i] = ops->alloc(B * CLASSIFIER_FEATURES * sizeof(float));
    c->logits = ops->alloc(B * CLASSIFIER_CLASSES * sizeof(float));
    c->dlogits = ops->alloc(B * CLASSIFIER_CLASSES * sizeof(float));

    float *host = xmalloc(pbytes);
    size_t at = 0;
    for (int i = 0; i < TENSOR_COUNT; i++) {
        int fan_in = tensors[i].in ? tensors[i].in : tensors[i - 1].in;
        double bound = 1 / sqrt((double)fan_in);
        for (size_t k = 0; k < tensor_size(i); k++, at++)
            host[at] = (float)(bound * (2 * rng_open01(rng_u32(seed, RNG_INIT, 0, (uint32_t)i, k)) - 1));
    }
    ops->upload(c->params, host, pbytes);
    free(host);
}

void classifier_free(Classifier *c) {
    float *buffers[] = {c->params, c->grads, c->adam_m,   c->adam_v, c->x,         c->h1,     c->a1,     c->dh1,
                        c->da1,    c->h2,    c->features, c->dh2,    c->dfeatures, c->logits, c->dlogits};
    for (size_t i = 0; i < sizeof(buffers) / sizeof(buffers[0]); i++) c->ops->release(buffers[i]);
    memset(c, 0, sizeof(*c));
}

void classifier_forward(Classifier *c, const float *x, int B) {
    if (B > c->max_batch) die("classifier batch of %d exceeds its maximum %d", B, c->max_batch);
    const Ops *o = c->ops;
    o->upload(c->x, x, (size_t)B * CLASSIFIER_INPUT * sizeof(float));
    o->matmul_forward(c->h1, c->x, param(c, c->params, 0), param(c, c->params, 1), B, CLASSIFIER_INPUT,
                      CLASSIFIER_HIDDEN);
    o->relu_forward(c->a1, c->h1, (size_t)B * CLASSIFIER_HIDDEN);
    o->matmul_forward(c->h2, c->a1, param(c, c->params, 2), param(c, c->params, 3), B, CLASSIFIER_HIDDEN,
                      CLASSIFIER_FEATURES);
    o->relu_forward(c->features, c->h2, (size_t)B * CLASSIFIER_FEATURES);
    o->matmul_forward(c->logits, c->features, param(c, c->params, 4), param(c, c->params, 5), B, CLASSIFIER_FEATURES,
                      CLASSIFIER_CLASSES);
}

double classifier_loss(Classifier *c, const int32_t *labels, int B, int want_grads, int *correct) {
    const Ops *o = c->ops;
    float logits[CLASSIFIER_CLASSES], *dlogits = xmalloc((size_t)B * CLASSIFIER_CLASSES * sizeof(float));
    double loss = 0;
    int right = 0;
    for (int b = 0; b < B; b++) {
        o->download(logits, c->logits + (size_t)b * CLASSIFIER_CLASSES, sizeof(logits));
        int best = 0;
        double top = logits[0], z = 0;
        for (int k = 1; k < CLASSIFIER_CLASSES; k++)
            if (logits[k] > top) top = logits[best = k];
        for (int k = 0; k < CLASSIFIER_CLASSES; k++) z += exp(logits[k] - top);
        loss += log(z) + top - logits[labels[b]];
        right += best == labels[b];
        for (int k = 0; k < CLASSIFIER_CLASSES; k++)
            dlogits[(size_t)b * CLASSIFIER_CLASSES + k] = (float)((exp(logits[k] - top) / z - (k == labels[b])) / B);
    }
    if (correct) *correct = right;
    if (want_grads) {
        o->upload(c->dlogits, dlogits, (size_t)B * CLASSIFIER_CLASSES * sizeof(float));
        o->zero(c->grads, c->param_count * sizeof(float));
        o->matmul_backward(c->dfeatures, param(c, c->grads, 4), param(c, c->grads, 5), c->dlogits, c->features,
                           param(c, c->params, 4), B, CLASSIFIER_FEATURES, CLASSIFIER_CLASSES);
        o->relu_backward(c->dh2, c->dfeatures, c->h2, (size_t)B * CLASSIFIER_FEATURES);
        o->matmul_backward(c->da1, param(c, c->grads, 2), param(c, c->grads, 3), c->dh2, c->a1, param(c, c->params, 2),
                           B, CLASSIFIER_HIDDEN, CLASSIFIER_FEATURES);
        o->relu_backward(c->dh1, c->da1, c->h1, (size_t)B * CLASSIFIER_HIDDEN);
        o->matmul_backward(NULL, param(c, c->grads, 0), param(c, c->grads, 1), c->dh1, c->x, param(c, c->params, 0), B,
                           CLASSIFIER_INPUT, CLASSIFIER_HIDDEN);
    }
    free(dlogits);
    return loss / B;
}

void classifier_predict(Classifier *c, int B, int32_t *classes) {
    float logits[CLASSIFIER_CLASSES];
    for (int b = 0; b < B; b++) {
        c->ops->download(logits, c->logits + (size_t)b * CLASSIFIER_CLASSES, sizeof(logits));
        int best = 0;
        for (int k = 1; k < CLASSIFIER_CLASSES; k++)
            if (logits[k] > logits[best]) best = k;
        classes[b] = best;
    }
}

void classifier_features(Classifier *c, const float *x, int64_t N, float *features, int32_t *classes) {
    for (int64_t first = 0; first < N; first += c->max_batch) {
        int B = (int)(N - first < c->max_batch ? N - first : c->max_batch);
        classifier_forward(c, x + (size_t)first * CLASSIFIER_INPUT, B);
        if (features)
            c->ops->download(features + (size_t)first * CLASSIFIER_FEATURES, c->features,
                             (size_t)B * CLASSIFIER_FEATURES * sizeof(float));
        if (classes) classifier_predict(c, B, classes + first);
    }
}

int classifier_save(const Classifier *c, const char *path, char *err, int err_size) {
    float *host = xmalloc(c->param_count * sizeof(float));
    c->ops->download(host, c->params, c->param_count * sizeof(float));
    StWriter *w = st_writer_new();
    st_writer_meta(w, "format", CLASSIFIER_FORMAT);
    size_t offset;
    int64_t shape[2];
    int ndim;
    for (int i = 0; i < TENSOR_COUNT; i++) {
        const char *name = classifier_tensor(i, &offset, shape, &ndim);
        st_writer_add(w, name, ST_F32, ndim, shape, host + offset);
    }
    int rc = st_writer_save(w, path, err, err_size);
    st_writer_free(w);
    free(host);
    return rc;
}

int classifier_load(Classifier *c, const char *path, char *err, int err_size) {
    StFile *f = st_open(path, err, err_size);
    if (!f) return -1;
    const char *format = st_meta(f, "format");
    if (!format || strcmp(format, CLASSIFIER_FORMAT)) {
        st_close(f);
        return fail_at(err, err_size, path, "not a classifier file (metadata format is not %s)", CLASSIFIER_FORMAT);
    }
    float *host = xmalloc(c->param_count * sizeof(float));
    int rc = 0;
    for (int i = 0; i < TENSOR_COUNT && !rc; i++) {
        size_t offset;
        int64_t shape[2];
        int ndim;
        const char *name = classifier_tensor(i, &offset, shape, &ndim);
        const StTensor *t = st_find(f, name);
        char want[64];
        if (ndim == 2)
            snprintf(want, sizeof(want), "(%lld, %lld)", (long long)shape[0], (long long)shape[1]);
        else
            snprintf(want, sizeof(want), "(%lld)", (long long)shape[0]);
        if (!t || t->ndim != ndim || t->shape[0] != shape[0] || (ndim == 2 && t->shape[1] != shape[1]))
            rc = fail_at(err, err_size, path, "tensor %s missing or not of shape %s", name, want);
        else if (!(rc = st_read_f32(f, t, host + offset, err, err_size)) &&
                 first_nonfinite_record(host + offset, 1, (size_t)st_numel(t)) >= 0)
            rc = fail_at(err, err_size, path, "tensor %s holds a non-finite value", name);
    }
    if (!rc) c->ops->upload(c->params, host, c->param_count * sizeof(float));
    free(host);
    st_close(f);
    return rc;
}
