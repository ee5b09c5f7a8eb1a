// train/cmd_plot.c: `dydit plot`, curves of JSON-lines training logs as one PNG of panels stacked
// top to bottom, each a data/plot.h plot of a key's values against the log's "step". Two ways to
// name the panels: --panels FILE:KEY[:REFERENCE],... (one log per panel, e.g. a DiT's loss, then a
// DyDiT fine-tune's loss and its realised FLOPs ratio against the target), or --logs A,B,...
// --field KEY[:REFERENCE],... (one panel per key, every log's curve on shared axes, so that runs
// such as router variants compare at a glance).
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

enum { PANEL_WIDTH = 720, PANEL_HEIGHT = 300, MAX_PANELS = 8, FIELD_NAME_MAX = 256 };

typedef struct {
    char *logs[PLOT_MAX_SERIES];
    int log_count;
    char key[FIELD_NAME_MAX];
    double reference; // NaN: none
} Panel;

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

// The values of `key` against "step" from every line of the log that has both.
static PlotSeries read_series(const char *path, const char *key) {
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
    return (PlotSeries){x, y, n, NULL};
}

// A run's name for titles and legends: the directory of a run's log.jsonl, else the file's path.
static char *run_name(const char *path) {
    const char *base = strrchr(path, '/');
    if (base && !strcmp(base + 1, "log.jsonl")) return xasprintf("%.*s", (int)(base - path), path);
    return xstrdup(path);
}

static void draw_panel(Canvas *c, const Panel *panel) {
    PlotSeries series[PLOT_MAX_SERIES];
    for (int i = 0; i < panel->log_count; i++) {
        series[i] = read_series(panel->logs[i], panel->key);
        series[i].label = run_name(panel->logs[i]);
    }
    // One run: its name goes into the title; several: the legend tells them apart.
    char *title = panel->log_count == 1 ? xasprintf("%s: %s", series[0].label, panel->key) : xstrdup(panel->key);
    char *reference_label = xasprintf("target %g", panel->reference);
    PlotSpec spec = {title, "step", panel->key, series, panel->log_count, panel->reference, reference_label};
    plot_draw(c, &spec);
    for (int i = 0; i < panel->log_count; i++) {
        free((void *)series[i].x);
        free((void *)series[i].y);
        free((void *)series[i].label);
    }
    free(title);
    free(reference_label);
}

// KEY[:REFERENCE] into a panel's key and reference line.
static void parse_key(Panel *panel, const char *spec) {
    const char *colon = strchr(spec, ':');
    size_t len = colon ? (size_t)(colon - spec) : strlen(spec);
    if (!len || len >= FIELD_NAME_MAX) die("'%s' does not start with a key", spec);
    memcpy(panel->key, spec, len);
    panel->key[len] = 0;
    panel->reference = NAN;
    if (colon && parse_double(colon + 1, &panel->reference))
        die("reference '%s' of %s is not a number", colon + 1, panel->key);
}

// --panels FILE:KEY[:REFERENCE],...: one log per panel. Returns the panel count.
static int panels_of_specs(char *list, Panel *panels) {
    int count = 0;
    char *save = NULL;
    for (char *spec = strtok_r(list, ",", &save); spec; spec = strtok_r(NULL, ",", &save)) {
        if (count == MAX_PANELS) die("--panels: at most %d panels", MAX_PANELS);
        char *key = strchr(spec, ':');
        if (!key || !key[1]) die("--panels: '%s' is not FILE:KEY[:REFERENCE]", spec);
        *key++ = 0;
        panels[count].logs[0] = spec;
        panels[count].log_count = 1;
        parse_key(&panels[count++], key);
    }
    return count;
}

// --logs A,B,... --field KEY[:REFERENCE],...: one panel per key, every log in each.
static int panels_of_fields(char *logs, char *fields, Panel *panels) {
    Panel shared = {.log_count = 0};
    char *save = NULL;
    for (char *log = strtok_r(logs, ",", &save); log; log = strtok_r(NULL, ",", &save)) {
        if (shared.log_count == PLOT_MAX_SERIES) die("--logs: at most %d logs", PLOT_MAX_SERIES);
        shared.logs[shared.log_count++] = log;
    }
    if (!shared.log_count) die("--logs names no log");
    int count = 0;
    for (char *field = strtok_r(fields, ",", &save); field; field = strtok_r(NULL, ",", &save)) {
        if (count == MAX_PANELS) die("--field: at most %d fields", MAX_PANELS);
        panels[count] = shared;
        parse_key(&panels[count++], field);
    }
    return count;
}

int cmd_plot(int argc, char **argv) {
    const char *panel_specs = NULL, *logs = NULL, *fields = NULL, *out = NULL;
    Option options[] = {
        {"panels", OPT_STRING, &panel_specs,
         "comma-separated FILE:KEY[:REFERENCE], one panel each (REFERENCE: a dashed horizontal line)", NULL, 0,
         NO_RANGE},
        {"logs", OPT_STRING, &logs, "comma-separated logs drawn together in every --field panel", NULL, 0, NO_RANGE},
        {"field", OPT_STRING, &fields, "with --logs: comma-separated KEY[:REFERENCE], one panel each", NULL, 0,
         NO_RANGE},
        {"out", OPT_STRING, &out, "the PNG to write", NULL, 0, NO_RANGE},
    };
    OptionSet set = {"plot",
                     "Plots keys of JSON-lines training logs against their step, one panel per key, with titles, "
                     "axis labels, tick values and a legend.",
                     "dydit plot --panels runs/a/log.jsonl:loss,runs/b/log.jsonl:flops_ratio:0.5 --out curves.png\n"
                     "       dydit plot --logs runs/a/log.jsonl,runs/b/log.jsonl --field loss,flops_ratio:0.5 "
                     "--out cmp.png",
                     options, (int)(sizeof(options) / sizeof(options[0]))};
    options_parse(&set, argc, argv);
    if (!out || !panel_specs == !logs) die("--out and either --panels or --logs are required (see dydit plot --help)");
    if (!logs != !fields) die("--logs and --field go together (see dydit plot --help)");
    Panel panels[MAX_PANELS];
    char *list = xstrdup(panel_specs ? panel_specs : logs), *field_list = fields ? xstrdup(fields) : NULL;
    int count = panel_specs ? panels_of_specs(list, panels) : panels_of_fields(list, field_list, panels);
    if (!count) die("no panel to draw");
    OutputFiles outputs = {0};
    const char *out_file = output_files_add(&outputs, "--out", out);
    for (int i = 0; i < count; i++)
        for (int j = 0; j < panels[i].log_count; j++)
            output_files_refuse_input(&outputs, panel_specs ? "--panels" : "--logs", panels[i].logs[j]);
    size_t panel_bytes = (size_t)PANEL_WIDTH * PANEL_HEIGHT * 3;
    uint8_t *rgb = xmalloc(panel_bytes * count);
    for (int i = 0; i < count; i++) {
        Canvas c = canvas_new(PANEL_WIDTH, PANEL_HEIGHT);
        draw_panel(&c, &panels[i]);
        memcpy(rgb + panel_bytes * i, c.rgb, panel_bytes);
        canvas_free(&c);
    }
    char err[512];
    if (png_write(out_file, rgb, PANEL_WIDTH, PANEL_HEIGHT * count, 3, err, sizeof(err))) die("%s", err);
    output_files_commit(&outputs);
    fprintf(stderr, "wrote %s (%d panels)\n", out, count);
    free(rgb);
    free(list);
    free(field_list);
    return 0;
}
