// tests/test_classifier.c: the Fashion-MNIST classifier of the quality metric: its loss against a
// double-precision forward written out here, every parameter tensor's gradient against
// Richardson-extrapolated central differences (tests/fd.h), and a save/load round trip.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/classifier.h"
#include "tests/fd.h"

enum { B = 6 };

typedef struct {
    Classifier *c;
    const float *x;
    const int32_t *labels;
} LossCtx;

static double loss_of(void *ctx) {
    LossCtx *l = ctx;
    classifier_forward(l->c, l->x, B);
    return classifier_loss(l->c, l->labels, B, 0, NULL);
}

static double reference_loss(const Classifier *c, const float *x, const int32_t *labels);
static double reference_loss_of(void *ctx) {
    LossCtx *l = ctx;
    return reference_loss(l->c, l->x, l->labels);
}

// y (out) = W x + b (in) in double, through a ReLU when relu != 0.
static void dense(double *y, const float *w, const float *b, const double *x, int in, int out, int relu) {
    for (int o = 0; o < out; o++) {
        double s = b[o];
        for (int i = 0; i < in; i++) s += (double)w[(size_t)o * in + i] * x[i];
        y[o] = relu && s < 0 ? 0 : s;
    }
}

static double reference_loss(const Classifier *c, const float *x, const int32_t *labels) {
    const float *p = c->params;
    const float *w1 = p, *b1 = w1 + CLASSIFIER_HIDDEN * CLASSIFIER_INPUT, *w2 = b1 + CLASSIFIER_HIDDEN,
                *b2 = w2 + CLASSIFIER_FEATURES * CLASSIFIER_HIDDEN, *w3 = b2 + CLASSIFIER_FEATURES,
                *b3 = w3 + CLASSIFIER_CLASSES * CLASSIFIER_FEATURES;
    double total = 0;
    for (int n = 0; n < B; n++) {
        double in[CLASSIFIER_INPUT], h1[CLASSIFIER_HIDDEN], h2[CLASSIFIER_FEATURES], z[CLASSIFIER_CLASSES];
        for (int i = 0; i < CLASSIFIER_INPUT; i++) in[i] = x[(size_t)n * CLASSIFIER_INPUT + i];
        dense(h1, w1, b1, in, CLASSIFIER_INPUT, CLASSIFIER_HIDDEN, 1);
        dense(h2, w2, b2, h1, CLASSIFIER_HIDDEN, CLASSIFIER_FEATURES, 1);
        dense(z, w3, b3, h2, CLASSIFIER_FEATURES, CLASSIFIER_CLASSES, 0);
        double sum = 0;
        for (int k = 0; k < CLASSIFIER_CLASSES; k++) sum += exp(z[k]);
        total += log(sum) - z[labels[n]];
    }
    return total / B;
}

int main(int argc, char **argv) {
    const char *work = argc > 1 ? argv[1] : "/tmp";
    Classifier c;
    classifier_init(&c, &ops_cpu, B, 3);
    float *x = malloc(sizeof(float) * B * CLASSIFIER_INPUT);
    fill_normal(x, (size_t)B * CLASSIFIER_INPUT, 0.6f, 11);
    int32_t labels[B] = {0, 3, 9, 3, 7, 1};
    // larger weights than the initialisation, so that the logits and hence the gradients are not tiny
    for (size_t i = 0; i < c.param_count; i++) c.params[i] *= 3;

    LossCtx ctx = {&c, x, labels};
    double loss = loss_of(&ctx), want = reference_loss(&c, x, labels);
    check(fabs(loss - want) < 1e-5 * fabs(want), "classifier.loss_vs_double", "%.8g vs %.8g", loss, want);

    classifier_forward(&c, x, B);
    classifier_loss(&c, labels, B, 1, NULL);
    float *grads = malloc(sizeof(float) * c.param_count);
    memcpy(grads, c.grads, sizeof(float) * c.param_count);
    size_t offset;
    int64_t shape[2];
    int ndim;
    const char *name;
    for (int i = 0; (name = classifier_tensor(i, &offset, shape, &ndim)); i++) {
        size_t n = (size_t)shape[0] * (ndim == 2 ? (size_t)shape[1] : 1);
        char label[64];
        snprintf(label, sizeof(label), "classifier.grad.%s", name);
        // The differences use the double-precision loss; steps are small enough that hardly any ReLU input
        // crosses zero (a crossing is a kink the differences see and the gradient does not), smallest for
        // fc1.weight, whose direction moves every pre-activation through 784 inputs, and large enough that
        // the float parameters' rounding stays below the tolerance.
        fd_directional(label, c.params + offset, n, grads + offset, reference_loss_of, &ctx, i == 0 ? 1e-5 : 1e-4, 1e-3,
                       20 + i);
    }

    char path[512], err[512];
    snprintf(path, sizeof(path), "%s/classifier.safetensors", work);
    Classifier d;
    classifier_init(&d, &ops_cpu, B, 99);
    int ok = classifier_save(&c, path, err, sizeof(err)) == 0 && classifier_load(&d, path, err, sizeof(err)) == 0;
    check(ok && !memcmp(c.params, d.params, sizeof(float) * c.param_count), "classifier.save_load", "%s",
          ok ? "" : err);
    classifier_free(&c);
    classifier_free(&d);
    free(x);
    free(grads);
    return check_exit();
}
