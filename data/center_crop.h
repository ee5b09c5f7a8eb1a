// data/center_crop.h: ADM's center crop (docs/algorithm.md 8.6), the preprocessing DiT trains on, and the
// PIL-style resampling it is made of.
//
// The resampler follows PIL's algorithm for 8-bit images so crops match the reference pipeline:
// separable passes (horizontal first, with an 8-bit intermediate), filter support widened by the
// downscale factor, per-pixel weights normalised in double and rounded to 22-bit fixed point, the
// sum rounded and clamped to 0..255. Images are interleaved (height, width, channels) bytes, 1 to 4
// channels.
#pragma once
#include <stdint.h>

typedef enum { RESAMPLE_BOX, RESAMPLE_BICUBIC } ResampleFilter;

// in (h, w, c) -> out (out_h, out_w, c); like PIL's Image.resize((out_w, out_h), filter). 0, or -1
// when the intermediate of its horizontal pass (out_w x h) cannot be allocated.
int image_resample(const uint8_t *in, int w, int h, int c, uint8_t *out, int out_w, int out_h, ResampleFilter filter);

// ADM center crop of in (h, w, c) to out (size, size, c): while the short side is at least
// 2 * size, halve both sides (w // 2, h // 2) with BOX; then BICUBIC to the short side `size` (the
// long side round(long * size / short), Python's round); then the centred size x size window.
// Only that window is resampled: memory and work follow the input and `size`, not the resized long
// side (a 1 x 100000 image would otherwise become 64 x 6400000 on the way to a 64 x 64 crop).
// 0, or -1 when the memory of a halving step, which grows with the image, cannot be had: the
// caller then fails that image alone.
int center_crop_adm(const uint8_t *in, int w, int h, int c, int size, uint8_t *out);
