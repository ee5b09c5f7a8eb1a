// train/cmd_decode.c: `dydit decode`, stored latents -> images through the SD VAE decoder, as a
// PNG grid and/or an .npz sample batch for the ADM evaluator.
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/output_files.h"
#include "common/util.h"
#include "data/npz.h"
#include "data/png_write.h"
#include "data/safetensors.h"
#include "model/vae.h"
#include "train/commands.h"
#include "train/device_options.h"
#include "train/options.h"

#define MAX_IMAGE_SIDE 16384
#define PROGRESS_SECONDS 10.0
#define GRID_PADDING 2 // black pixels around and between the images, as torchvision's make_grid

typedef struct {
    const char *vae, *latents, *png, *npz;
    const char *png_file, *npz_file; // where png and npz are written until every output is complete
    double scale;
    int per_row, batch, threads, quiet;
    DeviceOptions device;
} DecodeOptions;

// The stored latents (N, C, h, w), divided by the scale factor: what the decoder takes.
static float *read_latents(const DecodeOptions *o, const Vae *vae, int64_t shape[4]) {
    char err[1024];
    StFile *f = st_open(o->latents, err, sizeof(err));
    if (!f) die("%s", err);
    const StTensor *t = st_find(f, "latents");
    if (!t) die("%s: no tensor 'latents'", o->latents);
    char text[96];
    st_shape_string(t, text, sizeof(text));
    int f8 = vae_downsampling(vae);
    if (t->ndim != 4 || t->shape[0] < 1 || t->shape[1] != vae_latent_channels(vae) || t->shape[2] < 1 ||
        t->shape[3] < 1 || t->shape[2] > MAX_IMAGE_SIDE / f8 || t->shape[3] > MAX_IMAGE_SIDE / f8 ||
        t->shape[0] > INT32_MAX)
        die("%s: tensor 'latents' has shape %s; want (N, %d, h, w) with N >= 1 and images of at most %d pixels a side",
            o->latents, text, vae_latent_channels(vae), MAX_IMAGE_SIDE);
    memcpy(shape, t->shape, sizeof(int64_t) * 4);
    size_t n = (size_t)st_numel(t);
    float *z = xmalloc(sizeof(float) * n);
    if (st_read_f32(f, t, z, err, sizeof(err))) die("%s", err);
    st_close(f);
    float scale = (float)o->scale; // in float32, like DiT's `samples / 0.18215` on a float tensor
    for (size_t i = 0; i < n; i++) z[i] /= scale;
    size_t per_latent = (size_t)(shape[1] * shape[2] * shape[3]);
    int64_t bad = first_nonfinite_record(z, shape[0], per_latent);
    if (bad >= 0)
        die("%s: latent %lld is not finite (after dividing by --scale %g)", o->latents, (long long)bad, o->scale);
    return z;
}

