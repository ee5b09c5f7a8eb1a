#include "train/sample_outputs.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "data/font.h"
#include "data/plot.h"
#include "data/png_write.h"

void image_maker_init(ImageMaker *im, const Ops *ops, Vae *vae, float scale, int channels, int size, int capacity) {
    memset(im, 0, sizeof(*im));
    im->ops = ops;
    im->vae = vae;
    im->scale = scale;
    im->channels = channels;
    im->size = size;
    im->capacity = capacity;
    size_t side = (size_t)image_side(im);
    if (vae) {
        im->scratch = ops->alloc((size_t)capacity * channels * size * size * sizeof(float));
        im->images = ops->alloc((size_t)capacity * 3 * side * side * sizeof(float));
    }
}

void image_maker_free(ImageMaker *im) {
    if (im->vae) {
        im->ops->release(im->scratch);
        im->ops->release(im->images);
    }
    memset(im, 0, sizeof(*im));
}

int image_side(const ImageMaker *im) { return im->vae ? im->size * vae_downsampling(im->vae) : im->size; }

void image_maker_run(ImageMaker *im, const float *latents, int n, uint8_t *rgb) {
    const Ops *ops = im->ops;
    int side = image_side(im);
    size_t pixels = (size_t)side * side;
    float *host = xmalloc((size_t)n * 3 * pixels * sizeof(float));
    int C = 3;
    if (im->vae) {
        size_t numel = (size_t)n * im->channels * im->size * im->size;
        ops->copy(im->scratch, latents, numel * sizeof(float));
        ops->scale(im->scratch, 1.0f / im->scale, numel);
        vae_decode(im->vae, im->scratch, im->images, n, im->size, im->size);
        ops->download(host, im->images, (size_t)n * 3 * pixels * sizeof(float));
        if (first_nonfinite_record(host, n, 3 * pixels) >= 0)
            die("the VAE decoder produced a non-finite value from finite latents; nothing written");
    } else {
        C = im->channels;
        ops->download(host, latents, (size_t)n * C * pixels * sizeof(float));
    }
    uint8_t *nhwc = xmalloc((size_t)n * C * pixels);
    images_to_u8(nhwc, host, n, C, side, side);
    for (size_t p = 0; p < (size_t)n * pixels; p++) // gray images become RGB for grids and npz
        for (int k = 0; k < 3; k++) rgb[p * 3 + k] = nhwc[p * C + (C == 3 ? k : 0)];
    free(nhwc);
    free(host);
}

void mask_recorder_init(MaskRecorder *r, int steps, int rows, int samples, int layers, int tokens) {
    memset(r, 0, sizeof(*r));
    r->steps = steps;
    r->rows = rows < steps ? rows : steps;
    r->samples = samples;
    r->layers = layers;
    r->tokens = tokens;
    r->step_of_row = xmalloc(sizeof(int) * (size_t)r->rows);
    for (int i = 0; i < r->rows; i++) // evenly spaced, the first and the last step included
        r->step_of_row[i] = r->rows == 1 ? steps - 1 : (int)lround((double)i * (steps - 1) / (r->rows - 1));
    r->keep = xcalloc((size_t)r->rows * samples * tokens, sizeof(float));
}

void mask_recorder_free(MaskRecorder *r) {
    free(r->step_of_row);
    free(r->keep);
    memset(r, 0, sizeof(*r));
}

void mask_recorder_on_step(void *ctx, int index, int timestep, const DitInfer *engine) {
    MaskRecorder *r = ctx;
    (void)timestep;
    for (int row = 0; row < r->rows; row++) {
        if (r->step_of_row[row] != index) continue;
        const float *keep = dit_infer_token_keep(engine); // (B, L, T), conditional rows first
        for (int b = 0; b < r->samples; b++)
            for (int t = 0; t < r->tokens; t++) {
                double sum = 0;
                for (int l = 0; l < r->layers; l++) sum += keep[((size_t)b * r->layers + l) * r->tokens + t];
                r->keep[((size_t)row * r->samples + b) * r->tokens + t] = (float)(sum / r->layers);
            }
    }
}

