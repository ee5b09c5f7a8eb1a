// data/decode_pool.h: worker threads that load a list of image-source items ahead of one consumer,
// which takes them back in list order. Decoding (JPEG, resampling) is the CPU-heavy half of
// `dydit encode`; running it on a pool while the consumer encodes keeps an accelerator busy. At
// most `window` items are loaded ahead of the consumer, so memory stays bounded.
#pragma once
#include <stdint.h>

#include "data/image_source.h"

typedef struct DecodePool DecodePool;

// Starts `workers` threads on items[0..n) of src (items is copied).
DecodePool *decode_pool_start(const ImageSource *src, const int64_t *items, int64_t n, int workers, int window);
// The next item in list order, blocking until it is loaded: its image (channels, size, size),
// valid until the next call, label and original size; or -1 with the item's one-line error (the item is then
// consumed too). Calling it after all n items were taken is an error.
int decode_pool_next(DecodePool *p, const float **image, ImageItem *item, char *err, int err_size);
// Stops the workers (items not taken yet are dropped) and frees the pool.
void decode_pool_stop(DecodePool *p);
