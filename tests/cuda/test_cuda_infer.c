// tests/cuda/test_cuda_infer.c: DyDiT inference on the CUDA backend. As tests/test_dydit_infer.c
// does on the CPU, the dynamic engine (packed head and group slices, gathered kept tokens) must
// compute what the masked training-form forward computes in eval mode, now on the GPU; both must
// match their CPU twins, with identical token decisions. Then a 10-step DDPM sampling loop with
// classifier-free guidance on the dynamic engine, CPU against GPU: the initial latents and every
// step's noise bit for bit, every step's token decisions, and the samples.
//
// In fp32 the weights leave token logits around 0, so samples keep different tokens. In bf16 the
// logits move by ~1e-2 and would flip the decisions that lie that close to the threshold, a
// difference that is not an error: there router biases of +-100 fix every decision
// (force_decisions).
#include "model/sampler.h"
#include "tests/cuda/gpu_check.h"
#include "tests/cuda/tiny_dydit.h"

// fp32: the engines sum in other orders than the masked forward and than the CPU: 1e-5 (as the
// CPU test). bf16: GEMM and attention inputs rounded to 8 bits, through a whole network: 2e-2.
static double forward_tol(CudaPrecision p) { return p == CUDA_PRECISION_FP32 ? 1e-5 : 2e-2; }
// Ten guided steps: guidance scale 4 multiplies a difference of the two halves' outputs by 4 and
// later steps carry the earlier ones' differences: fp32 1e-4; bf16 5e-2 (the CPU with its GEMM and
// attention inputs rounded to bf16 ends 6e-3 away).
static double sample_tol(CudaPrecision p) { return p == CUDA_PRECISION_FP32 ? 1e-4 : 5e-2; }

typedef struct {
    DitModel cpu, gpu;
} Twins;

static void twins_create(Twins *w, const DitConfig *cfg, int B, int forced) {
    dit_model_create(&w->cpu, cfg, &ops_cpu);
    dit_model_create(&w->gpu, cfg, &ops_cuda);
    dit_model_plan(&w->cpu, B);
    dit_model_plan(&w->gpu, B);
    float *host = tiny_dydit_params(cfg, &w->cpu.table, 40);
    if (forced) force_decisions(cfg, &w->cpu.table, host);
    size_t bytes = w->cpu.table.total * sizeof(float);
    memcpy(w->cpu.params, host, bytes);
    ops_cuda.upload(w->gpu.params, host, bytes);
    free(host);
}

static void twins_destroy(Twins *w) {
    dit_model_destroy(&w->cpu);
    dit_model_destroy(&w->gpu);
}

static void check_close(const char *label, const char *what, const float *got, const float *want, size_t n,
                        double tol) {
    char name[200];
    snprintf(name, sizeof(name), "%s.%s", label, what);
    double rel = rel_error(got, want, n);
    check(rel <= tol, name, "rel %.2e, tolerance %.0e", rel, tol);
}

static void check_same(const char *label, const char *what, const float *got, const float *want, size_t n) {
    char name[200];
    snprintf(name, sizeof(name), "%s.%s", label, what);
    size_t first, bad = bit_mismatches(got, want, n, &first);
    check(bad == 0, name, "%zu of %zu differ", bad, n);
}

// Masked eval forward and dynamic engine, each on both backends, every sample at timestep t.
static void engine_parity(const char *tag, const DitConfig *cfg, int B, float t, CudaPrecision prec) {
    cuda_set_precision(prec);
    int forced = prec == CUDA_PRECISION_BF16;
    char label[96];
    snprintf(label, sizeof(label), "cuda.infer.%s.%s", tag, precision_name(prec));
    Twins w;
    twins_create(&w, cfg, B, forced);
    int T = dit_tokens(cfg);
    size_t nin = (size_t)B * cfg->in_channels * cfg->input_size * cfg->input_size;
    size_t nout = (size_t)B * dit_out_channels(cfg) * cfg->input_size * cfg->input_size,
           nt = (size_t)B * cfg->depth * T;
    float *x = xmalloc(nin * sizeof(float)), *ts = xmalloc(B * sizeof(float));
    int32_t *y = xmalloc(B * sizeof(int32_t));
    fill_normal(x, nin, 1, 9);
    for (int b = 0; b < B; b++) {
        ts[b] = t;
        y[b] = b % (cfg->num_classes + 1); // the null class too, as guidance batches have
    }
    DitRouting eval = dit_routing_eval();

    memcpy(w.cpu.act.x, x, nin * sizeof(float));
    dit_forward(&w.cpu, ts, y, B, &eval);
    float *cpu_masked = host_copy(&ops_cpu, w.cpu.act.out, nout), *cpu_out = xmalloc(nout * sizeof(float));
    DitInfer *ce = dit_infer_create(&w.cpu, B, 1);
    dit_infer_forward(ce, w.cpu.act.x, t, y, B, cpu_out);

    ops_cuda.upload(w.gpu.act.x, x, nin * sizeof(float));
    dit_forward(&w.gpu, ts, y, B, &eval);
    float *gpu_masked = host_copy(&ops_cuda, w.gpu.act.out, nout),
          *gpu_masks = host_copy(&ops_cuda, w.gpu.act.token_mask, nt);
    float *dev_out = ops_cuda.alloc(nout * sizeof(float));
    DitInfer *ge = dit_infer_create(&w.gpu, B, 1);
    dit_infer_forward(ge, w.gpu.act.x, t, y, B, dev_out);
    float *gpu_out = host_copy(&ops_cuda, dev_out, nout);

    double tol = forward_tol(prec);
    check_close(label, "gpu_engine_equals_gpu_masked_forward", gpu_out, gpu_masked, nout, tol);
    check_close(label, "gpu_engine_equals_cpu_engine", gpu_out, cpu_out, nout, tol);
    check_close(label, "gpu_masked_forward_equals_cpu", gpu_masked, cpu_masked, nout, tol);
    check_same(label, "token_decisions.gpu_engine_vs_cpu_engine", dit_infer_token_keep(ge), dit_infer_token_keep(ce),
               nt);
    check_same(label, "token_decisions.gpu_engine_vs_gpu_masked", dit_infer_token_keep(ge), gpu_masks, nt);
    InferStats gs = dit_infer_stats(ge), cs = dit_infer_stats(ce);
    char name[200];
    snprintf(name, sizeof(name), "%s.same_work", label);
    check(gs.macs == cs.macs && gs.head_keep == cs.head_keep && gs.group_keep == cs.group_keep, name,
          "heads %.2f groups %.2f tokens %.2f on; %.3g of %.3g static MACs", gs.head_keep, gs.group_keep, gs.token_keep,
          gs.macs, gs.static_macs);
    // a second call at the same timestep reuses the packed slices and repeats itself bit for bit
    long packs = dit_infer_repacks(ge);
    ops_cuda.zero(dev_out, nout * sizeof(float));
    dit_infer_forward(ge, w.gpu.act.x, t, y, B, dev_out);
    float *again = host_copy(&ops_cuda, dev_out, nout);
    snprintf(name, sizeof(name), "%s.repeat_bitwise", label);
    check(dit_infer_repacks(ge) == packs && memcmp(again, gpu_out, nout * sizeof(float)) == 0, name, "%ld packs",
          packs);

    dit_infer_destroy(ce), dit_infer_destroy(ge);
    ops_cuda.release(dev_out);
    free(x), free(ts), free(y), free(cpu_masked), free(cpu_out), free(gpu_masked), free(gpu_masks), free(gpu_out);
    free(again);
    twins_destroy(&w);
}

