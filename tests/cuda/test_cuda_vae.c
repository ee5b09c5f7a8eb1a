// tests/cuda/test_cuda_vae.c: the SD VAE (model/vae.h) on the CUDA backend against the CPU: a
// small VAE with random weights (three levels of 32, 64, 64 channels, one resnet per encoder level,
// 8 GroupNorm groups; level 1 changes width, so resnets with a 1x1 shortcut run too), encoded and
// decoded by both backends from the same weights file. The weights are written here with diffusers
// names as tests/ref/vae_case.py writes them: convolutions N(0, 1 / fan_in), biases and norm
// affines off their defaults, and the logvar half of quant_conv scaled by 30 so that part of the
// logvar is clamped to [-30, 20].
// Usage: test_cuda_vae WORKDIR
#include "data/safetensors.h"
#include "model/vae.h"
#include "tests/cuda/gpu_check.h"
#include "tests/workdir.h"

enum { LEVELS = 3, LAYERS = 1, GROUPS = 8, IMAGE = 3, LATENT = 4 };
static const int channels[LEVELS] = {32, 64, 64};

// fp32: convolutions of up to 576 products, GroupNorm statistics and a softmax over the pixels,
// summed in other orders through ~20 layers: 1e-4. bf16: the convolutions' and the attention's
// inputs rounded to 8 bits through the same layers: 3e-2.
static double vae_tol(CudaPrecision p) { return p == CUDA_PRECISION_FP32 ? 1e-4 : 3e-2; }

typedef struct {
    StWriter *w;
    float *data[512];
    int count;
    uint32_t stream;
} Weights;

static void tensor(Weights *v, const char *name, int ndim, const int64_t *shape, float sd, float mean) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    if (v->count == 512) die("internal: too many VAE tensors");
    float *x = v->data[v->count++] = xmalloc(n * sizeof(float));
    fill_normal(x, n, sd, v->stream++);
    for (size_t i = 0; i < n; i++) x[i] += mean;
    st_writer_add(v->w, name, ST_F32, ndim, shape, x);
}

static void conv(Weights *v, const char *prefix, int cin, int cout, int k) {
    char name[160];
    int64_t w[4] = {cout, cin, k, k}, b[1] = {cout};
    snprintf(name, sizeof(name), "%s.weight", prefix);
    tensor(v, name, 4, w, 1 / sqrtf((float)cin * k * k), 0);
    snprintf(name, sizeof(name), "%s.bias", prefix);
    tensor(v, name, 1, b, 0.1f, 0);
}

static void norm(Weights *v, const char *prefix, int c) {
    char name[176];
    int64_t s[1] = {c};
    snprintf(name, sizeof(name), "%s.weight", prefix);
    tensor(v, name, 1, s, 0.1f, 1);
    snprintf(name, sizeof(name), "%s.bias", prefix);
    tensor(v, name, 1, s, 0.1f, 0);
}

static void resnet(Weights *v, const char *prefix, int cin, int cout) {
    char name[160];
    snprintf(name, sizeof(name), "%s.norm1", prefix), norm(v, name, cin);
    snprintf(name, sizeof(name), "%s.conv1", prefix), conv(v, name, cin, cout, 3);
    snprintf(name, sizeof(name), "%s.norm2", prefix), norm(v, name, cout);
    snprintf(name, sizeof(name), "%s.conv2", prefix), conv(v, name, cout, cout, 3);
    if (cin != cout) snprintf(name, sizeof(name), "%s.conv_shortcut", prefix), conv(v, name, cin, cout, 1);
}

