#include "data/center_crop.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

// Weights are fixed point with 22 fraction bits: 8-bit samples times weights whose absolute sum
// stays below 2 (bicubic's negative lobes) then fit in a 32-bit int with room for the rounding.
enum { WEIGHT_BITS = 22 };

// PIL's box is closed on the right: a sample exactly half a pixel right of the centre counts.
static double box_filter(double x) { return x > -0.5 && x <= 0.5 ? 1.0 : 0.0; }

// Keys' cubic convolution with a = -0.5 (PIL's BICUBIC).
static double bicubic_filter(double x) {
    const double a = -0.5;
    x = fabs(x);
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

typedef struct {
    int taps;      // weights per output sample (unused ones are zero)
    int *first;    // (out) first input sample
    int *count;    // (out) input samples used
    int32_t *coef; // (out, taps) fixed-point weights
} Weights;

// Weights of the output samples [first_out, first_out + count) of a resize from in_size to out_size
// samples: for each the filter is centred on its position in input coordinates; on a downscale its
// support widens by the scale so every input sample contributes. A sample's weights depend only on
// its position, so any window of the output can be computed without the rest.
static Weights make_weights(int in_size, int64_t out_size, int64_t first_out, int count, ResampleFilter filter) {
    double (*f)(double) = filter == RESAMPLE_BOX ? box_filter : bicubic_filter;
    double scale = (double)in_size / (double)out_size, widen = scale < 1.0 ? 1.0 : scale, inv_widen = 1.0 / widen;
    double support = (filter == RESAMPLE_BOX ? 0.5 : 2.0) * widen;
    Weights w;
    w.taps = (int)ceil(support) * 2 + 1;
    w.first = xmalloc(sizeof(int) * (size_t)count);
    w.count = xmalloc(sizeof(int) * (size_t)count);
    w.coef = xcalloc((size_t)count * (size_t)w.taps, sizeof(int32_t));
    double *k = xmalloc(sizeof(double) * (size_t)w.taps);
    for (int o = 0; o < count; o++) {
        double center = ((double)(first_out + o) + 0.5) * scale;
        int lo = (int)(center - support + 0.5), hi = (int)(center + support + 0.5); // truncation, as PIL
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        double total = 0.0; // times the reciprocal, not divided: at a box edge the last bit decides
        for (int i = 0; i < hi - lo; i++) total += k[i] = f((i + lo - center + 0.5) * inv_widen);
        for (int i = 0; i < hi - lo; i++) {
            double v = total != 0.0 ? k[i] / total : k[i];
            w.coef[(size_t)o * w.taps + i] =
                (int32_t)(v < 0 ? -0.5 + v * (1 << WEIGHT_BITS) : 0.5 + v * (1 << WEIGHT_BITS));
        }
        w.first[o] = lo;
        w.count[o] = hi - lo;
    }
    free(k);
    return w;
}

static void free_weights(Weights *w) {
    free(w->first);
    free(w->count);
    free(w->coef);
}

// Rounds a fixed-point sum to 0..255.
static uint8_t clamp_sample(int32_t sum) {
    if (sum < 0) return 0;
    sum >>= WEIGHT_BITS;
    return (uint8_t)(sum > 255 ? 255 : sum);
}

// in (h, w, c) -> out (h, out_w, c), all channels of a pixel at once (c <= 4)
static inline __attribute__((always_inline)) void rows_pass(const uint8_t *restrict in, int w, int h, int c,
                                                            uint8_t *restrict out, int out_w, const Weights *wt) {
    for (int y = 0; y < h; y++) {
        const uint8_t *row = in + (size_t)y * w * c;
        uint8_t *dst = out + (size_t)y * out_w * c;
        for (int x = 0; x < out_w; x++) {
            const int32_t *restrict k = wt->coef + (size_t)x * wt->taps;
            const uint8_t *restrict src = row + (size_t)wt->first[x] * c;
            const int n = wt->count[x];
            int32_t sum[4] = {1 << (WEIGHT_BITS - 1), 1 << (WEIGHT_BITS - 1), 1 << (WEIGHT_BITS - 1),
                              1 << (WEIGHT_BITS - 1)};
            for (int i = 0; i < n; i++)
                for (int ch = 0; ch < c; ch++) sum[ch] += src[i * c + ch] * k[i];
            for (int ch = 0; ch < c; ch++) dst[(size_t)x * c + ch] = clamp_sample(sum[ch]);
        }
    }
}

// The usual channel counts get their own compiled loops: with c known the channel loop unrolls.
static void resample_rows(const uint8_t *in, int w, int h, int c, uint8_t *out, int out_w, const Weights *wt) {
    if (c == 3)
        rows_pass(in, w, h, 3, out, out_w, wt);
    else if (c == 1)
        rows_pass(in, w, h, 1, out, out_w, wt);
    else
        rows_pass(in, w, h, c, out, out_w, wt);
}

// in (rows of w * c bytes, in_stride bytes apart) -> out (out_h, w, c), accumulating whole input rows
// so the inner loop is contiguous
static void resample_columns(const uint8_t *restrict in, size_t in_stride, int w, int c, uint8_t *restrict out,
                             int out_h, const Weights *wt) {
    size_t stride = (size_t)w * c;
    int32_t *restrict sum = xmalloc(stride * sizeof(int32_t));
    for (int y = 0; y < out_h; y++) {
        for (size_t e = 0; e < stride; e++) sum[e] = 1 << (WEIGHT_BITS - 1);
        for (int i = 0; i < wt->count[y]; i++) {
            const uint8_t *restrict src = in + (size_t)(wt->first[y] + i) * in_stride;
            const int32_t k = wt->coef[(size_t)y * wt->taps + i];
            for (size_t e = 0; e < stride; e++) sum[e] += src[e] * k;
        }
        for (size_t e = 0; e < stride; e++) out[(size_t)y * stride + e] = clamp_sample(sum[e]);
    }
    free(sum);
}

// The input rows [*lo, *hi) that the weights read; their first samples become relative to *lo.
static void rows_read(Weights *wt, int count, int *lo, int *hi) {
    *lo = wt->first[0], *hi = wt->first[0] + wt->count[0];
    for (int o = 1; o < count; o++) {
        if (wt->first[o] < *lo) *lo = wt->first[o];
        if (wt->first[o] + wt->count[o] > *hi) *hi = wt->first[o] + wt->count[o];
    }
    for (int o = 0; o < count; o++) wt->first[o] -= *lo;
}

// out (win_h, win_w, c): the window at (left, top) of in (h, w, c) resized to (out_w, out_h), pixel
// for pixel what the whole resize would hold there. Only the input rows the window reads are
// resampled, so the work and memory follow the window and the input, never the whole output.
// 0, or -1 when the horizontal pass's intermediate (up to the input's size) cannot be allocated.
static int resample_window(const uint8_t *in, int w, int h, int c, int64_t out_w, int64_t out_h, int64_t left,
                           int64_t top, int win_w, int win_h, ResampleFilter filter, uint8_t *out) {
    Weights vertical = {0};
    int row_lo = (int)top, row_hi = (int)top + win_h; // the height stays: the window's own rows
    if (out_h != h) {
        vertical = make_weights(h, out_h, top, win_h, filter);
        rows_read(&vertical, win_h, &row_lo, &row_hi);
    }
    // horizontal first through an 8-bit intermediate, as PIL does: the rounding in between is part
    // of the result
    size_t in_stride = (size_t)w * c, stride = in_stride;
    const uint8_t *rows;
    uint8_t *tmp = NULL;
    if (out_w != w) {
        rows = tmp = malloc((size_t)(row_hi - row_lo) * win_w * c);
        if (!tmp) {
            free_weights(&vertical);
            return -1;
        }
        Weights horizontal = make_weights(w, out_w, left, win_w, filter);
        resample_rows(in + (size_t)row_lo * in_stride, w, row_hi - row_lo, c, tmp, win_w, &horizontal);
        free_weights(&horizontal);
        stride = (size_t)win_w * c;
    } else { // the width stays: the window's own columns
        rows = in + (size_t)row_lo * in_stride + (size_t)left * c;
    }
    if (out_h != h) {
        resample_columns(rows, stride, win_w, c, out, win_h, &vertical);
        free_weights(&vertical);
    } else {
        for (int y = 0; y < win_h; y++) memcpy(out + (size_t)y * win_w * c, rows + y * stride, (size_t)win_w * c);
    }
    free(tmp);
    return 0;
}

int image_resample(const uint8_t *in, int w, int h, int c, uint8_t *out, int out_w, int out_h, ResampleFilter filter) {
    return resample_window(in, w, h, c, out_w, out_h, 0, 0, out_w, out_h, filter, out);
}

int center_crop_adm(const uint8_t *in, int w, int h, int c, int size, uint8_t *out) {
    uint8_t *cur = NULL; // the current image when it is no longer `in`
    const uint8_t *src = in;
    while ((w < h ? w : h) >= 2 * size) {
        uint8_t *half = malloc((size_t)(w / 2) * (h / 2) * c);
        if (!half || image_resample(src, w, h, c, half, w / 2, h / 2, RESAMPLE_BOX)) {
            free(half);
            free(cur);
            return -1;
        }
        free(cur);
        src = cur = half;
        w /= 2, h /= 2;
    }
    // the resized long side can reach billions of pixels (a 1 x 100000 image to 256 rows): only the
    // centred window is computed
    double scale = (double)size / (w < h ? w : h);
    int64_t rw = (int64_t)nearbyint(w * scale), rh = (int64_t)nearbyint(h * scale); // ties to even, as Python's round
    int rc = resample_window(src, w, h, c, rw, rh, (rw - size) / 2, (rh - size) / 2, size, size, RESAMPLE_BICUBIC, out);
    free(cur);
    return rc;
}
