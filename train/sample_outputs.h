// train/sample_outputs.h: what `dydit sample` turns its latents into: RGB images (through the SD
// VAE decoder for latent models, directly for pixel-space models), and for a DyDiT the pictures
// of where and when it computes: token-mask heat maps over the final images at evenly spaced
// steps, and the realised FLOPs per sampling timestep as a CSV and a plot.
#pragma once
#include <stdint.h>

#include "common/output_files.h"
#include "model/sampler.h"
#include "model/vae.h"

typedef struct {
    const Ops *ops;
    Vae *vae;           // NULL for a pixel-space model
    float scale;        // latents were multiplied by this before training (VAE models)
    int channels, size; // the model's latent channels and side
    float *scratch;     // backend buffers for the decoder
    float *images;
    int capacity;
} ImageMaker;

// Images of side image_side(): the VAE's output, or the latents themselves (1 or 3 channels).
void image_maker_init(ImageMaker *im, const Ops *ops, Vae *vae, float scale, int channels, int size, int capacity);
void image_maker_free(ImageMaker *im);
int image_side(const ImageMaker *im);
// rgb (n, side, side, 3) uint8 from latents (n, C, size, size) on the backend.
void image_maker_run(ImageMaker *im, const float *latents, int n, uint8_t *rgb);

// Token decisions of the first samples of one batch at a few evenly spaced steps.
typedef struct {
    int steps, rows; // sampling steps; how many steps are recorded
    int samples;     // recorded samples (the first of the batch)
    int layers, tokens;
    int *step_of_row; // (rows) step index of each recorded row
    float *keep;      // (rows, samples, tokens): fraction of blocks that keep each token
} MaskRecorder;

void mask_recorder_init(MaskRecorder *r, int steps, int rows, int samples, int layers, int tokens);
void mask_recorder_free(MaskRecorder *r);
// SamplerRecord.on_step for a MaskRecorder.
void mask_recorder_on_step(void *ctx, int index, int timestep, const DitInfer *engine);

// The files of --save-masks DIR, declared as outputs of the command; the names are the temporary
// ones to write.
typedef struct {
    char *path[4];                                         // DIR/token_masks.png, .txt, flops.csv, .png
    const char *token_png, *token_txt, *flops_csv, *flops_png; // where to write them meanwhile
} MaskFiles;

void mask_files_declare(MaskFiles *f, OutputFiles *out, const char *dir);
// After output_files_commit.
void mask_files_free(MaskFiles *f);

// token_masks.png: rows = recorded steps, columns = samples; each tile is the sample's final
// image with a blue (dropped by every block) to red (kept by every block) overlay per token.
// flops.csv and flops.png: per step (in sampling order) the timestep, executed and static
// GMACs per image-forward and the keep rates, averaged over the batches. Exits on failure.
void write_mask_outputs(const MaskFiles *f, const MaskRecorder *r, const uint8_t *rgb, int side, const int *timesteps);
void write_flops_outputs(const MaskFiles *f, const SamplerStepStats *stats, int steps);
