// data/png_write.c: PNG files through libpng.
#include "data/png_write.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

// (B, C, H, W) -> (B, H, W, C)
void images_to_u8(uint8_t *nhwc, const float *nchw, int B, int C, int H, int W) {
    size_t plane = (size_t)H * W;
    for (int b = 0; b < B; b++)
        for (size_t p = 0; p < plane; p++)
            for (int c = 0; c < C; c++) {
                float v = 127.5f * nchw[((size_t)b * C + c) * plane + p] + 128.0f; // NaN becomes 0
                nhwc[((size_t)b * plane + p) * C + c] = (uint8_t)(v > 0.0f ? (v < 255.0f ? v : 255.0f) : 0.0f);
            }
}

// libpng reports errors by longjmp from this handler; the message goes into the caller's buffer.
typedef struct {
    jmp_buf jump;
    char message[256];
} PngFailure;

static void on_png_error(png_structp png, png_const_charp message) {
    PngFailure *failure = png_get_error_ptr(png);
    snprintf(failure->message, sizeof(failure->message), "%s", message);
    longjmp(failure->jump, 1);
}

static void on_png_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

int png_write(const char *path, const uint8_t *pixels, int width, int height, int channels, char *err, int err_size) {
    static const int color_types[5] = {-1, PNG_COLOR_TYPE_GRAY, -1, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    if (width < 1 || height < 1 || channels < 1 || channels > 4 || color_types[channels] < 0)
        return fail_at(err, err_size, path, "cannot write a %dx%d PNG with %d channels", width, height, channels);
    FILE *file = fopen(path, "wb");
    if (!file) return fail_at(err, err_size, path, "cannot create: %s", strerror(errno));
    PngFailure failure = {.message = "out of memory"};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &failure, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    // volatile: modified after setjmp and read after a longjmp back to it
    volatile int ok = 0;
    if (info && !setjmp(failure.jump)) {
        png_init_io(png, file);
        png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, color_types[channels], PNG_INTERLACE_NONE,
                     PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
        png_write_info(png, info);
        for (int y = 0; y < height; y++) png_write_row(png, pixels + (size_t)y * width * channels);
        png_write_end(png, info);
        ok = 1;
    }
    png_destroy_write_struct(&png, &info);
    if (fclose(file) && ok) {
        ok = 0;
        snprintf(failure.message, sizeof(failure.message), "%s", strerror(errno));
    }
    if (ok) return 0;
    remove(path);
    return fail_at(err, err_size, path, "cannot write the PNG: %s", failure.message);
}

int png_grid_size(int B, int H, int W, int per_row, int padding, int *width, int *height) {
    if (B < 1 || H < 1 || W < 1 || per_row < 1 || padding < 0) return -1;
    int cols = per_row < B ? per_row : B, rows = (B + cols - 1) / cols;
    int64_t w = (int64_t)cols * (W + padding) + padding, h = (int64_t)rows * (H + padding) + padding;
    if (w > PNG_GRID_MAX_SIDE || h > PNG_GRID_MAX_SIDE) return -1;
    *width = (int)w, *height = (int)h;
    return 0;
}

int png_write_grid(const char *path, const uint8_t *nhwc, int B, int H, int W, int C, int per_row, int padding,
                   char *err, int err_size) {
    int gw, gh;
    if (png_grid_size(B, H, W, per_row, padding, &gw, &gh))
        return fail_at(err, err_size, path, "cannot lay out %d images of %dx%d in rows of %d within %d pixels a side",
                       B, W, H, per_row, PNG_GRID_MAX_SIDE);
    int cols = per_row < B ? per_row : B;
    uint8_t *grid = xcalloc((size_t)gw * gh, (size_t)C);
    size_t row_bytes = (size_t)W * C;
    for (int b = 0; b < B; b++) {
        size_t x0 = (size_t)(b % cols) * (W + padding) + padding, y0 = (size_t)(b / cols) * (H + padding) + padding;
        for (int y = 0; y < H; y++)
            memcpy(grid + ((y0 + y) * gw + x0) * C, nhwc + ((size_t)b * H + y) * row_bytes, row_bytes);
    }
    int rc = png_write(path, grid, gw, gh, C, err, err_size);
    free(grid);
    return rc;
}
