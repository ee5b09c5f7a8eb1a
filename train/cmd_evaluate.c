// train/cmd_evaluate.c: `dydit evaluate`, the Fashion-MNIST quality metric (FMNIST-FD).
//
// --train-classifier trains the small classifier of model/classifier.h on the 60,000 training
// images (Adam, a Philox shuffle per epoch) and reports its test accuracy. Scoring fits a Gaussian
// to the classifier's penultimate features of the reference images (test images [holdout, 10000))
// and one to the scored set, and prints the Frechet distance between them (eval/frechet.h) and how
// often the classifier assigns the set's images to their labels: the samples of a class-conditional
// model (--samples, from `dydit sample --latents`) or, without --samples, the held-out real test
// images [0, holdout), the floor that sampling noise alone leaves for a set of that size.
// It is not FID: other network, other features, other images; its values compare only with itself.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/output_files.h"
#include "common/util.h"
#include "data/idx.h"
#include "data/json.h"
#include "eval/classifier_inputs.h"
#include "eval/frechet.h"
#include "kernels/philox.h"
#include "model/classifier.h"
#include "train/commands.h"
#include "train/options.h"

typedef struct {
    int train, epochs, batch, seed, holdout, quiet;
    double lr;
    const char *out, *classifier, *samples, *data_dir;
} EvaluateOptions;

static double accuracy(Classifier *c, const float *x, const int32_t *labels, int64_t n) {
    int32_t *predicted = xmalloc(sizeof(int32_t) * (size_t)n);
    classifier_features(c, x, n, NULL, predicted);
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) right += predicted[i] == labels[i];
    free(predicted);
    return (double)right / (double)n;
}

