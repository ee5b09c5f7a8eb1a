// data/image_source.h: the images `dydit encode` reads, as numbered items.
//
// Fashion-MNIST: the 28x28 images centred on a size x size canvas of background (pixel 0), class
// names from docs/algorithm.md 10. Folder: an ImageNet-style tree (data/image_folder.h), each file decoded to
// RGB (data/image.h) and ADM-center-cropped to size x size (data/center_crop.h), optionally
// turned into luma (ITU-R 601: (19595 R + 38470 G + 7471 B + 2^15) >> 16). Pixels v become
// v / 127.5 - 1, in [-1, 1].
#pragma once
#include <stdint.h>

#include "data/idx.h"
#include "data/image_folder.h"

// What an item holds besides its pixels.
typedef struct {
    int32_t label;
    int upscaled;      // folder: the image's short side is below size, so the crop enlarges it
    int width, height; // of the image before it was cropped or padded
} ImageItem;

typedef struct {
    char *name; // recorded as a shard's source: "fashion-mnist/train", "folder:/data/train"
    int64_t count;
    int channels; // of the images loaded: 1 (Fashion-MNIST, --grayscale) or 3
    int size;
    int num_classes;
    const char *const *classes; // (num_classes)
    int64_t ignored;            // folder files left out because they are not images
    // the data behind it; one of them is used
    FashionMnist mnist;
    ImageFolder folder;
    int grayscale;
} ImageSource;

// 0, or -1 with a one-line err.
int image_source_fashion_mnist(ImageSource *s, const char *dir, const char *split, int size, char *err, int err_size);
int image_source_folder(ImageSource *s, const char *root, int size, int grayscale, char *err, int err_size);
void image_source_free(ImageSource *s);

// Item i as image (channels, size, size) in [-1, 1], its label and original size. Safe to call from
// several threads. 0, or -1 with "PATH: problem" for an unreadable or corrupt file.
int image_source_load(const ImageSource *s, int64_t i, float *image, ImageItem *item, char *err, int err_size);