static void decode_all(const DecodeOptions *o, OutputFiles *out) {
    Backend backend = device_options_open(&o->device, 0);
    const Ops *ops = backend.ops;
    char err[1024];
    Vae *vae = vae_load(o->vae, ops, err, sizeof(err));
    if (!vae) die("%s", err);
    if (!vae_has_decoder(vae)) die("%s: holds no decoder ('decoder.conv_in.weight'): cannot decode", o->vae);
    int64_t shape[4];
    float *latents = read_latents(o, vae, shape);
    int N = (int)shape[0], C = (int)shape[1], h = (int)shape[2], w = (int)shape[3];
    int f = vae_downsampling(vae), IC = vae_image_channels(vae), H = h * f, W = w * f;
    int grid_w, grid_h;
    if (o->png && IC != 1 && IC != 3 && IC != 4)
        die("%s: the decoder makes %d channels; a PNG holds 1, 3 or 4", o->vae, IC);
    if (o->png && png_grid_size(N, H, W, o->per_row, GRID_PADDING, &grid_w, &grid_h))
        die("--out: a grid of %d images of %dx%d in rows of %d would exceed %d pixels a side; write only --npz", N, W,
            H, o->per_row, PNG_GRID_MAX_SIDE);
    int batch = o->batch < N ? o->batch : N;
    if (!o->quiet) {
        device_print(&backend);
        fprintf(stderr, "decoding %d latents (%d, %d, %d) into %dx%d images, batch %d, %d threads\n", N, C, h, w, H, W,
                batch, omp_get_max_threads());
    }

    NpzWriter *npz = NULL;
    if (o->npz) {
        int64_t nhwc[4] = {N, H, W, IC};
        if (!(npz = npz_open(o->npz_file, 4, nhwc, 0, err, sizeof(err)))) die("%s", err);
    }
    size_t per_latent = (size_t)C * h * w, per_image = (size_t)IC * H * W;
    // every image for the grid; one batch when only the .npz is written
    uint8_t *bytes = xmalloc(per_image * (o->png ? (size_t)N : (size_t)batch));
    float *host = xmalloc(sizeof(float) * per_image * batch);
    float *d_latents = ops->alloc(sizeof(float) * per_latent * batch),
          *d_images = ops->alloc(sizeof(float) * per_image * batch);
    double start = now_seconds(), last_report = start;
    for (int first = 0; first < N; first += batch) {
        int b = N - first < batch ? N - first : batch;
        ops->upload(d_latents, latents + (size_t)first * per_latent, sizeof(float) * per_latent * b);
        vae_decode(vae, d_latents, d_images, b, h, w);
        ops->download(host, d_images, sizeof(float) * per_image * b);
        int64_t bad = first_nonfinite_record(host, b, per_image);
        if (bad >= 0)
            die("decoding produced a non-finite value in image %lld; nothing written", (long long)(first + bad));
        uint8_t *out = o->png ? bytes + (size_t)first * per_image : bytes;
        images_to_u8(out, host, b, IC, H, W);
        if (npz && npz_append(npz, out, per_image * b, err, sizeof(err))) die("%s", err);
        double now = now_seconds();
        if (!o->quiet && N > batch && (now - last_report >= PROGRESS_SECONDS || first + b == N)) {
            double rate = (first + b) / (now - start);
            fprintf(stderr, "decoded %d/%d  %.2f img/s  eta %.0fs\n", first + b, N, rate, (N - first - b) / rate);
            last_report = now;
        }
    }
    if (npz && npz_close(npz, err, sizeof(err))) die("%s", err);
    if (o->png && png_write_grid(o->png_file, bytes, N, H, W, IC, o->per_row, GRID_PADDING, err, sizeof(err)))
        die("%s", err);
    output_files_commit(out);
    fprintf(stderr, "decoded %d images in %.1fs%s%s%s%s\n", N, now_seconds() - start, o->png ? ", wrote " : "",
            o->png ? o->png : "", o->npz ? ", wrote " : "", o->npz ? o->npz : "");
    ops->release(d_latents);
    ops->release(d_images);
    free(host), free(bytes), free(latents);
    vae_free(vae);
}

int cmd_decode(int argc, char **argv) {
    DecodeOptions o = {.scale = VAE_SCALE_FACTOR, .per_row = 8, .batch = 4};
    enum { OWN = 9 };
    Option options[OWN + DEVICE_OPTION_COUNT] = {
        {"vae", OPT_STRING, &o.vae, "SD VAE weights (safetensors, diffusers or CompVis names)", NULL, 0, NO_RANGE},
        {"latents", OPT_STRING, &o.latents, "safetensors file with latents (N, 4, h, w), as stored (times --scale)",
         NULL, 0, NO_RANGE},
        {"scale", OPT_FLOAT, &o.scale, "the latents were multiplied by this; decoding divides by it", NULL, 0,
         RANGE_ABOVE(0, 1000)},
        {"out", OPT_STRING, &o.png, "PNG grid of all images to write", NULL, 0, NO_RANGE},
        {"nrow", OPT_INT, &o.per_row, "images per row of the grid", NULL, 0, RANGE(1, 65536)},
        {"npz", OPT_STRING, &o.npz, ".npz to write: arr_0 uint8 (N, H, W, 3), the ADM evaluator's layout", NULL, 0,
         NO_RANGE},
        {"batch", OPT_INT, &o.batch, "latents decoded at a time", NULL, 0, RANGE(1, BATCH_MAX)},
        {"threads", OPT_INT, &o.threads, "CPU threads (0: OpenMP's default)", NULL, 0, RANGE(0, THREADS_MAX)},
        {"quiet", OPT_FLAG, &o.quiet, "no progress lines on stderr", NULL, 0, NO_RANGE},
    };
    device_options_add(&o.device, options, OWN);
    OptionSet set = {"decode",
                     "Decode latents with the SD VAE decoder into a PNG grid and/or an .npz sample batch. "
                     "Pixels are clamp(127.5 x + 128, 0, 255) truncated, as in DiT's samplers.",
                     "dydit decode --vae VAE.safetensors --latents IN.safetensors [--out grid.png] [--npz samples.npz]",
                     options, OWN + DEVICE_OPTION_COUNT};
    options_parse(&set, argc, argv);
    if (!o.vae || !o.latents) die("--vae and --latents are required (see dydit decode --help)");
    if (!o.png && !o.npz) die("nothing to write: give --out grid.png and/or --npz samples.npz");
    if (o.threads > 0) omp_set_num_threads(o.threads);
    OutputFiles out = {0};
    if (o.png) o.png_file = output_files_add(&out, "--out", o.png);
    if (o.npz) o.npz_file = output_files_add(&out, "--npz", o.npz);
    output_files_refuse_input(&out, "--vae", o.vae);
    output_files_refuse_input(&out, "--latents", o.latents);
    decode_all(&o, &out);
    return 0;
}
