// model/vae.h: the Stable Diffusion KL-f8 VAE (diffusers AutoencoderKL, docs/algorithm.md 8), inference only,
// through the Ops table.
//
// Weights: safetensors with diffusers names (also the legacy attention names query/key/value/
// proj_attn) or CompVis names (1x1-conv attention weights, decoder levels numbered from the top),
// F32, F16, BF16 or F64. The architecture is inferred from the tensor shapes: levels and their
// channels (block_out_channels), resnets per level (layers_per_block), image and latent channels.
// The GroupNorm group count is the metadata value `norm_num_groups` when the file has one, else 32
// (the SD VAE's); it must divide every norm's channels. A file may hold only the encoder (with
// quant_conv) or only the decoder (with post_quant_conv); calling the missing half is an error.
//
// Images are (B, C, H, W) in [-1, 1] with H and W multiples of the down-sampling factor (8 for
// the SD VAE); latents are (B, latent, H / factor, W / factor). All tensors passed in and out live
// in the backend's memory. The activations of a call live in one workspace on the backend, grown
// when a call needs more. Nothing is printed; bad calls end the program with one error line.
#pragma once
#include "kernels/ops.h"

// DiT's latent scale (docs/algorithm.md 2.8): stored latents = posterior sample * VAE_SCALE_FACTOR.
#define VAE_SCALE_FACTOR 0.18215f

typedef struct Vae Vae;

// NULL with a one-line "PATH: problem" in err when the file is not a usable VAE.
Vae *vae_load(const char *path, const Ops *ops, char *err, int err_size);
void vae_free(Vae *vae);

// images (B, 3, H, W) in [-1, 1] -> the posterior's mean and logvar (B, 4, H/8, W/8), logvar
// clamped to [-30, 20]; not scaled by VAE_SCALE_FACTOR.
void vae_encode(Vae *vae, const float *images, float *mean, float *logvar, int B, int H, int W);
// latents (B, 4, h, w), already divided by the scale factor -> images (B, 3, 8h, 8w), unclamped.
void vae_decode(Vae *vae, const float *latents, float *images, int B, int h, int w);

// What the file holds and the inferred shape (the SD VAE: both halves, 4, 3 and 8).
int vae_has_encoder(const Vae *vae);
int vae_has_decoder(const Vae *vae);
int vae_latent_channels(const Vae *vae);
int vae_image_channels(const Vae *vae); // the encoder's input = the decoder's output
int vae_downsampling(const Vae *vae);   // image pixels per latent pixel along each side
