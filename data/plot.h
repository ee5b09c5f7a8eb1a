// data/plot.h: a small raster line plot (RGB8) that people can read: a title, axes with tick marks
// at round values and their numbers, axis labels, grid lines, one curve per series in its own
// colour, an optional dashed reference line, and a legend naming every curve and the line.
// Training curves (dydit plot) and the realised GMACs of sampling (dydit sample --save-masks).
#pragma once
#include <stdint.h>

typedef struct {
    int width, height;
    uint8_t *rgb; // (height, width, 3)
} Canvas;

// A white canvas.
Canvas canvas_new(int width, int height);
void canvas_free(Canvas *c);

// Text in black with data/font.h's glyphs, each font pixel a scale x scale square; (x, y) is the
// top left corner. Pixels outside the canvas are dropped.
void canvas_text(Canvas *c, int x, int y, const char *s, int scale);

enum { PLOT_MAX_SERIES = 8 };
// The colour of series i (distinct for i < PLOT_MAX_SERIES).
extern const uint8_t plot_palette[PLOT_MAX_SERIES][3];

typedef struct {
    const double *x, *y;
    int n;
    const char *label; // the legend's name for the curve
} PlotSeries;

typedef struct {
    const char *title, *x_label, *y_label;
    const PlotSeries *series; // at most PLOT_MAX_SERIES, each with n >= 1
    int series_count;
    double reference;            // a dashed horizontal line; NaN: none
    const char *reference_label; // its legend entry
} PlotSpec;

// Draws the plot over the whole canvas. The y range covers 0, the reference and every value,
// widened to whole tick steps; the x range covers every x, widened likewise.
void plot_draw(Canvas *c, const PlotSpec *p);
