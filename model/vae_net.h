// model/vae_net.h: the layers of an SD (KL-f8) VAE as offsets into one flat parameter buffer,
// as the loader (model/vae_load.c) lays them out and the forward passes (model/vae.c) read them.
//
// Level i of either half works at 1/2^i of the image resolution with channels[i] channels
// (docs/algorithm.md 8.2, 8.3). The encoder runs levels 0 .. levels-1, each `layers` resnets then a stride-2
// down-sampler (all but the last level); the decoder runs them in reverse, each `layers + 1`
// resnets then a nearest x2 up-sampler (all but level 0).
#pragma once
#include <stddef.h>

enum { VAE_MAX_LEVELS = 8, VAE_MAX_LAYERS = 8 };

// Offsets are in floats from the start of the parameter buffer.
typedef struct {
    size_t weight, bias; // weight (cout, cin, k, k), bias (cout)
    int cin, cout, k;
} VaeConv;

typedef struct {
    size_t gamma, beta; // (channels)
    int channels;
} VaeNorm;

typedef struct {
    VaeNorm norm1, norm2;
    VaeConv conv1, conv2; // 3x3
    VaeConv shortcut;     // 1x1, on the residual when cin != cout
    int has_shortcut;
} VaeResnet;

// Single-head self-attention over the pixels; q, k and v are packed into one Linear.
typedef struct {
    VaeNorm norm;
    size_t qkv_weight, qkv_bias; // (3C, C), (3C): q, k, v rows in that order
    size_t out_weight, out_bias; // (C, C), (C)
    int channels;
} VaeAttention;

typedef struct {
    VaeResnet first;
    VaeAttention attention;
    VaeResnet second;
} VaeMid;

typedef struct {
    int levels, layers; // layers: resnets per encoder level (decoder levels hold one more)
    int channels[VAE_MAX_LEVELS];
    int image;  // channels of the encoder's input and of the decoder's output
    int latent; // latent channels (the encoder produces twice as many: mean, logvar)
    int groups; // GroupNorm groups of every norm
} VaeShape;

typedef struct {
    VaeConv conv_in;
    VaeResnet resnets[VAE_MAX_LEVELS][VAE_MAX_LAYERS + 1];
    VaeConv resample[VAE_MAX_LEVELS]; // encoder: down-sampler after level i; decoder: up-sampler after level i
    VaeMid mid;
    VaeNorm norm_out;
    VaeConv conv_out;
    VaeConv quant; // 1x1: quant_conv after the encoder, post_quant_conv before the decoder
} VaeHalf;

typedef struct {
    VaeShape shape;
    int has_encoder, has_decoder;
    VaeHalf encoder, decoder;
    size_t parameters; // floats in the buffer
    int tensors;       // file tensors they came from
} VaeNet;

// Reads a VAE weights file (diffusers or CompVis names, docs/algorithm.md 8.4; F32, F16, BF16 or F64): infers
// the shape, checks every tensor against it and returns the parameters in a new host buffer
// (net->parameters floats, free with free()). 0, or -1 with a one-line "PATH: problem" in err.
int vae_net_load(const char *path, VaeNet *net, float **params, char *err, int err_size);
