#include "data/idx.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "common/util.h"

// Refuses absurd dims before allocating: the largest IDX data sets are a few hundred MB.
#define IDX_MAX_BYTES (1ull << 34)
#define IDX_FIRST_CHUNK (1ull << 24)

const char *const fashion_mnist_class_names[FASHION_MNIST_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

// Reads exactly n bytes; 0, or -1 with why pointing at a static or zlib-owned message.
static int gz_read_full(gzFile gz, void *buf, uint64_t n, uint64_t *got, const char **why) {
    char *p = buf;
    *got = 0;
    while (*got < n) {
        unsigned chunk = n - *got > (1u << 30) ? (1u << 30) : (unsigned)(n - *got);
        int r = gzread(gz, p + *got, chunk);
        if (r < 0) {
            int code;
            *why = gzerror(gz, &code);
            return -1;
        }
        if (r == 0) {
            *why = NULL; // end of data
            return -1;
        }
        *got += (uint64_t)r;
    }
    return 0;
}

int idx_read(const char *path, int want_ndim, IdxArray *out, char *err, int err_size) {
    memset(out, 0, sizeof(*out));
    gzFile gz = gzopen(path, "rb");
    if (!gz) return fail_at(err, err_size, path, "cannot open: %s", errno ? strerror(errno) : "out of memory");
    unsigned char head[4 + 4 * IDX_MAX_DIMS];
    uint64_t got, total = 1;
    const char *why = NULL;
    int rc = 0;
    if (gz_read_full(gz, head, 4, &got, &why)) {
        rc = fail_at(err, err_size, path, "%s while reading the IDX magic (%llu of 4 bytes)", why ? why : "end of data",
                     (unsigned long long)got);
        goto done;
    }
    uint32_t magic = (uint32_t)head[0] << 24 | (uint32_t)head[1] << 16 | (uint32_t)head[2] << 8 | head[3];
    if (head[0] || head[1] || head[2] != 0x08) {
        rc = fail_at(err, err_size, path, "magic 0x%08X is not an unsigned-byte IDX file (want 0x%08X)", magic,
                     0x800u | (unsigned)want_ndim);
        goto done;
    }
    if (head[3] != want_ndim) {
        rc = fail_at(err, err_size, path, "magic %u says %d dims, want %d (magic %u)", magic, head[3], want_ndim,
                     0x800u | (unsigned)want_ndim);
        goto done;
    }
    if (gz_read_full(gz, head + 4, 4 * (uint64_t)want_ndim, &got, &why)) {
        rc = fail_at(err, err_size, path, "%s while reading the dims", why ? why : "unexpected end of data");
        goto done;
    }
    out->ndim = want_ndim;
    for (int d = 0; d < want_ndim; d++) {
        const unsigned char *b = head + 4 + 4 * d;
        uint32_t dim = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
        if (dim == 0 || dim > INT32_MAX) {
            rc = fail_at(err, err_size, path, "dim %d is %u, want a positive int32", d, dim);
            goto done;
        }
        out->dims[d] = dim;
        total *= dim;
        if (total > IDX_MAX_BYTES) {
            rc = fail_at(err, err_size, path, "dims describe more than %llu bytes", IDX_MAX_BYTES);
            goto done;
        }
    }
    // the buffer grows with the data that arrives, so dims that promise more than the file holds
    // cost no more memory than the file's own data
    uint64_t have = 0, cap = total < IDX_FIRST_CHUNK ? total : IDX_FIRST_CHUNK;
    out->data = xmalloc((size_t)cap);
    while (have < total) {
        if (have == cap) {
            cap = 2 * cap < total ? 2 * cap : total;
            out->data = xrealloc(out->data, (size_t)cap);
        }
        if (gz_read_full(gz, out->data + have, cap - have, &got, &why)) {
            have += got;
            rc = why ? fail_at(err, err_size, path, "reading the data: %s", why)
                     : fail_at(err, err_size, path, "truncated: %llu of the %llu data bytes the dims promise",
                               (unsigned long long)have, (unsigned long long)total);
            goto done;
        }
        have = cap;
    }
    char extra;
    int r = gzread(gz, &extra, 1);
    if (r != 0)
        rc = r > 0 ? fail_at(err, err_size, path, "has bytes after the %llu data bytes the dims promise",
                             (unsigned long long)total)
                   : fail_at(err, err_size, path, "reading the data: %s", gzerror(gz, &r));
done:
    gzclose(gz);
    if (rc) idx_free(out);
    return rc;
}

void idx_free(IdxArray *a) {
    free(a->data);
    memset(a, 0, sizeof(*a));
}

int fashion_mnist_load(const char *dir, const char *split, FashionMnist *out, char *err, int err_size) {
    memset(out, 0, sizeof(*out));
    const char *prefix = !strcmp(split, "train") ? "train" : !strcmp(split, "test") ? "t10k" : NULL;
    if (!prefix) {
        snprintf(err, (size_t)err_size, "unknown Fashion-MNIST split '%s' (want train or test)", split);
        return -1;
    }
    char *images_path = xasprintf("%s/%s-images-idx3-ubyte.gz", dir, prefix);
    char *labels_path = xasprintf("%s/%s-labels-idx1-ubyte.gz", dir, prefix);
    IdxArray images = {0}, labels = {0};
    int rc = 0;
    for (int i = 0; i < 2 && rc == 0; i++) {
        const char *p = i ? labels_path : images_path;
        FILE *probe = fopen(p, "rb");
        if (!probe)
            rc = fail_at(err, err_size, p,
                         "cannot open: %s (install it with 'apt-get install dataset-fashion-mnist', "
                         "or point --fashion-mnist-dir at a copy)",
                         strerror(errno));
        else
            fclose(probe);
    }
    if (rc == 0) rc = idx_read(images_path, 3, &images, err, err_size);
    if (rc == 0) rc = idx_read(labels_path, 1, &labels, err, err_size);
    if (rc == 0 && labels.dims[0] != images.dims[0])
        rc = fail_at(err, err_size, labels_path, "holds %lld labels but %s holds %lld images",
                     (long long)labels.dims[0], images_path, (long long)images.dims[0]);
    for (int64_t i = 0; rc == 0 && i < labels.dims[0]; i++)
        if (labels.data[i] >= FASHION_MNIST_CLASSES)
            rc = fail_at(err, err_size, labels_path, "label %d of image %lld is not a class (0..%d)", labels.data[i],
                         (long long)i, FASHION_MNIST_CLASSES - 1);
    if (rc == 0) {
        out->count = images.dims[0];
        out->rows = (int)images.dims[1];
        out->cols = (int)images.dims[2];
        out->images = images.data;
        out->labels = labels.data;
    } else {
        idx_free(&images);
        idx_free(&labels);
    }
    free(images_path);
    free(labels_path);
    return rc;
}

void fashion_mnist_free(FashionMnist *f) {
    free(f->images);
    free(f->labels);
    memset(f, 0, sizeof(*f));
}