static void train_classifier(const EvaluateOptions *o) {
    OutputFiles out = {0};
    const char *out_file = output_files_add(&out, "--out", o->out);
    char err[1024];
    FashionMnist train, test;
    if (fashion_mnist_load(o->data_dir, "train", &train, err, sizeof(err)) ||
        fashion_mnist_load(o->data_dir, "test", &test, err, sizeof(err)))
        die("%s", err);
    float *x = classifier_inputs_from_idx(&train, 0, train.count);
    float *x_test = classifier_inputs_from_idx(&test, 0, test.count);
    int32_t *y_test = xmalloc(sizeof(int32_t) * (size_t)test.count);
    for (int64_t i = 0; i < test.count; i++) y_test[i] = test.labels[i];
    Classifier c;
    classifier_init(&c, &ops_cpu, o->batch, (uint64_t)o->seed);
    int64_t n = train.count, *order = xmalloc(sizeof(int64_t) * (size_t)n);
    float *batch_x = xmalloc(sizeof(float) * (size_t)o->batch * CLASSIFIER_INPUT);
    int32_t *batch_y = xmalloc(sizeof(int32_t) * (size_t)o->batch);
    double start = now_seconds();
    long step = 0;
    for (int epoch = 0; epoch < o->epochs; epoch++) {
        for (int64_t i = 0; i < n; i++) order[i] = i;
        for (int64_t i = n - 1; i > 0; i--) { // Fisher-Yates
            int64_t j =
                rng_below(rng_u32((uint64_t)o->seed, RNG_DATA, (uint32_t)epoch, 0, (uint64_t)i), (uint32_t)i + 1);
            int64_t t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        double loss_sum = 0;
        int64_t right = 0, seen = 0;
        for (int64_t first = 0; first + o->batch <= n; first += o->batch) { // drops the last partial batch
            for (int b = 0; b < o->batch; b++) {
                int64_t k = order[first + b];
                memcpy(batch_x + (size_t)b * CLASSIFIER_INPUT, x + (size_t)k * CLASSIFIER_INPUT,
                       sizeof(float) * CLASSIFIER_INPUT);
                batch_y[b] = train.labels[k];
            }
            classifier_forward(&c, batch_x, o->batch);
            int correct;
            loss_sum += classifier_loss(&c, batch_y, o->batch, 1, &correct) * o->batch;
            right += correct;
            seen += o->batch;
            ops_cpu.adamw_update(c.params, c.grads, c.adam_m, c.adam_v, c.param_count, o->lr, 0.9, 0.999, 1e-8, 0,
                                 ++step);
        }
        if (!o->quiet)
            fprintf(stderr, "classifier epoch %d/%d: loss %.4f, train accuracy %.4f, test accuracy %.4f (%.1fs)\n",
                    epoch + 1, o->epochs, loss_sum / seen, (double)right / seen,
                    accuracy(&c, x_test, y_test, test.count), now_seconds() - start);
    }
    double test_accuracy = accuracy(&c, x_test, y_test, test.count);
    if (classifier_save(&c, out_file, err, sizeof(err))) die("%s", err);
    output_files_commit(&out);
    char *path = json_quote(o->out);
    printf("{\"classifier\":%s,\"epochs\":%d,\"test_accuracy\":%.4f,\"train_seconds\":%.2f}\n", path, o->epochs,
           test_accuracy, now_seconds() - start);
    free(path);
    classifier_free(&c);
    free(order), free(batch_x), free(batch_y), free(x), free(x_test), free(y_test);
    fashion_mnist_free(&train);
    fashion_mnist_free(&test);
}

static void score(const EvaluateOptions *o) {
    char err[1024];
    FashionMnist test;
    if (fashion_mnist_load(o->data_dir, "test", &test, err, sizeof(err))) die("%s", err);
    if (o->holdout < 2 || o->holdout > test.count - 2)
        die("--holdout must leave at least 2 images on either side of the %lld test images (got %d)",
            (long long)test.count, o->holdout);
    Classifier c;
    classifier_init(&c, &ops_cpu, 500, 0);
    if (classifier_load(&c, o->classifier, err, sizeof(err))) die("%s", err);

    int64_t ref_count = test.count - o->holdout;
    float *ref_x = classifier_inputs_from_idx(&test, o->holdout, ref_count);
    float *features = xmalloc(sizeof(float) * (size_t)ref_count * CLASSIFIER_FEATURES);
    classifier_features(&c, ref_x, ref_count, features, NULL);
    GaussianStats reference = gaussian_stats_fit(features, ref_count, CLASSIFIER_FEATURES);

    int64_t n;
    float *x;
    int32_t *labels;
    if (o->samples) {
        if (!(x = classifier_inputs_from_samples(o->samples, &n, &labels, err, sizeof(err)))) die("%s", err);
        if (n < 2) die("%s: %lld samples; a covariance needs at least 2", o->samples, (long long)n);
        for (int64_t i = 0; i < n; i++)
            if (labels[i] < 0 || labels[i] >= CLASSIFIER_CLASSES)
                die("%s: label %d of sample %lld is not a Fashion-MNIST class", o->samples, labels[i], (long long)i);
    } else {
        n = o->holdout;
        x = classifier_inputs_from_idx(&test, 0, n);
        labels = xmalloc(sizeof(int32_t) * (size_t)n);
        for (int64_t i = 0; i < n; i++) labels[i] = test.labels[i];
    }
    features = xrealloc(features, sizeof(float) * (size_t)n * CLASSIFIER_FEATURES);
    int32_t *predicted = xmalloc(sizeof(int32_t) * (size_t)n);
    classifier_features(&c, x, n, features, predicted);
    GaussianStats scored = gaussian_stats_fit(features, n, CLASSIFIER_FEATURES);
    int64_t right = 0;
    for (int64_t i = 0; i < n; i++) right += predicted[i] == labels[i];
    double fd = frechet_distance(&scored, &reference);
    if (!isfinite(fd)) die("the Frechet distance came out non-finite (%g); nothing printed", fd);
    char *source = o->samples ? json_quote(o->samples) : NULL;
    printf("{\"set\":%s,\"count\":%lld,\"reference_count\":%lld,\"fmnist_fd\":%.6g,\"class_accuracy\":%.4f}\n",
           source ? source : "\"real test images\"", (long long)n, (long long)ref_count, fd, (double)right / n);
    free(source);
    gaussian_stats_free(&reference);
    gaussian_stats_free(&scored);
    classifier_free(&c);
    free(ref_x), free(features), free(x), free(labels), free(predicted);
    fashion_mnist_free(&test);
}

int cmd_evaluate(int argc, char **argv) {
    EvaluateOptions o = {.epochs = 4, .batch = 128, .lr = 1e-3, .holdout = 1000, .data_dir = FASHION_MNIST_DIR};
    Option options[] = {
        {"train-classifier", OPT_FLAG, &o.train, "train the classifier on the training images and write --out", NULL, 0,
         NO_RANGE},
        {"out", OPT_STRING, &o.out, "where --train-classifier writes the classifier (safetensors)", NULL, 0, NO_RANGE},
        {"epochs", OPT_INT, &o.epochs, "classifier training: passes over the 60,000 training images", NULL, 0,
         RANGE(1, 1000)},
        {"batch", OPT_INT, &o.batch, "classifier training: images per Adam step", NULL, 0, RANGE(1, 60000)},
        {"lr", OPT_FLOAT, &o.lr, "classifier training: Adam learning rate", NULL, 0, RANGE_ABOVE(0, 1)},
        {"seed", OPT_INT, &o.seed, "classifier training: seed of the initialisation and the shuffles", NULL, 0,
         SEED_RANGE},
        {"classifier", OPT_STRING, &o.classifier, "scoring: the classifier file (from --train-classifier)", NULL, 0,
         NO_RANGE},
        {"samples", OPT_STRING, &o.samples,
         "scoring: samples with labels from dydit sample --latents (default: the held-out real test images)", NULL, 0,
         NO_RANGE},
        {"holdout", OPT_INT, &o.holdout,
         "scoring: test images [0, holdout) are the held-out real set, the rest the reference", NULL, 0,
         RANGE(2, COUNT_MAX)},
        {"fashion-mnist-dir", OPT_STRING, &o.data_dir, "the IDX files of Debian's dataset-fashion-mnist", NULL, 0,
         NO_RANGE},
        {"quiet", OPT_FLAG, &o.quiet, "no progress lines on stderr", NULL, 0, NO_RANGE},
    };
    OptionSet set = {"evaluate",
                     "FMNIST-FD: the Frechet distance between Gaussians fitted to a small Fashion-MNIST classifier's "
                     "penultimate features of a set of images and of real test images, and the classifier's accuracy "
                     "on the set's labels. Prints one JSON line. Not FID: its values compare only with each other.",
                     "dydit evaluate --train-classifier --out C.safetensors\n"
                     "       dydit evaluate --classifier C.safetensors [--samples S.safetensors] [--holdout 1000]",
                     options, (int)(sizeof(options) / sizeof(options[0]))};
    options_parse(&set, argc, argv);
    options_require_utf8(&set); // the paths are printed in the JSON report
    if (o.train) {
        if (!o.out) die("--train-classifier needs --out (where to write the classifier)");
        if (o.classifier || o.samples) die("--train-classifier does not score: drop --classifier and --samples");
        train_classifier(&o);
        return 0;
    }
    if (!o.classifier) die("give --train-classifier --out C.safetensors, or --classifier C.safetensors to score");
    score(&o);
    return 0;
}
