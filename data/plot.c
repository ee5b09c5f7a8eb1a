#include "data/plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

Canvas canvas_new(int width, int height) {
    Canvas c = {width, height, xmalloc((size_t)width * height * 3)};
    memset(c.rgb, 255, (size_t)width * height * 3);
    return c;
}

void canvas_free(Canvas *c) {
    free(c->rgb);
    c->rgb = NULL;
}

static void put(Canvas *c, int x, int y, const uint8_t color[3]) {
    if (x < 0 || y < 0 || x >= c->width || y >= c->height) return;
    memcpy(c->rgb + ((size_t)y * c->width + x) * 3, color, 3);
}

// Bresenham; a dash length > 0 leaves every other run of `dash` pixels blank.
static void line(Canvas *c, int x0, int y0, int x1, int y1, const uint8_t color[3], int dash) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (int i = 0;; i++) {
        if (!dash || (i / dash) % 2 == 0) put(c, x0, y0, color);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * err;
        if (e2 >= dy) err += dy, x0 += sx;
        if (e2 <= dx) err += dx, y0 += sy;
    }
}

// 3x5 glyphs for the characters tick labels need, one row of 3 bits per line.
static const char glyph_chars[] = "0123456789.-e";
static const uint8_t glyphs[][5] = {
    {7, 5, 5, 5, 7}, {2, 6, 2, 2, 7}, {7, 1, 7, 4, 7}, {7, 1, 7, 1, 7}, {5, 5, 7, 1, 1},
    {7, 4, 7, 1, 7}, {7, 4, 7, 5, 7}, {7, 1, 1, 1, 1}, {7, 5, 7, 5, 7}, {7, 5, 7, 1, 7},
    {0, 0, 0, 0, 2}, {0, 0, 7, 0, 0}, {0, 7, 5, 6, 7},
};

// Text at (x, y) with each font pixel drawn as a scale x scale square.
static void text(Canvas *c, int x, int y, const char *s, int scale) {
    static const uint8_t black[3] = {0, 0, 0};
    for (; *s; s++, x += 4 * scale) {
        const char *at = strchr(glyph_chars, *s);
        if (!at) continue;
        const uint8_t *g = glyphs[at - glyph_chars];
        for (int row = 0; row < 5; row++)
            for (int col = 0; col < 3; col++)
                if (g[row] & (4 >> col))
                    for (int a = 0; a < scale; a++)
                        for (int b = 0; b < scale; b++) put(c, x + col * scale + a, y + row * scale + b, black);
    }
}

void plot_series(Canvas *c, const double *x, const double *y, int n, double reference) {
    static const uint8_t axis[3] = {0, 0, 0}, blue[3] = {31, 90, 200}, grey[3] = {150, 150, 150};
    int left = 60, right = c->width - 20, top = 20, bottom = c->height - 40;
    double xmin = x[0], xmax = x[0], ymax = isnan(reference) ? 0 : reference;
    for (int i = 0; i < n; i++) {
        xmin = fmin(xmin, x[i]);
        xmax = fmax(xmax, x[i]);
        ymax = fmax(ymax, y[i]);
    }
    if (xmax == xmin) xmax = xmin + 1;
    if (ymax <= 0) ymax = 1;
    ymax *= 1.05;
#define PX(v) (left + (int)lround(((v)-xmin) / (xmax - xmin) * (right - left)))
#define PY(v) (bottom - (int)lround((v) / ymax * (bottom - top)))
    line(c, left, top, left, bottom, axis, 0);
    line(c, left, bottom, right, bottom, axis, 0);
    if (!isnan(reference)) line(c, left, PY(reference), right, PY(reference), grey, 6);
    for (int i = 1; i < n; i++) line(c, PX(x[i - 1]), PY(y[i - 1]), PX(x[i]), PY(y[i]), blue, 0);
    char label[32];
    snprintf(label, sizeof(label), "%g", xmin);
    text(c, left, bottom + 8, label, 2);
    snprintf(label, sizeof(label), "%g", xmax);
    text(c, right - 8 * (int)strlen(label), bottom + 8, label, 2);
    snprintf(label, sizeof(label), "%.3g", ymax / 1.05);
    text(c, 4, PY(ymax / 1.05) - 5, label, 2);
    text(c, 4, bottom - 5, "0", 2);
#undef PX
#undef PY
}
