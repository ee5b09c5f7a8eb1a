// data/idx.h: IDX files (the MNIST family's format, docs/algorithm.md 10) and the Fashion-MNIST data set.
//
// An IDX file is a big-endian int32 magic 0x000008DD (0x08: unsigned bytes, DD: the number of
// dims), DD big-endian int32 dims, then the row-major bytes. Files may be gzip-compressed (zlib
// reads plain files too). Reading checks the magic, the dims and the exact data size; errors are
// one line "PATH: problem".
#pragma once
#include <stdint.h>

enum { IDX_MAX_DIMS = 4 };

typedef struct {
    int ndim;
    int64_t dims[IDX_MAX_DIMS];
    uint8_t *data; // prod(dims) bytes, row-major
} IdxArray;

// Reads an unsigned-byte IDX file that must have want_ndim dims. 0, or -1 with err.
int idx_read(const char *path, int want_ndim, IdxArray *out, char *err, int err_size);
void idx_free(IdxArray *a);

// Default location of the Debian package dataset-fashion-mnist.
#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"
enum { FASHION_MNIST_CLASSES = 10 };
// "T-shirt/top", "Trouser", ..., "Ankle boot" (docs/algorithm.md 10), indexed by label.
extern const char *const fashion_mnist_class_names[FASHION_MNIST_CLASSES];

typedef struct {
    int64_t count; // N
    int rows, cols;
    uint8_t *images; // (N, rows, cols), 0 = background
    uint8_t *labels; // (N), each < FASHION_MNIST_CLASSES
} FashionMnist;

// split "train" (60000 images) or "test" (10000, the t10k files) from DIR/{train,t10k}-{images-idx3,
// labels-idx1}-ubyte.gz. A missing file says which package to install. 0, or -1 with err.
int fashion_mnist_load(const char *dir, const char *split, FashionMnist *out, char *err, int err_size);
void fashion_mnist_free(FashionMnist *f);
