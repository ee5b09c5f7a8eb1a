// data/plot.h: a minimal raster line plot (RGB8), enough to draw a curve against the x axis with a
// dashed reference line and numeric tick labels, e.g. realised GMACs per sampling timestep.
#pragma once
#include <stdint.h>

typedef struct {
    int width, height;
    uint8_t *rgb; // (height, width, 3)
} Canvas;

// A white canvas.
Canvas canvas_new(int width, int height);
void canvas_free(Canvas *c);

// Plots y[i] against x[i] (n points) in blue, with a dashed grey horizontal line at `reference`
// (NaN: none), axes, and tick labels at the ends of both ranges. The y range covers 0 and every
// value.
void plot_series(Canvas *c, const double *x, const double *y, int n, double reference);
