#include "eval/classifier_inputs.h"

#include "common/util.h"
#include "data/png_write.h"
#include "data/safetensors.h"
#include "model/classifier.h"

enum { SIDE = 28, PADDED = 32, BORDER = (PADDED - SIDE) / 2 };

static float pixel(uint8_t v) { return (float)(v / 127.5 - 1.0); }

float *classifier_inputs_from_idx(const FashionMnist *m, int64_t first, int64_t count) {
    if (m->rows != SIDE || m->cols != SIDE) die("Fashion-MNIST images of %dx%d pixels, want 28x28", m->rows, m->cols);
    if (first < 0 || count < 0 || first + count > m->count)
        die("images [%lld, %lld) of a split of %lld", (long long)first, (long long)(first + count),
            (long long)m->count);
    float *x = xmalloc(sizeof(float) * (size_t)count * CLASSIFIER_INPUT);
    for (size_t i = 0; i < (size_t)count * CLASSIFIER_INPUT; i++)
        x[i] = pixel(m->images[(size_t)first * CLASSIFIER_INPUT + i]);
    return x;
}

float *classifier_inputs_from_samples(const char *path, int64_t *count, int32_t **labels, char *err, int err_size) {
    StFile *f = st_open(path, err, err_size);
    if (!f) return NULL;
    const StTensor *lat = st_find(f, "latents"), *lab = st_find(f, "labels");
    if (!lat || lat->ndim != 4 || lat->shape[1] != 1 || lat->shape[2] != PADDED || lat->shape[3] != PADDED || !lab ||
        lab->ndim != 1 || lab->shape[0] != lat->shape[0]) {
        st_close(f);
        fail_at(err, err_size, path,
                "want tensors latents (N, 1, 32, 32) and labels (N) (dydit sample --latents of a "
                "Fashion-MNIST model)");
        return NULL;
    }
    int64_t n = lat->shape[0];
    float *latents = xmalloc(sizeof(float) * (size_t)n * PADDED * PADDED);
    int64_t *wide = xmalloc(sizeof(int64_t) * (size_t)n);
    if (st_read_f32(f, lat, latents, err, err_size) || st_read_i64(f, lab, wide, err, err_size)) {
        free(latents);
        free(wide);
        st_close(f);
        return NULL;
    }
    st_close(f);
    int64_t bad = first_nonfinite_record(latents, n, PADDED * PADDED);
    if (bad >= 0) {
        free(latents);
        free(wide);
        fail_at(err, err_size, path, "sample %lld holds a non-finite value", (long long)bad);
        return NULL;
    }
    uint8_t *bytes = xmalloc((size_t)n * PADDED * PADDED);
    images_to_u8(bytes, latents, (int)n, 1, PADDED, PADDED);
    float *x = xmalloc(sizeof(float) * (size_t)n * CLASSIFIER_INPUT);
    *labels = xmalloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        (*labels)[i] = (int32_t)wide[i];
        for (int r = 0; r < SIDE; r++)
            for (int c = 0; c < SIDE; c++)
                x[(size_t)i * CLASSIFIER_INPUT + r * SIDE + c] =
                    pixel(bytes[(size_t)i * PADDED * PADDED + (r + BORDER) * PADDED + c + BORDER]);
    }
    free(bytes);
    free(latents);
    free(wide);
    *count = n;
    return x;
}
