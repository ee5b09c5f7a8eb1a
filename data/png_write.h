// data/png_write.h: 8-bit PNG files and image grids, for decoded and sampled images.
//
// Images come as uint8 NHWC (channels interleaved, rows top to bottom), the layout of the .npz
// sample batches; images_to_u8 makes them from a decoder's float output. Errors are one line
// "PATH: problem" in err.
#pragma once
#include <stdint.h>

// nhwc (B, H, W, C) = clamp(127.5 x + 128, 0, 255) truncated, of nchw (B, C, H, W): DiT's
// conversion of samples in [-1, 1] (docs/algorithm.md 2.8); torchvision's save_image computes the same bytes.
void images_to_u8(uint8_t *nhwc, const float *nchw, int B, int C, int H, int W);

// Writes one image of height x width pixels with 1 (gray), 3 (RGB) or 4 (RGBA) channels.
int png_write(const char *path, const uint8_t *pixels, int width, int height, int channels, char *err, int err_size);

// The size in pixels of that grid; -1 when it is not a valid layout or has a side over
// PNG_GRID_MAX_SIDE pixels (the whole grid is assembled in memory).
#define PNG_GRID_MAX_SIDE 32768
int png_grid_size(int B, int H, int W, int per_row, int padding, int *width, int *height);
// Writes B images (B, H, W, C) as one grid of `per_row` columns, `padding` black pixels around and
// between the images, like torchvision's make_grid.
int png_write_grid(const char *path, const uint8_t *nhwc, int B, int H, int W, int C, int per_row, int padding,
                   char *err, int err_size);
