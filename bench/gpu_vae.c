// bench/gpu_vae.c: SD VAE encoder images/s on the GPU (the encoder of `dydit encode`; weights from a
// file, random ones serve: the speed does not depend on the values). Best of REPEATS synchronised
// runs after one warm-up. Prints one JSON line.
// Usage: gpu_vae [--device cuda|cpu] WEIGHTS.safetensors BATCH SIZE REPEATS
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/gpu_bench.h"
#include "model/vae.h"

int main(int argc, char **argv) {
    const char *device = "cuda";
    int i = 1;
    if (argc > 2 && strcmp(argv[1], "--device") == 0) device = argv[2], i = 3;
    if (argc - i != 4) die("usage: gpu_vae [--device cuda|cpu] WEIGHTS.safetensors BATCH SIZE REPEATS");
    int B = atoi(argv[i + 1]), size = atoi(argv[i + 2]), repeats = atoi(argv[i + 3]);
    if (B < 1 || size < 8 || repeats < 1)
        die("usage: gpu_vae [--device cuda|cpu] WEIGHTS.safetensors BATCH SIZE REPEATS");
    const Ops *ops = bench_backend(device);
    char err[512];
    Vae *vae = vae_load(argv[i], ops, err, sizeof(err));
    if (!vae) die("%s", err);
    int side = size / vae_downsampling(vae);
    size_t latent = (size_t)B * vae_latent_channels(vae) * side * side;
    size_t pixels = (size_t)vae_image_channels(vae) * size * size;
    float *images = ops->alloc((size_t)B * pixels * sizeof(float)), *mean = ops->alloc(latent * sizeof(float)),
          *logvar = ops->alloc(latent * sizeof(float));
    ops->randn(images, 5, RNG_DATA, 0, 0, B, pixels);
    ops->scale(images, 0.5f, (size_t)B * pixels);
    double best = 1e30;
    for (int r = -1; r < repeats; r++) { // r = -1: warm-up
        ops->synchronize();
        double start = now_seconds();
        vae_encode(vae, images, mean, logvar, B, size, size);
        ops->synchronize();
        double seconds = now_seconds() - start;
        if (r >= 0 && seconds < best) best = seconds;
    }
    printf("{\"bench\":\"vae_encode\",\"impl\":\"dydit\",\"device\":\"%s\",\"precision\":\"%s\",\"batch\":%d,"
           "\"size\":%d,\"repeats\":%d,\"seconds\":%.4f,\"images_per_s\":%.4g}\n",
           ops->name, ops == &ops_cpu ? "fp32" : "bf16", B, size, repeats, best, B / best);
    ops->release(images);
    ops->release(mean);
    ops->release(logvar);
    vae_free(vae);
    return 0;
}