// Token decisions of every step of a sampling run, (steps, 2n, L, T).
typedef struct {
    float *keep;
    size_t per_step;
} StepDecisions;

static void record_decisions(void *ctx, int index, int timestep, const DitInfer *engine) {
    StepDecisions *d = ctx;
    memcpy(d->keep + (size_t)index * d->per_step, dit_infer_token_keep(engine), d->per_step * sizeof(float));
}

typedef struct {
    float *samples, *trace;
    StepDecisions decisions;
} SampleRun;

static SampleRun sample(const DitModel *m, const SamplerConfig *sc, const int32_t *y, int n) {
    const DitConfig *cfg = &m->cfg;
    const Ops *o = m->ops;
    Sampler *s = sampler_create(m, sc, n, 1);
    int S = sampler_steps(s);
    size_t latent = (size_t)cfg->in_channels * cfg->input_size * cfg->input_size;
    SampleRun r = {.trace = xmalloc((size_t)(S + 1) * n * latent * sizeof(float))};
    r.decisions.per_step = (size_t)2 * n * cfg->depth * dit_tokens(cfg);
    r.decisions.keep = xmalloc((size_t)S * r.decisions.per_step * sizeof(float));
    SamplerRecord rec = {.trace = r.trace, .on_step = record_decisions, .ctx = &r.decisions};
    float *x = o->alloc((size_t)n * latent * sizeof(float));
    sampler_run(s, y, n, 0, x, &rec);
    r.samples = host_copy(o, x, (size_t)n * latent);
    o->release(x);
    sampler_destroy(s);
    return r;
}

static void sampling_parity(const char *tag, const DitConfig *cfg, CudaPrecision prec) {
    cuda_set_precision(prec);
    char label[96];
    snprintf(label, sizeof(label), "cuda.sample.%s.%s", tag, precision_name(prec));
    enum { N = 3 };
    Twins w;
    twins_create(&w, cfg, 2 * N, prec == CUDA_PRECISION_BF16);
    SamplerConfig sc = {.kind = SAMPLER_DDPM, .spacing = "10", .cfg_scale = 4.0f, .seed = 7};
    static const int32_t y[N] = {0, 2, 4};
    SampleRun c = sample(&w.cpu, &sc, y, N), g = sample(&w.gpu, &sc, y, N);
    size_t latent = (size_t)cfg->in_channels * cfg->input_size * cfg->input_size;
    check_same(label, "initial_latents_and_noise", g.trace, c.trace, 11 * N * latent);
    check_same(label, "token_decisions_every_step", g.decisions.keep, c.decisions.keep, 10 * c.decisions.per_step);
    check_close(label, "samples", g.samples, c.samples, N * latent, sample_tol(prec));
    SampleRun *runs[2] = {&c, &g};
    for (int i = 0; i < 2; i++) free(runs[i]->samples), free(runs[i]->trace), free(runs[i]->decisions.keep);
    twins_destroy(&w);
}

int main(void) {
    gpu_init();
    CudaPrecision precisions[2] = {CUDA_PRECISION_FP32, CUDA_PRECISION_BF16};
    DitConfig hd72 = tiny_dydit(3, 144, 2), hd48 = tiny_dydit(4, 96, 2), heads4 = tiny_dydit(2, 192, 4);
    DitConfig sampled = tiny_dydit(2, 144, 2);
    for (int p = 0; p < 2; p++) {
        engine_parity("depth3_hidden144_hd72", &hd72, 4, 250.0f, precisions[p]);
        engine_parity("depth4_hidden96_hd48", &hd48, 5, 999.0f, precisions[p]);
        engine_parity("depth2_hidden192_heads4", &heads4, 3, 10.0f, precisions[p]);
        sampling_parity("ddpm10_cfg4_hidden144", &sampled, precisions[p]);
    }
    return check_exit();
}
