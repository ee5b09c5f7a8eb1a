#include "data/plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "data/font.h"

// Blue, orange, green, red, purple, brown, pink, teal: far apart from each other and from the
// greys of the grid and the reference line.
const uint8_t plot_palette[PLOT_MAX_SERIES][3] = {
    {31, 90, 200},  {230, 120, 20}, {40, 160, 60},  {200, 40, 40},
    {140, 80, 180}, {140, 90, 50},  {220, 90, 170}, {20, 150, 160},
};
static const uint8_t black[3] = {0, 0, 0}, grid_grey[3] = {228, 228, 228}, reference_grey[3] = {130, 130, 130};

enum {
    MARGIN = 8,
    TITLE_SCALE = 2,
    TICK = 4,         // tick mark length
    LINE_HEIGHT = 12, // of one legend row
    SWATCH = 18,      // legend line length
    LEGEND_GAP = 16,  // between legend entries
    TARGET_TICKS = 6, // about this many ticks per axis
};

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

// A 2-pixel-thick line, so that curves stand out from the 1-pixel grid and axes.
static void thick_line(Canvas *c, int x0, int y0, int x1, int y1, const uint8_t color[3]) {
    line(c, x0, y0, x1, y1, color, 0);
    line(c, x0, y0 + 1, x1, y1 + 1, color, 0);
}

// Text from (x, y); `upward` turns it a quarter counter-clockwise, reading bottom to top from y.
static void draw_text(Canvas *c, int x, int y, const char *s, int scale, int upward) {
    for (int i = 0; s[i]; i++)
        for (int row = 0; row < FONT_HEIGHT; row++)
            for (int col = 0; col < FONT_WIDTH; col++) {
                if (!font_pixel(s[i], col, row)) continue;
                int along = (i * FONT_ADVANCE + col) * scale, across = row * scale;
                for (int a = 0; a < scale; a++)
                    for (int b = 0; b < scale; b++)
                        if (upward)
                            put(c, x + across + b, y - along - a, black);
                        else
                            put(c, x + along + a, y + across + b, black);
            }
}

void canvas_text(Canvas *c, int x, int y, const char *s, int scale) { draw_text(c, x, y, s, scale, 0); }

// An axis range widened to whole multiples of a round step (1, 2 or 5 times a power of ten).
typedef struct {
    double lo, hi, step;
    int ticks;
} Axis;

static Axis nice_axis(double lo, double hi) {
    if (hi <= lo) hi = lo + (lo ? fabs(lo) : 1);
    double raw = (hi - lo) / (TARGET_TICKS - 1), magnitude = pow(10, floor(log10(raw))), f = raw / magnitude;
    Axis a = {.step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * magnitude};
    // The slack keeps values a rounding error past a multiple from adding a whole step.
    a.lo = floor(lo / a.step + 1e-9) * a.step;
    a.hi = ceil(hi / a.step - 1e-9) * a.step;
    a.ticks = (int)lround((a.hi - a.lo) / a.step) + 1;
    return a;
}

static double tick_value(const Axis *a, int i) {
    double v = a->lo + i * a->step;
    return fabs(v) < a->step * 1e-6 ? 0 : v; // no "-0" from rounding
}

// As many decimals as the step needs, so 0.1 + 0.2 prints as 0.3; huge values in exponent form.
static void tick_label(const Axis *a, int i, char *out, size_t size) {
    double v = tick_value(a, i);
    int decimals = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
    if (fabs(v) >= 1e6 || decimals > 6)
        snprintf(out, size, "%.3g", v);
    else
        snprintf(out, size, "%.*f", decimals, v);
}

// Where the data area lies on the canvas, and the value ranges it shows.
typedef struct {
    int left, right, top, bottom;
    Axis x, y;
} Frame;

static int px(const Frame *f, double v) {
    return f->left + (int)lround((v - f->x.lo) / (f->x.hi - f->x.lo) * (f->right - f->left));
}
static int py(const Frame *f, double v) {
    return f->bottom - (int)lround((v - f->y.lo) / (f->y.hi - f->y.lo) * (f->bottom - f->top));
}

static const char *legend_label(const PlotSpec *p, int entry) {
    return entry < p->series_count ? p->series[entry].label : p->reference_label;
}