// Blends a blue-to-red colour for fraction f into a pixel, half and half.
static void overlay(uint8_t *px, float f) {
    const float color[3] = {255.0f * f, 40.0f, 255.0f * (1.0f - f)};
    for (int k = 0; k < 3; k++) px[k] = (uint8_t)(0.5f * px[k] + 0.5f * color[k]);
}

void mask_files_declare(MaskFiles *f, OutputFiles *out, const char *dir) {
    static const char *names[4] = {"token_masks.png", "token_masks.txt", "flops.csv", "flops.png"};
    const char **staged[4] = {&f->token_png, &f->token_txt, &f->flops_csv, &f->flops_png};
    if (make_dirs(dir)) die("--save-masks %s: cannot create the directory", dir);
    for (int i = 0; i < 4; i++) {
        f->path[i] = xasprintf("%s/%s", dir, names[i]);
        *staged[i] = output_files_add(out, "--save-masks", f->path[i]);
    }
}

void mask_files_free(MaskFiles *f) {
    for (int i = 0; i < 4; i++) free(f->path[i]);
    memset(f, 0, sizeof(*f));
}

// Every byte of a text output reached the file system, or the command ends.
static void close_text(FILE *f, const char *path) {
    int failed = ferror(f);
    if (fclose(f) || failed) die("%s: cannot write: %s", path, strerror(errno ? errno : EIO));
}

// Copies a (side, side, 3) tile into the canvas at (x, y).
static void place_tile(Canvas *c, const uint8_t *tile, int side, int x, int y) {
    for (int row = 0; row < side; row++)
        memcpy(c->rgb + ((size_t)(y + row) * c->width + x) * 3, tile + (size_t)row * side * 3, (size_t)side * 3);
}

// A filled square of `size` pixels at (x, y).
static void swatch(Canvas *c, int x, int y, int size, const float color[3]) {
    for (int j = 0; j < size; j++)
        for (int i = 0; i < size; i++)
            for (int k = 0; k < 3; k++) c->rgb[((size_t)(y + j) * c->width + x + i) * 3 + k] = (uint8_t)color[k];
}

// token_masks.png: a title, a legend of the two colours, and the tiles (one row per recorded step,
// labelled with its timestep; one column per sample).
static Canvas mask_picture(const uint8_t *pictures, const MaskRecorder *r, int side, const int *timesteps) {
    enum { PAD = 2, MARGIN = 8, LINE = FONT_HEIGHT + 4 };
    const char *title = "token decisions while sampling (rows: timesteps, columns: samples)";
    int label_width = font_text_width("t=1000", 1) + MARGIN, top = MARGIN + 3 * LINE;
    int grid_width = r->samples * (side + PAD) + PAD, width = label_width + grid_width + MARGIN;
    int title_width = font_text_width(title, 1) + 2 * MARGIN;
    if (width < title_width) width = title_width;
    Canvas c = canvas_new(width, top + r->rows * (side + PAD) + PAD + MARGIN);
    canvas_text(&c, MARGIN, MARGIN, title, 1);
    const float kept[3] = {255, 40, 0}, dropped[3] = {0, 40, 255};
    swatch(&c, MARGIN, MARGIN + LINE, FONT_HEIGHT, kept);
    canvas_text(&c, MARGIN + FONT_HEIGHT + 4, MARGIN + LINE, "kept by every block", 1);
    swatch(&c, MARGIN, MARGIN + 2 * LINE, FONT_HEIGHT, dropped);
    canvas_text(&c, MARGIN + FONT_HEIGHT + 4, MARGIN + 2 * LINE, "dropped by every block (blended with the image)", 1);
    size_t tile = (size_t)side * side * 3;
    for (int row = 0; row < r->rows; row++) {
        int y = top + PAD + row * (side + PAD);
        char label[32];
        snprintf(label, sizeof(label), "t=%d", timesteps[r->step_of_row[row]]);
        canvas_text(&c, MARGIN, y + (side - FONT_HEIGHT) / 2, label, 1);
        for (int b = 0; b < r->samples; b++)
            place_tile(&c, pictures + ((size_t)row * r->samples + b) * tile, side, label_width + PAD + b * (side + PAD), y);
    }
    return c;
}

