#include "train/latent_encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/ops.h"
#include "kernels/philox.h"
#include "model/vae.h"

struct LatentEncoder {
    int channels, size, batch;        // of the images
    int latent_c, latent_h, latent_w; // of one latent
    float scale_factor;
    float *mirrored; // (batch, channels, size, size)
    // the VAE, when there is one
    const Ops *ops;
    Vae *vae;
    int vae_channels;                             // image channels the VAE takes
    float *expanded;                              // (batch, vae_channels, size, size): gray repeated to RGB
    float *dev_images, *dev_mean, *dev_logvar;    // backend memory
    float *mean_a, *logvar_a, *mean_b, *logvar_b; // (batch, C, H, W): the image's and its mirror's posterior
};

void latent_encoder_close(LatentEncoder *e) {
    if (!e) return;
    if (e->vae) vae_free(e->vae);
    float *backend[3] = {e->dev_images, e->dev_mean, e->dev_logvar};
    for (int i = 0; i < 3; i++)
        if (backend[i]) e->ops->release(backend[i]);
    free(e->expanded);
    free(e->mirrored);
    free(e->mean_a);
    free(e->logvar_a);
    free(e->mean_b);
    free(e->logvar_b);
    free(e);
}

static int open_vae(LatentEncoder *e, const char *path, const Ops *ops, char *err, int err_size) {
    e->ops = ops;
    if (!(e->vae = vae_load(path, e->ops, err, err_size))) return -1;
    int f = vae_downsampling(e->vae);
    e->vae_channels = vae_image_channels(e->vae);
    if (!vae_has_encoder(e->vae)) return fail_at(err, err_size, path, "holds no encoder (only a decoder)");
    if (e->size % f)
        return fail_at(err, err_size, path, "encodes images whose side is a multiple of %d; --image-size is %d", f,
                       e->size);
    if (e->channels != e->vae_channels && !(e->channels == 1 && e->vae_channels == 3))
        return fail_at(err, err_size, path, "encodes %d-channel images, the source has %d", e->vae_channels,
                       e->channels);
    e->latent_c = vae_latent_channels(e->vae);
    e->latent_h = e->latent_w = e->size / f;
    e->scale_factor = VAE_SCALE_FACTOR;
    size_t image = (size_t)e->batch * e->vae_channels * e->size * e->size;
    size_t latent = (size_t)e->batch * e->latent_c * e->latent_h * e->latent_w;
    e->expanded = xmalloc(sizeof(float) * image);
    e->dev_images = e->ops->alloc(sizeof(float) * image);
    e->dev_mean = e->ops->alloc(sizeof(float) * latent);
    e->dev_logvar = e->ops->alloc(sizeof(float) * latent);
    e->mean_a = xmalloc(sizeof(float) * latent);
    e->logvar_a = xmalloc(sizeof(float) * latent);
    e->mean_b = xmalloc(sizeof(float) * latent);
    e->logvar_b = xmalloc(sizeof(float) * latent);
    return 0;
}

LatentEncoder *latent_encoder_open(const char *kind, const char *vae_path, const Ops *ops, int channels, int size,
                                   int batch, char *err, int err_size) {
    int use_vae = !strcmp(kind, "sd-vae");
    if (!use_vae && strcmp(kind, "identity"))
        return snprintf(err, (size_t)err_size, "unknown --encoder '%s' (want identity or sd-vae)", kind), NULL;
    if (use_vae && (!vae_path || !*vae_path))
        return snprintf(err, (size_t)err_size, "--encoder sd-vae needs --vae WEIGHTS.safetensors"), NULL;
    LatentEncoder *e = xcalloc(1, sizeof(*e));
    e->channels = channels;
    e->size = size;
    e->batch = batch;
    e->latent_c = channels;
    e->latent_h = e->latent_w = size;
    e->scale_factor = 1.0f;
    e->mirrored = xmalloc(sizeof(float) * (size_t)batch * channels * size * size);
    if (use_vae && open_vae(e, vae_path, ops, err, err_size)) {
        latent_encoder_close(e);
        return NULL;
    }
    return e;
}

