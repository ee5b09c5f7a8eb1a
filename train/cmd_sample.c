// train/cmd_sample.c: `dydit sample`, DDPM or DDIM sampling with classifier-free guidance from a
// DiT or a DyDiT (with the dynamic engine's real speed-up), to a PNG grid, an .npz for the ADM
// evaluator, raw latents, and for a DyDiT the pictures of its token masks and realised FLOPs.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "data/npz.h"
#include "data/png_write.h"
#include "kernels/philox.h"
#include "train/commands.h"
#include "train/device_options.h"
#include "train/load_model.h"
#include "train/model_options.h"
#include "train/sample_outputs.h"

typedef struct {
    const char *weights, *vae, *sampler, *spacing, *classes, *grid, *npz, *latents, *masks, *trace;
    int steps, num, batch, seed, cfg_all, complete, dynamic, per_row, quiet, clip;
    double cfg_scale, eta, scale;
    DeviceOptions device;
} SampleOptions;

enum { SAMPLE_OPTIONS_MAX = 40 };

static int add_options(SampleOptions *o, Option *opts) {
    const Option list[] = {
        {"weights", OPT_STRING, &o->weights, "DiT or DyDiT weights (safetensors; e.g. a run's ema.safetensors)", NULL,
         0, NO_RANGE},
        {"vae", OPT_STRING, &o->vae, "SD VAE weights, to decode a latent model's samples", NULL, 0, NO_RANGE},
        {"sampler", OPT_STRING, &o->sampler, "ddpm (ancestral) or ddim", NULL, 0, NO_RANGE},
        {"steps", OPT_INT, &o->steps, "sampling steps (timestep respacing of the 1000-step schedule)", NULL, 0,
         RANGE(1, 1000)},
        {"spacing", OPT_STRING, &o->spacing, "respacing string instead of --steps, e.g. ddim50 or 10,20,30", NULL, 0,
         NO_RANGE},
        {"eta", OPT_FLOAT, &o->eta, "DDIM noise scale (0: deterministic)", NULL, 0, RANGE(0, 1)},
        {"cfg-scale", OPT_FLOAT, &o->cfg_scale, "classifier-free guidance scale (1: none)", NULL, 0, GUIDANCE_RANGE},
        {"cfg-all-channels", OPT_FLAG, &o->cfg_all, "guide every eps channel (DiT/DyDiT guide channels 0-2 only)", NULL,
         0, NO_RANGE},
        {"clip-denoised", OPT_INT, &o->clip, "1: clamp the x0 prediction to [-1, 1] at every step",
         "1 for a pixel-space model, 0 for latents (as DiT)", 0, RANGE(0, 1)},
        {"classes", OPT_STRING, &o->classes, "comma-separated labels, repeated over the samples", "random", 0,
         NO_RANGE},
        {"num", OPT_INT, &o->num, "number of samples", NULL, 0, RANGE(1, COUNT_MAX)},
        {"batch", OPT_INT, &o->batch, "samples per sampler call (twice the rows with guidance)", NULL, 0,
         RANGE(1, BATCH_MAX)},
        {"seed", OPT_INT, &o->seed, "seed of the noise and the random classes", NULL, 0, SEED_RANGE},
        {"dynamic", OPT_FLAG, &o->dynamic, "DyDiT: skip the switched-off heads, groups and tokens", "on for a DyDiT", 0,
         NO_RANGE},
        {"complete", OPT_FLAG, &o->complete, "DyDiT: run the complete (static) network instead", NULL, 0, NO_RANGE},
        {"grid", OPT_STRING, &o->grid, "PNG grid of the samples", NULL, 0, NO_RANGE},
        {"nrow", OPT_INT, &o->per_row, "images per row of the grid", NULL, 0, RANGE(1, 65536)},
        {"npz", OPT_STRING, &o->npz, ".npz for the ADM evaluator: arr_0 uint8 (N, H, W, 3)", NULL, 0, NO_RANGE},
        {"latents", OPT_STRING, &o->latents, "safetensors file of the raw latents (N, C, H, W) and labels", NULL, 0,
         NO_RANGE},
        {"scale", OPT_FLOAT, &o->scale, "VAE latent scale factor", NULL, 0, RANGE_ABOVE(0, 1000)},
        {"save-masks", OPT_STRING, &o->masks,
         "DyDiT: directory for token-mask heat maps and the realised FLOPs per timestep (CSV and plot)", NULL, 0,
         NO_RANGE},
        {"trace", OPT_STRING, &o->trace, "safetensors file of the initial latents and every step's noise (checks)",
         NULL, 0, NO_RANGE},
        {"quiet", OPT_FLAG, &o->quiet, "no progress on stderr", NULL, 0, NO_RANGE},
    };
    int count = (int)(sizeof(list) / sizeof(list[0]));
    memcpy(opts, list, sizeof(list));
    device_options_add(&o->device, opts, count);
    return count + DEVICE_OPTION_COUNT;
}

