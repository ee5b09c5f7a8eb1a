#include "data/image_source.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "data/center_crop.h"
#include "data/image.h"
#include "data/json.h"

// v / 127.5 - 1 computed in double and rounded once, for every byte value.
static float pixel_value(int v) { return (float)(v / 127.5 - 1.0); }

int image_source_fashion_mnist(ImageSource *s, const char *dir, const char *split, int size, char *err, int err_size) {
    memset(s, 0, sizeof(*s));
    if (fashion_mnist_load(dir, split, &s->mnist, err, err_size)) return -1;
    if (size < s->mnist.rows || size < s->mnist.cols) {
        snprintf(err, (size_t)err_size, "--image-size %d is smaller than the %dx%d Fashion-MNIST images", size,
                 s->mnist.rows, s->mnist.cols);
        fashion_mnist_free(&s->mnist);
        return -1;
    }
    s->name = xasprintf("fashion-mnist/%s", split);
    s->count = s->mnist.count;
    s->channels = 1;
    s->size = size;
    s->num_classes = FASHION_MNIST_CLASSES;
    s->classes = fashion_mnist_class_names;
    return 0;
}

int image_source_folder(ImageSource *s, const char *root, int size, int grayscale, char *err, int err_size) {
    memset(s, 0, sizeof(*s));
    if (image_folder_scan(root, &s->folder, err, err_size)) return -1;
    // names go into JSON metadata, which must be UTF-8; the canonical path makes re-runs that spell
    // the folder differently (a trailing slash, a relative path) resume the same set
    char *canonical = realpath(root, NULL);
    s->name = xasprintf("folder:%s", canonical ? canonical : root);
    free(canonical);
    int rc = json_utf8_valid(s->name, strlen(s->name)) ? 0 : fail_at(err, err_size, root, "path is not UTF-8");
    for (int k = 0; k < s->folder.num_classes && rc == 0; k++)
        if (!json_utf8_valid(s->folder.classes[k], strlen(s->folder.classes[k])))
            rc = fail_at(err, err_size, root, "class folder %d has a name that is not UTF-8", k);
    if (rc) {
        image_source_free(s);
        return -1;
    }
    s->count = s->folder.count;
    s->channels = grayscale ? 1 : 3;
    s->size = size;
    s->num_classes = s->folder.num_classes;
    s->classes = (const char *const *)s->folder.classes;
    s->ignored = s->folder.ignored;
    s->grayscale = grayscale;
    return 0;
}

void image_source_free(ImageSource *s) {
    fashion_mnist_free(&s->mnist);
    image_folder_free(&s->folder);
    free(s->name);
    memset(s, 0, sizeof(*s));
}

static void load_mnist(const ImageSource *s, int64_t i, float *image) {
    const FashionMnist *m = &s->mnist;
    const uint8_t *src = m->images + (size_t)i * m->rows * m->cols;
    int top = (s->size - m->rows) / 2, left = (s->size - m->cols) / 2;
    float background = pixel_value(0);
    for (int y = 0; y < s->size; y++)
        for (int x = 0; x < s->size; x++) {
            int sy = y - top, sx = x - left;
            int inside = sy >= 0 && sy < m->rows && sx >= 0 && sx < m->cols;
            image[(size_t)y * s->size + x] = inside ? pixel_value(src[sy * m->cols + sx]) : background;
        }
}

static int load_file(const ImageSource *s, int64_t i, float *image, ImageItem *item, char *err, int err_size) {
    Image im;
    if (image_load(s->folder.paths[i], &im, err, err_size)) return -1;
    item->width = im.width;
    item->height = im.height;
    item->upscaled = (im.width < im.height ? im.width : im.height) < s->size;
    size_t plane = (size_t)s->size * s->size;
    uint8_t *crop = xmalloc(plane * 3);
    int cropped = center_crop_adm(im.rgb, im.width, im.height, 3, s->size, crop) == 0;
    image_free(&im);
    if (!cropped) {
        free(crop);
        return fail_at(err, err_size, s->folder.paths[i], "out of memory cropping a %dx%d image", item->width,
                       item->height);
    }
    for (size_t p = 0; p < plane; p++) {
        const uint8_t *rgb = crop + 3 * p;
        if (s->grayscale) {
            image[p] = pixel_value((19595 * rgb[0] + 38470 * rgb[1] + 7471 * rgb[2] + (1 << 15)) >> 16);
        } else {
            for (int c = 0; c < 3; c++) image[c * plane + p] = pixel_value(rgb[c]); // HWC -> CHW
        }
    }
    free(crop);
    return 0;
}

int image_source_load(const ImageSource *s, int64_t i, float *image, ImageItem *item, char *err, int err_size) {
    memset(item, 0, sizeof(*item));
    if (i < 0 || i >= s->count) {
        snprintf(err, (size_t)err_size, "%s: no item %lld", s->name, (long long)i);
        return -1;
    }
    if (s->mnist.images) {
        load_mnist(s, i, image);
        item->label = s->mnist.labels[i];
        item->width = s->mnist.cols;
        item->height = s->mnist.rows;
        return 0;
    }
    item->label = s->folder.labels[i];
    return load_file(s, i, image, item, err, err_size);
}