void latent_encoder_shape(const LatentEncoder *e, int *channels, int *height, int *width, float *scale_factor) {
    *channels = e->latent_c;
    *height = e->latent_h;
    *width = e->latent_w;
    *scale_factor = e->scale_factor;
}

// out (B, C, S, S) = in with every row reversed.
static void mirror_images(const float *in, float *out, int B, int C, int S) {
    for (size_t row = 0; row < (size_t)B * C * S; row++)
        for (int x = 0; x < S; x++) out[row * S + x] = in[row * S + (S - 1 - x)];
}

// mean, logvar (B, C, H, W) on the host for images (B, channels, S, S) on the host.
static void vae_posterior(LatentEncoder *e, const float *images, int B, float *mean, float *logvar) {
    size_t plane = (size_t)e->size * e->size, latent = (size_t)B * e->latent_c * e->latent_h * e->latent_w;
    const float *input = images;
    if (e->channels != e->vae_channels) { // gray to RGB, as PIL's convert("RGB") does
        for (int b = 0; b < B; b++)
            for (int c = 0; c < e->vae_channels; c++)
                memcpy(e->expanded + ((size_t)b * e->vae_channels + c) * plane, images + b * plane,
                       plane * sizeof(float));
        input = e->expanded;
    }
    e->ops->upload(e->dev_images, input, sizeof(float) * (size_t)B * e->vae_channels * plane);
    vae_encode(e->vae, e->dev_images, e->dev_mean, e->dev_logvar, B, e->size, e->size);
    e->ops->download(mean, e->dev_mean, sizeof(float) * latent);
    e->ops->download(logvar, e->dev_logvar, sizeof(float) * latent);
}

// For every sample b: dst[b, flip] = src[b], dst (B, 2, n), src (B, n).
static void put_flip(float *dst, const float *src, int B, size_t n, int flip) {
    for (int b = 0; b < B; b++)
        memcpy(dst + ((size_t)b * 2 + (size_t)flip) * n, src + (size_t)b * n, n * sizeof(float));
}

void latent_encoder_run(LatentEncoder *e, const float *images, const int64_t *items, int B, ShardStorage storage,
                        uint64_t seed, float *latents, float *mean, float *std) {
    size_t n = (size_t)e->latent_c * e->latent_h * e->latent_w;
    if (!e->vae) {
        if (storage == SHARD_SAMPLE) {
            memcpy(latents, images, sizeof(float) * (size_t)B * n);
            return;
        }
        mirror_images(images, e->mirrored, B, e->channels, e->size);
        put_flip(mean, images, B, n, 0);
        put_flip(mean, e->mirrored, B, n, 1);
        memset(std, 0, sizeof(float) * (size_t)B * 2 * n);
        return;
    }
    vae_posterior(e, images, B, e->mean_a, e->logvar_a);
    if (storage == SHARD_SAMPLE) {
        for (int b = 0; b < B; b++)
            for (size_t k = 0; k < n; k++) {
                size_t i = (size_t)b * n + k;
                float eps = rng_normal(seed, RNG_POSTERIOR, UINT32_MAX, (uint32_t)items[b], k);
                latents[i] = e->mean_a[i] + expf(0.5f * e->logvar_a[i]) * eps;
            }
        return;
    }
    mirror_images(images, e->mirrored, B, e->channels, e->size);
    vae_posterior(e, e->mirrored, B, e->mean_b, e->logvar_b);
    for (size_t i = 0; i < (size_t)B * n; i++) {
        e->logvar_a[i] = expf(0.5f * e->logvar_a[i]); // from here on the standard deviations
        e->logvar_b[i] = expf(0.5f * e->logvar_b[i]);
    }
    put_flip(mean, e->mean_a, B, n, 0);
    put_flip(mean, e->mean_b, B, n, 1);
    put_flip(std, e->logvar_a, B, n, 0);
    put_flip(std, e->logvar_b, B, n, 1);
}