// Lays out (draw = 0) or draws the legend's entries in rows from (x0, y0) within `width` pixels;
// returns the number of rows.
static int legend(Canvas *c, const PlotSpec *p, int x0, int y0, int width, int draw) {
    int entries = p->series_count + !isnan(p->reference), x = x0, rows = 1;
    for (int e = 0; e < entries; e++) {
        int w = SWATCH + 4 + font_text_width(legend_label(p, e), 1);
        if (x > x0 && x + w > x0 + width) x = x0, rows++;
        int y = y0 + (rows - 1) * LINE_HEIGHT, mid = y + 3;
        if (draw && e < p->series_count)
            thick_line(c, x, mid, x + SWATCH - 1, mid, plot_palette[e]);
        else if (draw)
            line(c, x, mid, x + SWATCH - 1, mid, reference_grey, 3);
        if (draw) draw_text(c, x + SWATCH + 4, y, legend_label(p, e), 1, 0);
        x += w + LEGEND_GAP;
    }
    return rows;
}

static Frame frame_of(const Canvas *c, const PlotSpec *p) {
    Frame f;
    double xlo = p->series[0].x[0], xhi = xlo, ylo = 0, yhi = 0;
    for (int s = 0; s < p->series_count; s++)
        for (int i = 0; i < p->series[s].n; i++) {
            xlo = fmin(xlo, p->series[s].x[i]), xhi = fmax(xhi, p->series[s].x[i]);
            ylo = fmin(ylo, p->series[s].y[i]), yhi = fmax(yhi, p->series[s].y[i]);
        }
    if (!isnan(p->reference)) ylo = fmin(ylo, p->reference), yhi = fmax(yhi, p->reference);
    f.x = nice_axis(xlo, xhi);
    f.y = nice_axis(ylo, yhi);
    int widest = 0;
    char label[32];
    for (int i = 0; i < f.y.ticks; i++) {
        tick_label(&f.y, i, label, sizeof(label));
        widest = widest > font_text_width(label, 1) ? widest : font_text_width(label, 1);
    }
    // Left to right: the upright y label, a gap, the tick values, the tick marks.
    f.left = MARGIN + FONT_HEIGHT + 6 + widest + 3 + TICK;
    f.right = c->width - 2 * MARGIN;
    f.top = MARGIN + FONT_HEIGHT * TITLE_SCALE + 10;
    // Below the axis: tick marks and values, the x label, then the legend rows.
    int rows = legend(NULL, p, f.left, 0, f.right - f.left, 0);
    f.bottom = c->height - MARGIN - rows * LINE_HEIGHT - 2 * FONT_HEIGHT - TICK - 14;
    return f;
}

static void draw_axes(Canvas *c, const Frame *f) {
    char label[32];
    for (int i = 0; i < f->x.ticks; i++) {
        int x = px(f, tick_value(&f->x, i));
        line(c, x, f->top, x, f->bottom, grid_grey, 0);
        line(c, x, f->bottom, x, f->bottom + TICK, black, 0);
        tick_label(&f->x, i, label, sizeof(label));
        draw_text(c, x - font_text_width(label, 1) / 2, f->bottom + TICK + 3, label, 1, 0);
    }
    for (int i = 0; i < f->y.ticks; i++) {
        int y = py(f, tick_value(&f->y, i));
        line(c, f->left, y, f->right, y, grid_grey, 0);
        line(c, f->left - TICK, y, f->left, y, black, 0);
        tick_label(&f->y, i, label, sizeof(label));
        draw_text(c, f->left - TICK - 3 - font_text_width(label, 1), y - FONT_HEIGHT / 2 + 1, label, 1, 0);
    }
    line(c, f->left, f->top, f->left, f->bottom, black, 0);
    line(c, f->left, f->bottom, f->right, f->bottom, black, 0);
}

void plot_draw(Canvas *c, const PlotSpec *p) {
    Frame f = frame_of(c, p);
    draw_axes(c, &f);
    if (!isnan(p->reference)) line(c, f.left, py(&f, p->reference), f.right, py(&f, p->reference), reference_grey, 6);
    for (int s = 0; s < p->series_count; s++) {
        const PlotSeries *r = &p->series[s];
        for (int i = 1; i < r->n; i++)
            thick_line(c, px(&f, r->x[i - 1]), py(&f, r->y[i - 1]), px(&f, r->x[i]), py(&f, r->y[i]), plot_palette[s]);
    }
    int title_scale = font_text_width(p->title, TITLE_SCALE) <= c->width - 2 * MARGIN ? TITLE_SCALE : 1;
    draw_text(c, (c->width - font_text_width(p->title, title_scale)) / 2, MARGIN, p->title, title_scale, 0);
    draw_text(c, (f.left + f.right - font_text_width(p->x_label, 1)) / 2, f.bottom + TICK + 3 + FONT_HEIGHT + 4,
              p->x_label, 1, 0);
    draw_text(c, MARGIN, (f.top + f.bottom + font_text_width(p->y_label, 1)) / 2, p->y_label, 1, 1);
    legend(c, p, f.left, f.bottom + TICK + 3 + 2 * FONT_HEIGHT + 10, f.right - f.left, 1);
}