void write_mask_outputs(const MaskFiles *files, const MaskRecorder *r, const uint8_t *rgb, int side,
                        const int *timesteps) {
    int grid = (int)lround(sqrt((double)r->tokens)), tiles = r->rows * r->samples;
    size_t tile = (size_t)side * side * 3;
    uint8_t *pictures = xmalloc((size_t)tiles * tile);
    for (int row = 0; row < r->rows; row++)
        for (int b = 0; b < r->samples; b++) {
            uint8_t *out = pictures + ((size_t)row * r->samples + b) * tile;
            memcpy(out, rgb + (size_t)b * tile, tile);
            const float *keep = r->keep + ((size_t)row * r->samples + b) * r->tokens;
            for (int y = 0; y < side; y++)
                for (int x = 0; x < side; x++)
                    overlay(out + ((size_t)y * side + x) * 3, keep[(y * grid / side) * grid + x * grid / side]);
        }
    char err[1024];
    Canvas picture = mask_picture(pictures, r, side, timesteps);
    if (png_write(files->token_png, picture.rgb, picture.width, picture.height, 3, err, sizeof(err))) die("%s", err);
    canvas_free(&picture);
    FILE *f = fopen(files->token_txt, "w");
    if (!f) die("%s: cannot write: %s", files->token_txt, strerror(errno));
    fprintf(f, "token_masks.png: one row per recorded step, one column per sample; red = kept by every block,\n"
               "blue = dropped by every block. Rows, top to bottom (step index in sampling order, timestep):\n");
    for (int row = 0; row < r->rows; row++) fprintf(f, "%d %d\n", r->step_of_row[row], timesteps[r->step_of_row[row]]);
    close_text(f, files->token_txt);
    free(pictures);
}

void write_flops_outputs(const MaskFiles *files, const SamplerStepStats *stats, int steps) {
    FILE *f = fopen(files->flops_csv, "w");
    if (!f) die("%s: cannot write: %s", files->flops_csv, strerror(errno));
    fprintf(f, "step,timestep,gmacs,static_gmacs,ratio,head_keep,group_keep,token_keep\n");
    double *x = xmalloc(sizeof(double) * (size_t)steps), *y = xmalloc(sizeof(double) * (size_t)steps);
    for (int i = 0; i < steps; i++) {
        const SamplerStepStats *s = &stats[i];
        fprintf(f, "%d,%d,%.6f,%.6f,%.6f,%.4f,%.4f,%.4f\n", i, s->timestep, s->macs_per_row / 1e9,
                s->static_macs_per_row / 1e9, s->macs_per_row / s->static_macs_per_row, s->head_keep, s->group_keep,
                s->token_keep);
        x[i] = s->timestep;
        y[i] = s->macs_per_row / 1e9;
    }
    close_text(f, files->flops_csv);
    double static_gmacs = stats[0].static_macs_per_row / 1e9;
    char *static_label = xasprintf("static network %.4g", static_gmacs);
    PlotSeries dynamic = {x, y, steps, "dynamic network"};
    PlotSpec spec = {"realised gmacs per image-forward at each timestep",
                     "timestep",
                     "gmacs",
                     &dynamic,
                     1,
                     static_gmacs,
                     static_label};
    Canvas c = canvas_new(720, 360);
    plot_draw(&c, &spec);
    free(static_label);
    char err[1024];
    if (png_write(files->flops_png, c.rgb, c.width, c.height, 3, err, sizeof(err))) die("%s", err);
    canvas_free(&c);
    free(x);
    free(y);
}
