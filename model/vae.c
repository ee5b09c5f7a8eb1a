// model/vae.c: the SD VAE's encoder and decoder as op calls (docs/algorithm.md 8.2, 8.3).
//
// The activation between layers lives in one of three equal buffers (x); the other two (t1, t2)
// hold a layer's intermediate results, and a down-sampler's output becomes x by swapping. The
// mid-block attention has two more buffers: q, k, v (B, T, 3C) and the softmax probabilities
// (B, T, T). All five are carved from one workspace, planned for the largest activation of the
// call and grown when a later call needs more.
#include "model/vae.h"

#include <stdlib.h>

#include "common/util.h"
#include "model/vae_net.h"

#define NORM_EPS 1e-6f
#define LOGVAR_MIN -30.0f
#define LOGVAR_MAX 20.0f

struct Vae {
    const Ops *ops;
    char *path;
    VaeNet net;
    float *params; // backend, net.parameters floats
    float *workspace;
    size_t capacity; // floats in workspace
};

typedef struct {
    float *x, *t1, *t2; // (B, C, h, w) each, for the largest C*h*w of the call
    float *qkv, *probs; // (B, T, 3C), (B, T, T) of the mid-block attention
} Buffers;

Vae *vae_load(const char *path, const Ops *ops, char *err, int err_size) {
    Vae *v = xcalloc(1, sizeof(Vae));
    float *host;
    if (vae_net_load(path, &v->net, &host, err, err_size)) {
        free(v);
        return NULL;
    }
    v->ops = ops;
    v->path = xstrdup(path);
    size_t bytes = sizeof(float) * v->net.parameters;
    v->params = ops->alloc(bytes);
    ops->upload(v->params, host, bytes);
    free(host);
    return v;
}

void vae_free(Vae *vae) {
    if (!vae) return;
    vae->ops->release(vae->params);
    if (vae->workspace) vae->ops->release(vae->workspace);
    free(vae->path);
    free(vae);
}

int vae_has_encoder(const Vae *vae) { return vae->net.has_encoder; }
int vae_has_decoder(const Vae *vae) { return vae->net.has_decoder; }
int vae_latent_channels(const Vae *vae) { return vae->net.shape.latent; }
int vae_image_channels(const Vae *vae) { return vae->net.shape.image; }
int vae_downsampling(const Vae *vae) { return 1 << (vae->net.shape.levels - 1); }

/* ---------------------------------------------------------------------------------------------
 * Workspace
 * ------------------------------------------------------------------------------------------- */

// Floats of one image's largest activation when the lowest-resolution level is h x w: level i
// runs at 2^(levels-1-i) times that, on its own channels and those of the level that feeds it
// (i - 1 in the encoder, i + 1 in the decoder).
static size_t largest_activation(const VaeShape *s, int decoder, int h, int w) {
    size_t most = (size_t)2 * s->latent * h * w;
    for (int i = 0; i < s->levels; i++) {
        int feeder = decoder ? (i + 1 < s->levels ? i + 1 : i) : (i > 0 ? i - 1 : 0);
        int c = s->channels[i] > s->channels[feeder] ? s->channels[i] : s->channels[feeder];
        size_t pixels = ((size_t)h << (s->levels - 1 - i)) * ((size_t)w << (s->levels - 1 - i));
        if ((size_t)c * pixels > most) most = (size_t)c * pixels;
    }
    return most;
}

static Buffers plan(Vae *v, int decoder, int B, int h, int w) {
    const VaeShape *s = &v->net.shape;
    size_t act = (size_t)B * largest_activation(s, decoder, h, w), T = (size_t)h * w;
    size_t qkv = (size_t)B * T * 3 * s->channels[s->levels - 1], probs = (size_t)B * T * T;
    size_t need = 3 * act + qkv + probs;
    if (need > v->capacity) {
        if (v->workspace) v->ops->release(v->workspace);
        v->workspace = v->ops->alloc(sizeof(float) * need);
        v->capacity = need;
    }
    float *base = v->workspace;
    return (Buffers){base, base + act, base + 2 * act, base + 3 * act, base + 3 * act + qkv};
}

static void swap(float **a, float **b) {
    float *t = *a;
    *a = *b;
    *b = t;
}

/* ---------------------------------------------------------------------------------------------
 * Layers
 * ------------------------------------------------------------------------------------------- */

static const float *param(const Vae *v, size_t offset) { return v->params + offset; }

// out (B, cout, h', w') = conv(in (B, cin, h, w)) with the given stride and padding.
static void conv(const Vae *v, float *out, const float *in, const VaeConv *c, int B, int h, int w, int stride,
                 const int pad[4]) {
    v->ops->conv2d_forward(out, in, param(v, c->weight), param(v, c->bias), B, c->cin, h, w, c->cout, c->k, stride,
                           pad[0], pad[1], pad[2], pad[3]);
}

// A stride-1 conv that keeps the size: k x k with padding k / 2.
static void conv_same(const Vae *v, float *out, const float *in, const VaeConv *c, int B, int h, int w) {
    int p = c->k / 2, pad[4] = {p, p, p, p};
    conv(v, out, in, c, B, h, w, 1, pad);
}

static void norm(const Vae *v, float *out, const float *in, const VaeNorm *n, int B, size_t pixels, int silu) {
    v->ops->group_norm_forward(out, in, param(v, n->gamma), param(v, n->beta), B, n->channels, pixels,
                               v->net.shape.groups, NORM_EPS, silu);
}

