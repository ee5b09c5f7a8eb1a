// tests/parity_vae.c: drives the SD VAE for tests/vae_parity.sh.
//   parity_vae info W                   prints the inferred shape, parameter and tensor counts
//   parity_vae encode W IN OUT          IN: images (B, C, H, W); OUT: mean, logvar
//   parity_vae decode W IN OUT          IN: latents (B, latent, h, w); OUT: images
//   parity_vae npz OUT [zip64]          writes arr_0 = (i * 7 + 3) mod 256 of shape (2, 3, 5, 3)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "data/npz.h"
#include "data/safetensors.h"
#include "model/vae.h"
#include "model/vae_net.h"

static void info(const char *path) {
    VaeNet net;
    float *params;
    char err[512];
    if (vae_net_load(path, &net, &params, err, sizeof(err))) die("%s", err);
    const VaeShape *s = &net.shape;
    printf("levels %d channels", s->levels);
    for (int i = 0; i < s->levels; i++) printf("%s%d", i ? "," : " ", s->channels[i]);
    printf(" layers %d latent %d image %d groups %d encoder %d decoder %d parameters %zu tensors %d\n", s->layers,
           s->latent, s->image, s->groups, net.has_encoder, net.has_decoder, net.parameters, net.tensors);
    free(params);
}

// The 4-D tensor `name` of IN, on the CPU backend.
static float *read_input(const char *path, const char *name, int64_t shape[4]) {
    char err[512];
    StFile *f = st_open(path, err, sizeof(err));
    if (!f) die("%s", err);
    const StTensor *t = st_find(f, name);
    if (!t || t->ndim != 4) die("%s: want a 4-D tensor '%s'", path, name);
    memcpy(shape, t->shape, 4 * sizeof(int64_t));
    float *x = xmalloc(sizeof(float) * (size_t)st_numel(t));
    if (st_read_f32(f, t, x, err, sizeof(err))) die("%s", err);
    st_close(f);
    return x;
}

static void run(const char *what, const char *weights, const char *in, const char *out) {
    char err[512];
    Vae *vae = vae_load(weights, &ops_cpu, err, sizeof(err));
    if (!vae) die("%s", err);
    int decode = strcmp(what, "decode") == 0;
    int64_t s[4];
    float *x = read_input(in, decode ? "latents" : "images", s);
    StWriter *w = st_writer_new();
    float *y, *logvar = NULL;
    if (decode) {
        int f = vae_downsampling(vae);
        int64_t shape[4] = {s[0], vae_image_channels(vae), s[2] * f, s[3] * f};
        y = xmalloc(sizeof(float) * (size_t)(shape[0] * shape[1] * shape[2] * shape[3]));
        vae_decode(vae, x, y, (int)s[0], (int)s[2], (int)s[3]);
        st_writer_add(w, "images", ST_F32, 4, shape, y);
    } else {
        int f = vae_downsampling(vae);
        int64_t shape[4] = {s[0], vae_latent_channels(vae), s[2] / f, s[3] / f};
        size_t n = (size_t)(shape[0] * shape[1] * shape[2] * shape[3]);
        y = xmalloc(sizeof(float) * n), logvar = xmalloc(sizeof(float) * n);
        vae_encode(vae, x, y, logvar, (int)s[0], (int)s[2], (int)s[3]);
        st_writer_add(w, "mean", ST_F32, 4, shape, y);
        st_writer_add(w, "logvar", ST_F32, 4, shape, logvar);
    }
    if (st_writer_save(w, out, err, sizeof(err))) die("%s", err);
    st_writer_free(w);
    vae_free(vae);
    free(x), free(y), free(logvar);
}

static void write_npz(const char *path, int zip64) {
    int64_t shape[4] = {2, 3, 5, 3};
    uint8_t data[90];
    for (int i = 0; i < 90; i++) data[i] = (uint8_t)((i * 7 + 3) % 256);
    char err[512];
    NpzWriter *w = npz_open(path, 4, shape, zip64, err, sizeof(err));
    // two appends: the writer streams
    if (!w || npz_append(w, data, 40, err, sizeof(err)) || npz_append(w, data + 40, 50, err, sizeof(err)) ||
        npz_close(w, err, sizeof(err)))
        die("%s", err);
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "info") == 0)
        info(argv[2]);
    else if (argc == 5 && (strcmp(argv[1], "encode") == 0 || strcmp(argv[1], "decode") == 0))
        run(argv[1], argv[2], argv[3], argv[4]);
    else if ((argc == 3 || (argc == 4 && strcmp(argv[3], "zip64") == 0)) && strcmp(argv[1], "npz") == 0)
        write_npz(argv[2], argc == 4);
    else
        die("usage: parity_vae info W | encode W IN OUT | decode W IN OUT | npz OUT [zip64]");
    return 0;
}
