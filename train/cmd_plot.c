// train/cmd_plot.c: `dydit plot`, curves of JSON-lines training logs as one PNG: one panel per
// FILE:KEY[:REFERENCE] (the key's values against the log's "step"), stacked top to bottom, with
// data/plot.h's line plot; e.g. a DiT's loss, then a DyDiT fine-tune's loss and its realised FLOPs
// ratio against the target.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/output_files.h"
#include "common/util.h"
#include "data/json.h"
#include "data/plot.h"
#include "data/png_write.h"
#include "train/commands.h"
#include "train/options.h"

enum { PANEL_WIDTH = 640, PANEL_HEIGHT = 240, MAX_PANELS = 8 };

static int number(const JsonValue *v, double *out) {
    if (!v) return 0;
    if (v->type == JSON_INT)
        *out = (double)v->u.integer;
    else if (v->type == JSON_DOUBLE)
        *out = v->u.number;
    else
        return 0;
    return 1;
}

// Draws the values of `key` against "step" from every line of the log that has both.
static void draw_panel(Canvas *c, const char *path, const char *key, double reference) {
    FILE *f = fopen(path, "r");
    if (!f) die("%s: cannot open", path);
    int n = 0, cap = 256, line_no = 0;
    double *x = xmalloc(sizeof(double) * cap), *y = xmalloc(sizeof(double) * cap);
    char *line = NULL, err[256];
    size_t size = 0;
    ssize_t len;
    while ((len = getline(&line, &size, f)) > 0) {
        line_no++;
        if (len == 1 && line[0] == '\n') continue;
        JsonValue *root = json_parse(line, (size_t)len, err, sizeof(err));
        if (!root) die("%s: line %d: %s", path, line_no, err);
        double step, value;
        if (number(json_get(root, "step"), &step) && number(json_get(root, key), &value)) {
            if (n == cap) {
                cap *= 2;
                x = xrealloc(x, sizeof(double) * cap);
                y = xrealloc(y, sizeof(double) * cap);
            }
            x[n] = step;
            y[n++] = value;
        }
        json_free(root);
    }
    free(line);
    fclose(f);
    if (n < 2) die("%s: fewer than 2 lines with \"step\" and \"%s\"", path, key);
    plot_series(c, x, y, n, reference);
    free(x);
    free(y);
}

int cmd_plot(int argc, char **argv) {
    const char *panels = NULL, *out = NULL;
    Option options[] = {
        {"panels", OPT_STRING, &panels,
         "comma-separated FILE:KEY[:REFERENCE], one panel each (REFERENCE: a dashed horizontal line)", NULL, 0},
        {"out", OPT_STRING, &out, "the PNG to write", NULL, 0},
    };
    OptionSet set = {"plot", "Plots keys of JSON-lines training logs against their step, one panel per key.",
                     "dydit plot --panels runs/a/log.jsonl:loss,runs/b/log.jsonl:flops_ratio:0.5 --out curves.png",
                     options, (int)(sizeof(options) / sizeof(options[0]))};
    options_parse(&set, argc, argv);
    if (!panels || !out) die("--panels and --out are required (see dydit plot --help)");
    OutputFiles outputs = {0};
    const char *out_file = output_files_add(&outputs, "--out", out);
    char *list = xstrdup(panels), *save = NULL;
    Canvas canvases[MAX_PANELS];
    int count = 0;
    for (char *spec = strtok_r(list, ",", &save); spec; spec = strtok_r(NULL, ",", &save)) {
        if (count == MAX_PANELS) die("--panels: at most %d panels", MAX_PANELS);
        char *key = strchr(spec, ':');
        if (!key || !key[1]) die("--panels: '%s' is not FILE:KEY[:REFERENCE]", spec);
        *key++ = 0;
        double reference = NAN;
        char *ref = strchr(key, ':');
        if (ref) {
            *ref++ = 0;
            if (parse_double(ref, &reference)) die("--panels: reference '%s' of %s is not a number", ref, key);
        }
        output_files_refuse_input(&outputs, "--panels", spec);
        canvases[count] = canvas_new(PANEL_WIDTH, PANEL_HEIGHT);
        draw_panel(&canvases[count++], spec, key, reference);
    }
    if (!count) die("--panels lists no panel");
    size_t panel_bytes = (size_t)PANEL_WIDTH * PANEL_HEIGHT * 3;
    uint8_t *rgb = xmalloc(panel_bytes * count);
    for (int i = 0; i < count; i++) {
        memcpy(rgb + panel_bytes * i, canvases[i].rgb, panel_bytes);
        canvas_free(&canvases[i]);
    }
    char err[512];
    if (png_write(out_file, rgb, PANEL_WIDTH, PANEL_HEIGHT * count, 3, err, sizeof(err))) die("%s", err);
    output_files_commit(&outputs);
    fprintf(stderr, "wrote %s (%d panels)\n", out, count);
    free(rgb);
    free(list);
    return 0;
}