static void mid(Weights *v, const char *prefix, int c) {
    static const char *parts[4] = {"to_q", "to_k", "to_v", "to_out.0"};
    char name[160];
    snprintf(name, sizeof(name), "%s.resnets.0", prefix), resnet(v, name, c, c);
    snprintf(name, sizeof(name), "%s.attentions.0.group_norm", prefix), norm(v, name, c);
    for (int i = 0; i < 4; i++) {
        int64_t w[2] = {c, c}, b[1] = {c};
        snprintf(name, sizeof(name), "%s.attentions.0.%s.weight", prefix, parts[i]);
        tensor(v, name, 2, w, 1 / sqrtf((float)c), 0);
        snprintf(name, sizeof(name), "%s.attentions.0.%s.bias", prefix, parts[i]);
        tensor(v, name, 1, b, 0.1f, 0);
    }
    snprintf(name, sizeof(name), "%s.resnets.1", prefix), resnet(v, name, c, c);
}

// Writes the VAE described above to path.
static void write_vae(const char *path) {
    Weights v = {.w = st_writer_new(), .stream = 500};
    char name[160];
    const int top = channels[LEVELS - 1];
    conv(&v, "encoder.conv_in", IMAGE, channels[0], 3);
    int cin = channels[0];
    for (int i = 0; i < LEVELS; i++) {
        for (int j = 0; j < LAYERS; j++) {
            snprintf(name, sizeof(name), "encoder.down_blocks.%d.resnets.%d", i, j);
            resnet(&v, name, j ? channels[i] : cin, channels[i]);
        }
        if (i < LEVELS - 1) {
            snprintf(name, sizeof(name), "encoder.down_blocks.%d.downsamplers.0.conv", i);
            conv(&v, name, channels[i], channels[i], 3);
        }
        cin = channels[i];
    }
    mid(&v, "encoder.mid_block", top);
    norm(&v, "encoder.conv_norm_out", top);
    conv(&v, "encoder.conv_out", top, 2 * LATENT, 3);
    conv(&v, "quant_conv", 2 * LATENT, 2 * LATENT, 1);
    float *quant = v.data[v.count - 2]; // (2z, 2z, 1, 1): the logvar rows are the last z
    for (int i = LATENT * 2 * LATENT; i < 4 * LATENT * LATENT; i++) quant[i] *= 30;

    conv(&v, "post_quant_conv", LATENT, LATENT, 1);
    conv(&v, "decoder.conv_in", LATENT, top, 3);
    mid(&v, "decoder.mid_block", top);
    cin = top;
    for (int u = 0; u < LEVELS; u++) { // up block u works on level LEVELS - 1 - u
        int c = channels[LEVELS - 1 - u];
        for (int j = 0; j < LAYERS + 1; j++) {
            snprintf(name, sizeof(name), "decoder.up_blocks.%d.resnets.%d", u, j);
            resnet(&v, name, j ? c : cin, c);
        }
        if (u < LEVELS - 1) {
            snprintf(name, sizeof(name), "decoder.up_blocks.%d.upsamplers.0.conv", u);
            conv(&v, name, c, c, 3);
        }
        cin = c;
    }
    norm(&v, "decoder.conv_norm_out", channels[0]);
    conv(&v, "decoder.conv_out", channels[0], IMAGE, 3);
    st_writer_meta(v.w, "norm_num_groups", "8");
    char err[512];
    if (st_writer_save(v.w, path, err, sizeof(err))) die("%s", err);
    st_writer_free(v.w);
    for (int i = 0; i < v.count; i++) free(v.data[i]);
}

static Vae *load(const char *path, const Ops *o) {
    char err[512];
    Vae *vae = vae_load(path, o, err, sizeof(err));
    if (!vae) die("%s", err);
    return vae;
}

static void check_close(const char *label, const char *what, const float *got, const float *want, size_t n,
                        double tol) {
    char name[200];
    snprintf(name, sizeof(name), "%s.%s", label, what);
    double rel = rel_error(got, want, n);
    check(rel <= tol, name, "rel %.2e, tolerance %.0e, %zu elements", rel, tol, n);
}