// Labels of the samples: --classes cycled, or uniform draws keyed by (seed, sample index).
static int32_t *choose_labels(const SampleOptions *o, int num_classes) {
    int32_t *y = xmalloc(sizeof(int32_t) * (size_t)o->num);
    if (!o->classes) {
        for (int i = 0; i < o->num; i++)
            y[i] = (int32_t)rng_below(rng_u32((uint64_t)o->seed, RNG_SAMPLE, 0xFFFFFFFFu, (uint32_t)i, 0),
                                      (uint32_t)num_classes);
        return y;
    }
    int32_t *list = xmalloc(sizeof(int32_t) * (size_t)(strlen(o->classes) + 1));
    int n = 0;
    char *copy = xstrdup(o->classes), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long v;
        if (parse_long(tok, &v) || v < 0 || v >= num_classes)
            die("--classes: '%s' is not a class in [0, %d)", tok, num_classes);
        list[n++] = (int32_t)v;
    }
    if (n == 0) die("--classes lists no class");
    for (int i = 0; i < o->num; i++) y[i] = list[i % n];
    free(copy);
    free(list);
    return y;
}

static void write_latents(const char *path, const float *latents, const int32_t *y, const DitConfig *c, int num) {
    int64_t *labels = xmalloc(sizeof(int64_t) * (size_t)num);
    for (int i = 0; i < num; i++) labels[i] = y[i];
    int64_t shape[4] = {num, c->in_channels, c->input_size, c->input_size}, lshape[1] = {num};
    StWriter *w = st_writer_new();
    st_writer_meta(w, "format", "dydit-samples");
    st_writer_add(w, "latents", ST_F32, 4, shape, latents);
    st_writer_add(w, "labels", ST_I64, 1, lshape, labels);
    char err[1024];
    if (st_writer_save(w, path, err, sizeof(err))) die("%s", err);
    st_writer_free(w);
    free(labels);
}

static void write_trace(const char *path, const float *trace, int steps, int num, const DitConfig *c) {
    int64_t x_shape[4] = {num, c->in_channels, c->input_size, c->input_size};
    int64_t noise_shape[5] = {steps, num, c->in_channels, c->input_size, c->input_size};
    StWriter *w = st_writer_new();
    st_writer_meta(w, "format", "dydit-sample-trace");
    st_writer_add(w, "x_T", ST_F32, 4, x_shape, trace);
    st_writer_add(w, "noise", ST_F32, 5, noise_shape,
                  trace + (size_t)num * c->in_channels * c->input_size * c->input_size);
    char err[1024];
    if (st_writer_save(w, path, err, sizeof(err))) die("%s", err);
    st_writer_free(w);
}