// x (B, cin, h, w) -> x (B, cout, h, w) = shortcut(x) + conv2(SiLU(norm2(conv1(SiLU(norm1(x)))))),
// the shortcut a 1x1 conv when cin != cout, else the identity.
static void resnet(const Vae *v, Buffers *b, const VaeResnet *r, int B, int h, int w) {
    size_t pixels = (size_t)h * w;
    norm(v, b->t1, b->x, &r->norm1, B, pixels, 1);
    conv_same(v, b->t2, b->t1, &r->conv1, B, h, w);
    norm(v, b->t2, b->t2, &r->norm2, B, pixels, 1);
    conv_same(v, b->t1, b->t2, &r->conv2, B, h, w);
    size_t n = (size_t)B * r->conv2.cout * pixels;
    if (r->has_shortcut) {
        conv_same(v, b->t2, b->x, &r->shortcut, B, h, w);
        v->ops->add(b->x, b->t2, b->t1, n);
    } else {
        v->ops->add(b->x, b->x, b->t1, n);
    }
}

// x (B, C, T) += out(attention(qkv(norm(x)^T)))^T: one head over the T pixels, scale 1/sqrt(C).
static void attention(const Vae *v, Buffers *b, const VaeAttention *a, int B, int T) {
    const Ops *o = v->ops;
    int C = a->channels;
    norm(v, b->t1, b->x, &a->norm, B, (size_t)T, 0);
    o->transpose(b->t2, b->t1, B, C, T); // (B, T, C)
    o->matmul_forward(b->qkv, b->t2, param(v, a->qkv_weight), param(v, a->qkv_bias), B * T, C, 3 * C);
    o->attention_forward(b->t1, b->probs, b->qkv, B, T, 1, C);
    o->matmul_forward(b->t2, b->t1, param(v, a->out_weight), param(v, a->out_bias), B * T, C, C);
    o->transpose(b->t1, b->t2, B, T, C); // (B, C, T)
    o->add(b->x, b->x, b->t1, (size_t)B * C * T);
}

static void mid(const Vae *v, Buffers *b, const VaeMid *m, int B, int h, int w) {
    resnet(v, b, &m->first, B, h, w);
    attention(v, b, &m->attention, B, h * w);
    resnet(v, b, &m->second, B, h, w);
}

/* ---------------------------------------------------------------------------------------------
 * Encoder and decoder
 * ------------------------------------------------------------------------------------------- */

// B images of H x W pixels: a positive batch and sides that are multiples of the down-sampling.
static void check_size(const Vae *v, int B, int H, int W) {
    int f = vae_downsampling(v);
    if (B < 1 || H < f || W < f || H % f || W % f)
        die("%s: cannot run on %d images of %dx%d pixels: want at least one image and sides that are multiples of %d",
            v->path, B, H, W, f);
}

void vae_encode(Vae *v, const float *images, float *mean, float *logvar, int B, int H, int W) {
    if (!v->net.has_encoder) die("%s: holds no encoder ('encoder.conv_in.weight'): cannot encode", v->path);
    check_size(v, B, H, W);
    const VaeShape *s = &v->net.shape;
    const VaeHalf *e = &v->net.encoder;
    int last = s->levels - 1, h = H, w = W;
    Buffers b = plan(v, 0, B, H >> last, W >> last);
    conv_same(v, b.x, images, &e->conv_in, B, h, w);
    for (int level = 0; level <= last; level++) {
        for (int j = 0; j < s->layers; j++) resnet(v, &b, &e->resnets[level][j], B, h, w);
        if (level < last) { // zero padding on the right and at the bottom only, then stride 2
            const int pad[4] = {0, 0, 1, 1};
            conv(v, b.t1, b.x, &e->resample[level], B, h, w, 2, pad);
            swap(&b.x, &b.t1);
            h /= 2, w /= 2;
        }
    }
    mid(v, &b, &e->mid, B, h, w);
    norm(v, b.t1, b.x, &e->norm_out, B, (size_t)h * w, 1);
    conv_same(v, b.t2, b.t1, &e->conv_out, B, h, w);
    conv_same(v, b.t1, b.t2, &e->quant, B, h, w); // (B, 2 latent, h, w): mean, then logvar
    size_t n = (size_t)s->latent * h * w;
    for (int i = 0; i < B; i++) {
        v->ops->copy(mean + i * n, b.t1 + 2 * i * n, sizeof(float) * n);
        v->ops->clamp(logvar + i * n, b.t1 + (2 * i + 1) * n, LOGVAR_MIN, LOGVAR_MAX, n);
    }
}

void vae_decode(Vae *v, const float *latents, float *images, int B, int h, int w) {
    if (!v->net.has_decoder) die("%s: holds no decoder ('decoder.conv_in.weight'): cannot decode", v->path);
    check_size(v, B, h * vae_downsampling(v), w * vae_downsampling(v));
    const VaeShape *s = &v->net.shape;
    const VaeHalf *d = &v->net.decoder;
    int last = s->levels - 1;
    Buffers b = plan(v, 1, B, h, w);
    conv_same(v, b.t1, latents, &d->quant, B, h, w);
    conv_same(v, b.x, b.t1, &d->conv_in, B, h, w);
    mid(v, &b, &d->mid, B, h, w);
    for (int level = last; level >= 0; level--) {
        for (int j = 0; j <= s->layers; j++) resnet(v, &b, &d->resnets[level][j], B, h, w);
        if (level > 0) {
            v->ops->upsample_nearest2x(b.t1, b.x, B, s->channels[level], h, w);
            h *= 2, w *= 2;
            conv_same(v, b.x, b.t1, &d->resample[level], B, h, w);
        }
    }
    norm(v, b.t1, b.x, &d->norm_out, B, (size_t)h * w, 1);
    conv_same(v, images, b.t1, &d->conv_out, B, h, w);
}