int main(int argc, char **argv) {
    if (argc != 2) die("usage: test_cuda_vae WORKDIR");
    gpu_init();
    workdir_init(argv[1], "cuda_vae");
    char *path = path_in("vae.safetensors");
    write_vae(path);
    Vae *cpu = load(path, &ops_cpu), *gpu = load(path, &ops_cuda);
    int f = vae_downsampling(cpu), B = 2, H = 32, W = 40, h = H / f, w = W / f;
    size_t nimg = (size_t)B * IMAGE * H * W, nlat = (size_t)B * LATENT * h * w;
    float *images = xmalloc(nimg * sizeof(float)), *latents = xmalloc(nlat * sizeof(float));
    for (size_t i = 0; i < nimg; i++) images[i] = (float)(2 * rng_open01(rng_u32(3, RNG_DATA, 0, 0, i)) - 1);
    fill_normal(latents, nlat, 1, 4);

    // the CPU reference
    float *cpu_mean = xmalloc(nlat * sizeof(float)), *cpu_logvar = xmalloc(nlat * sizeof(float));
    float *cpu_images = xmalloc(nimg * sizeof(float));
    vae_encode(cpu, images, cpu_mean, cpu_logvar, B, H, W);
    vae_decode(cpu, latents, cpu_images, B, h, w);
    size_t clamped = 0;
    for (size_t i = 0; i < nlat; i++) clamped += cpu_logvar[i] == -30.0f || cpu_logvar[i] == 20.0f;
    check(clamped > 0 && clamped < nlat, "cuda.vae.logvar_partly_clamped", "%zu of %zu at a bound", clamped, nlat);

    float *d_images = gpu_from_host(images, nimg * sizeof(float)),
          *d_latents = gpu_from_host(latents, nlat * sizeof(float));
    float *d_mean = ops_cuda.alloc(nlat * sizeof(float)), *d_logvar = ops_cuda.alloc(nlat * sizeof(float));
    float *d_out = ops_cuda.alloc(nimg * sizeof(float));
    CudaPrecision precisions[2] = {CUDA_PRECISION_FP32, CUDA_PRECISION_BF16};
    for (int p = 0; p < 2; p++) {
        cuda_set_precision(precisions[p]);
        char label[64];
        snprintf(label, sizeof(label), "cuda.vae.%s", precision_name(precisions[p]));
        double tol = vae_tol(precisions[p]);
        float *first[3];
        for (int run = 0; run < 2; run++) {
            // zeroed outputs, so that results left from an earlier run cannot pass for this one's
            ops_cuda.zero(d_mean, nlat * sizeof(float));
            ops_cuda.zero(d_logvar, nlat * sizeof(float));
            ops_cuda.zero(d_out, nimg * sizeof(float));
            vae_encode(gpu, d_images, d_mean, d_logvar, B, H, W);
            vae_decode(gpu, d_latents, d_out, B, h, w);
            float *got[3] = {host_copy(&ops_cuda, d_mean, nlat), host_copy(&ops_cuda, d_logvar, nlat),
                             host_copy(&ops_cuda, d_out, nimg)};
            if (run == 0) {
                check_close(label, "encode.mean", got[0], cpu_mean, nlat, tol);
                check_close(label, "encode.logvar", got[1], cpu_logvar, nlat, tol);
                check_close(label, "decode.images", got[2], cpu_images, nimg, tol);
                memcpy(first, got, sizeof(got));
                continue;
            }
            char name[96];
            snprintf(name, sizeof(name), "%s.deterministic", label);
            check_true(!memcmp(got[0], first[0], nlat * sizeof(float)) &&
                           !memcmp(got[1], first[1], nlat * sizeof(float)) &&
                           !memcmp(got[2], first[2], nimg * sizeof(float)),
                       name);
            for (int i = 0; i < 3; i++) free(got[i]), free(first[i]);
        }
    }
    ops_cuda.release(d_images), ops_cuda.release(d_latents), ops_cuda.release(d_mean), ops_cuda.release(d_logvar);
    ops_cuda.release(d_out);
    vae_free(cpu), vae_free(gpu);
    free(images), free(latents), free(cpu_mean), free(cpu_logvar), free(cpu_images), free(path);
    return check_exit();
}