int cmd_sample(int argc, char **argv) {
    SampleOptions o = {.sampler = "ddpm",
                       .steps = 250,
                       .num = 16,
                       .batch = 16,
                       .cfg_scale = 1.5,
                       .per_row = 8,
                       .scale = 0.18215,
                       .clip = -1};
    HintOptions ho = {0};
    Option opts[SAMPLE_OPTIONS_MAX];
    int count = add_options(&o, opts);
    hint_options_add(&ho, opts, count);
    OptionSet set = {
        "sample",
        "Generate samples with DDPM or DDIM and classifier-free guidance. A DyDiT runs its dynamic engine, "
        "which really skips the switched-off heads, channel groups and tokens.",
        "dydit sample --weights W.safetensors [--vae VAE.safetensors] --num N [--grid g.png] [--npz s.npz]", opts,
        count + HINT_OPTION_COUNT};
    options_parse(&set, argc, argv);
    if (!o.weights) die("--weights is required (see dydit sample --help)");
    if (!o.grid && !o.npz && !o.latents) die("nothing to write: pass --grid, --npz and/or --latents");
    if (strcmp(o.sampler, "ddpm") && strcmp(o.sampler, "ddim")) die("--sampler must be ddpm or ddim");
    if (o.dynamic && o.complete) die("--dynamic and --complete exclude each other");
    // every output is declared, and checked against the inputs, before any work
    OutputFiles out = {0};
    const char *grid_file = o.grid ? output_files_add(&out, "--grid", o.grid) : NULL;
    const char *npz_file = o.npz ? output_files_add(&out, "--npz", o.npz) : NULL;
    const char *latents_file = o.latents ? output_files_add(&out, "--latents", o.latents) : NULL;
    const char *trace_file = o.trace ? output_files_add(&out, "--trace", o.trace) : NULL;
    MaskFiles mask_files = {0};
    if (o.masks) mask_files_declare(&mask_files, &out, o.masks);
    output_files_refuse_input(&out, "--weights", o.weights);
    output_files_refuse_input(&out, "--vae", o.vae);

    Backend backend = device_options_open(&o.device, 0);
    const Ops *ops = backend.ops;
    DitModel m;
    WeightsHints hints = hint_options_hints(&ho, &set);
    load_model(&m, o.weights, &hints, ops);
    const DitConfig *c = &m.cfg;
    if ((o.dynamic || o.complete || o.masks) && !c->dynamic)
        die("--dynamic, --complete and --save-masks need DyDiT weights");
    int dynamic = c->dynamic && !o.complete;

    Vae *vae = NULL;
    char err[1024];
    if (o.vae) {
        if (!(vae = vae_load(o.vae, ops, err, sizeof(err)))) die("%s", err);
        if (!vae_has_decoder(vae)) die("%s: no decoder", o.vae);
        if (vae_latent_channels(vae) != c->in_channels)
            die("%s: the VAE has %d latent channels, the model %d", o.vae, vae_latent_channels(vae), c->in_channels);
    } else if ((o.grid || o.npz) && c->in_channels != 1 && c->in_channels != 3) {
        die("a model of %d-channel latents needs --vae to make images (or write --latents only)", c->in_channels);
    }

    char spacing_text[32];
    snprintf(spacing_text, sizeof(spacing_text), "%d", o.steps);
    SamplerConfig sc = {.kind = strcmp(o.sampler, "ddim") ? SAMPLER_DDPM : SAMPLER_DDIM,
                        .spacing = o.spacing ? o.spacing : spacing_text,
                        .eta = (float)o.eta,
                        .cfg_scale = (float)o.cfg_scale,
                        .cfg_all_channels = o.cfg_all,
                        .clip_denoised = o.clip >= 0 ? o.clip : !vae && sampler_clips_pixels(c),
                        .seed = (uint64_t)o.seed};
    int batch = o.batch < o.num ? o.batch : o.num;
    Sampler *sampler = sampler_create(&m, &sc, batch, dynamic);
    int S = sampler_steps(sampler);
    if (o.trace && o.num > batch) die("--trace records one batch: use --num <= --batch");

    ImageMaker im;
    image_maker_init(&im, ops, vae, (float)o.scale, c->in_channels, c->input_size, batch);
    int side = image_side(&im);
    int grid_w, grid_h;
    if (o.grid && png_grid_size(o.num, side, side, o.per_row, 2, &grid_w, &grid_h))
        die("--grid: %d images of %dx%d in rows of %d make too large a picture; write --npz", o.num, side, side,
            o.per_row);
    int32_t *y = choose_labels(&o, c->num_classes); // before any output file exists
    NpzWriter *npz = NULL;
    if (o.npz) {
        int64_t shape[4] = {o.num, side, side, 3};
        if (!(npz = npz_open(npz_file, 4, shape, 0, err, sizeof(err)))) die("%s", err);
    }

    size_t numel = (size_t)c->in_channels * c->input_size * c->input_size, image_bytes = (size_t)side * side * 3;
    float *x = ops->alloc((size_t)batch * numel * sizeof(float));
    // every sample's latents for --latents, else one batch: each batch is checked on the host
    float *all_latents = xmalloc((o.latents ? (size_t)o.num : (size_t)batch) * numel * sizeof(float));
    uint8_t *rgb = xmalloc((size_t)batch * image_bytes), *grid = o.grid ? xmalloc((size_t)o.num * image_bytes) : NULL;
    SamplerStepStats *stats = xcalloc((size_t)S, sizeof(SamplerStepStats)),
                     *sum = xcalloc((size_t)S, sizeof(SamplerStepStats));
    float *trace = o.trace ? xmalloc((size_t)(S + 1) * batch * numel * sizeof(float)) : NULL;
    MaskRecorder masks = {0};
    if (o.masks) mask_recorder_init(&masks, S, 8, batch < 8 ? batch : 8, c->depth, dit_tokens(c));

    if (!o.quiet) {
        char desc[320];
        dit_config_describe(c, desc, sizeof(desc));
        device_print(&backend);
        fprintf(stderr, "model: %s\nsampling %d images: %s, %d steps, guidance %g, %s engine\n", desc, o.num, o.sampler,
                S, o.cfg_scale, dynamic ? "dynamic" : "static");
    }
    double start = now_seconds();
    for (int first = 0; first < o.num; first += batch) {
        int n = o.num - first < batch ? o.num - first : batch;
        SamplerRecord record = {.stats = stats, .trace = trace};
        if (o.masks && first == 0) record.on_step = mask_recorder_on_step, record.ctx = &masks;
        sampler_run(sampler, y + first, n, (uint32_t)first, x, &record);
        for (int i = 0; i < S; i++) { // sample-weighted sums of the per-step statistics
            sum[i].timestep = stats[i].timestep;
            sum[i].macs_per_row += stats[i].macs_per_row * n;
            sum[i].static_macs_per_row += stats[i].static_macs_per_row * n;
            sum[i].head_keep += stats[i].head_keep * n;
            sum[i].group_keep += stats[i].group_keep * n;
            sum[i].token_keep += stats[i].token_keep * n;
        }
        float *host = o.latents ? all_latents + (size_t)first * numel : all_latents;
        ops->download(host, x, (size_t)n * numel * sizeof(float));
        int64_t bad = first_nonfinite_record(host, n, numel);
        if (bad >= 0)
            die("sampling produced a non-finite value in sample %lld; nothing written", (long long)(first + bad));
        if (o.grid || o.npz || o.masks) image_maker_run(&im, x, n, rgb);
        if (npz && npz_append(npz, rgb, (size_t)n * image_bytes, err, sizeof(err))) die("%s", err);
        if (grid) memcpy(grid + (size_t)first * image_bytes, rgb, (size_t)n * image_bytes);
        if (o.masks && first == 0) {
            int *timesteps = xmalloc(sizeof(int) * (size_t)S);
            for (int i = 0; i < S; i++) timesteps[i] = stats[i].timestep;
            write_mask_outputs(&mask_files, &masks, rgb, side, timesteps);
            free(timesteps);
        }
        if (!o.quiet) {
            double elapsed = now_seconds() - start, rate = (first + n) / elapsed;
            fprintf(stderr, "%d/%d images  %.3g img/s  eta %.0fs\n", first + n, o.num, rate,
                    (o.num - first - n) / rate);
        }
    }
    double elapsed = now_seconds() - start, macs = 0, static_macs = 0;
    for (int i = 0; i < S; i++) {
        sum[i].macs_per_row /= o.num;
        sum[i].static_macs_per_row /= o.num;
        sum[i].head_keep /= o.num;
        sum[i].group_keep /= o.num;
        sum[i].token_keep /= o.num;
        macs += sum[i].macs_per_row / S;
        static_macs += sum[i].static_macs_per_row / S;
    }
    if (o.masks) write_flops_outputs(&mask_files, sum, S);
    if (npz && npz_close(npz, err, sizeof(err))) die("%s", err);
    if (grid && png_write_grid(grid_file, grid, o.num, side, side, 3, o.per_row, 2, err, sizeof(err)))
        die("%s", err);
    if (latents_file) write_latents(latents_file, all_latents, y, c, o.num);
    if (trace) write_trace(trace_file, trace, S, o.num, c);
    output_files_commit(&out);
    mask_files_free(&mask_files);
    printf("sampled %d images in %.2f s (%.3g images/s); %.4g GMACs per image-forward (static %.4g, ratio %.3f)", o.num,
           elapsed, o.num / elapsed, macs / 1e9, static_macs / 1e9, macs / static_macs);
    if (dynamic) printf("; %ld block width patterns packed", dit_infer_repacks(sampler_engine(sampler)));
    printf("\n");

    if (o.masks) mask_recorder_free(&masks);
    free(trace);
    free(stats);
    free(sum);
    free(grid);
    free(rgb);
    free(all_latents);
    free(y);
    ops->release(x);
    image_maker_free(&im);
    if (vae) vae_free(vae);
    sampler_destroy(sampler);
    dit_model_destroy(&m);
    return 0;
}
