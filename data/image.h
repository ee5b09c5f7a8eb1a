// data/image.h: JPEG and PNG files decoded to 8-bit RGB, the way an ImageFolder pipeline's
// convert("RGB") sees them.
//
// The format is taken from the file's first bytes, not its name (ImageNet holds PNG and CMYK data
// named .JPEG). JPEG (libjpeg): RGB/YCbCr, grayscale (replicated to three channels) and CMYK/YCCK
// (Adobe files store CMYK inverted; R = (255 - C)(255 - K) / 255 rounded, likewise G, B); data
// that ends early is an error, not a grey bottom. PNG (libpng): gray, gray+alpha, palette, RGB,
// RGBA, any bit depth; 16-bit samples keep their high byte; alpha is dropped, not composited;
// gamma and colour profiles are ignored. Errors are one line "PATH: problem".
#pragma once
#include <stddef.h>
#include <stdint.h>

// Decoding refuses larger images (their RGB buffer alone would pass 400 MB).
#define IMAGE_MAX_PIXELS (1ll << 27)

typedef struct {
    int width, height;
    uint8_t *rgb; // (height, width, 3)
} Image;

int image_decode(const uint8_t *data, size_t size, const char *name, Image *out, char *err, int err_size);
// Reads the whole file, then image_decode.
int image_load(const char *path, Image *out, char *err, int err_size);
void image_free(Image *im);
