// tests/cuda/test_cuda_step.c: one whole DyDiT stage-1 training step on the CUDA backend against
// the same step on the CPU, from identical parameters, batch and seeds: x_t and the diffusion noise,
// noisy routers, the dynamic and complete paths' diffusion losses and the FLOPs loss, the backward,
// the global gradient norm, AdamW and the EMA, driven as train/trainer.c drives them.
//
// The router noise is what training draws (each backend's rand_logistic of the same Philox stream)
// in fp32. In bf16 the logits move by ~1e-2, which would flip the decisions that lie that close to
// the threshold and make the two steps differ for a reason that is not an error; there the noise
// puts every decision at least 0.5 from its threshold (each side chosen at random), found on the
// CPU by a forward per block.
//
// AdamW starts from moments of earlier steps (step count 100, v ~ 1e-6), so that each update is a
// smooth function of the gradient: at step 1 an update is lr * sign(g), and the sign of a
// near-zero gradient would be left to rounding.
#include <stdbool.h>

#include "model/objective.h"
#include "optim/optimizer.h"
#include "tests/cuda/gpu_check.h"
#include "tests/cuda/tiny_dydit.h"

enum { BATCH = 4 };

typedef struct {
    double loss_terms, grads, router_grads, grad_norm, update, ema;
} StepTol;

// fp32: whole-network rounding of two fp32 backends (summation orders, transcendental functions)
// stays near 1e-6; 1e-4 on the losses (the variational bound is a difference of near-equal logs)
// and on each gradient tensor (some are small differences of large terms); 1e-5 on the global
// norm, a sum dominated by the large gradients. bf16: GEMM and attention inputs rounded to 8 bits
// through two forwards and a backward: 2e-2 on the losses and the norm, 5e-2 per gradient tensor
// and on the AdamW update (a smooth function of the gradient, see above); the CPU with its GEMM
// and attention inputs rounded to bf16 stays below 1.4e-2 on every tensor. The routers' gradients
// are an exception: a mask's straight-through gradient is a sum over a token's channels (or a
// head's tokens) of dout * gate * branch that cancels to a small value, so the rounding of its
// terms is amplified; that CPU emulation reaches 1e-1 on a token router: 3e-1. The EMA moves by
// 1e-4 of the update: 1e-6 in both.
static const StepTol FP32_STEP = {1e-4, 1e-4, 1e-4, 1e-5, 1e-4, 1e-6};
static const StepTol BF16_STEP = {2e-2, 5e-2, 3e-1, 2e-2, 5e-2, 1e-6};

// What both backends start from.
typedef struct {
    const DitConfig *cfg;
    const float *params;                               // (table.total)
    const float *x0;                                   // (B, C, H, W)
    const int32_t *t, *y, *y_complete;                 // (B)
    const float *noise_attn, *noise_mlp, *noise_token; // router noise, or NULL: rand_logistic
    const float *m0, *v0;                              // (trainable) AdamW moments
    long step;
} StepInputs;

// One backend's step and host copies of its results.
typedef struct {
    LossTerms loss;
    double grad_norm;
    OptimStepInfo info;
    float *grads, *params, *m, *v, *ema; // after the step; grads before AdamW
    float *masks;                        // head (B, L, H), chan (B, L, H), token (B, L, T)
} StepResult;

static const uint64_t SEED = 0x5eed;

static StepResult run_step(const Ops *o, const StepInputs *in) {
    const DitConfig *cfg = in->cfg;
    int B = BATCH, L = cfg->depth, H = cfg->heads, T = dit_tokens(cfg);
    DitModel m;
    dit_model_create(&m, cfg, o);
    dit_model_plan(&m, B);
    size_t total = m.table.total, first = m.table.trainable_begin, n = total - first;
    o->upload(m.params, in->params, total * sizeof(float));
    Objective obj;
    objective_create(&obj, o, cfg, B);
    o->upload(obj.x0, in->x0, (size_t)B * obj.sample_numel * sizeof(float));
    o->randn(obj.noise, SEED, RNG_NOISE, (uint32_t)in->step, 0, B, obj.sample_numel);
    size_t nw = (size_t)B * L * (H - 1), nt = (size_t)B * L * T;
    if (in->noise_attn) {
        o->upload(m.act.noise_attn, in->noise_attn, nw * sizeof(float));
        o->upload(m.act.noise_mlp, in->noise_mlp, nw * sizeof(float));
        o->upload(m.act.noise_token, in->noise_token, nt * sizeof(float));
    } else {
        o->rand_logistic(m.act.noise_attn, SEED, RNG_GUMBEL_ATTN, (uint32_t)in->step, 0, B, (size_t)L * (H - 1));
        o->rand_logistic(m.act.noise_mlp, SEED, RNG_GUMBEL_MLP, (uint32_t)in->step, 0, B, (size_t)L * (H - 1));
        o->rand_logistic(m.act.noise_token, SEED, RNG_GUMBEL_TOKEN, (uint32_t)in->step, 0, B, (size_t)L * T);
    }
    DiffusionSchedule sched = diffusion_schedule_linear(1000);
    DynamicTerms dyn = {.stage = 1,
                        .target = 0.5f,
                        .flops_weight = 2.0f,
                        .tau = 5.0f,
                        .threshold = 0.0f,
                        .noisy = 1,
                        .y_complete = in->y_complete};
    StepResult r = {0};
    o->zero(m.grads, total * sizeof(float));
    r.loss = objective_run(&obj, &m, &sched, in->t, in->y, B, 1.0f / B, &dyn);
    r.grads = host_copy(o, m.grads, total);
    r.masks = xmalloc((2 * (size_t)B * L * H + nt) * sizeof(float));
    o->download(r.masks, m.act.head_mask, (size_t)B * L * H * sizeof(float));
    o->download(r.masks + (size_t)B * L * H, m.act.chan_mask, (size_t)B * L * H * sizeof(float));
    o->download(r.masks + 2 * (size_t)B * L * H, m.act.token_mask, nt * sizeof(float));

    OptimConfig oc = optim_config_default();
    oc.weight_decay = 0.01;
    Optimizer opt;
    optim_init(&opt, o, &oc);
    opt.step = in->step;
    float *am = o->alloc(n * sizeof(float)), *av = o->alloc(n * sizeof(float)), *ema = o->alloc(total * sizeof(float));
    o->upload(am, in->m0, n * sizeof(float));
    o->upload(av, in->v0, n * sizeof(float));
    o->copy(ema, m.params, total * sizeof(float));
    r.grad_norm = optim_grad_norm(&opt, m.grads + first, n);
    r.info = optim_step(&opt, in->step, r.grad_norm, m.params + first, m.grads + first, am, av, n);
    optim_ema_update(&opt, ema + first, m.params + first, n);
    r.params = host_copy(o, m.params, total);
    r.m = host_copy(o, am, n);
    r.v = host_copy(o, av, n);
    r.ema = host_copy(o, ema, total);
    o->release(am), o->release(av), o->release(ema);
    diffusion_schedule_free(&sched);
    objective_destroy(&obj);
    dit_model_destroy(&m);
    return r;
}

static void free_result(StepResult *r) {
    free(r->grads), free(r->params), free(r->m), free(r->v), free(r->ema), free(r->masks);
}

// Router noise that puts every decision at distance >= 0.5 from the threshold 0 on a random side:
// noise = side * (0.5 + u) - logit. Block l's token logits depend on the decisions of the blocks
// before it, so the CPU forward runs once per block, each pass fixing what the previous ones left.
static void margin_noise(const StepInputs *in, float *attn, float *mlp, float *token) {
    const DitConfig *cfg = in->cfg;
    int B = BATCH, L = cfg->depth, H = cfg->heads, T = dit_tokens(cfg);
    DitModel m;
    dit_model_create(&m, cfg, &ops_cpu);
    dit_model_plan(&m, B);
    memcpy(m.params, in->params, m.table.total * sizeof(float));
    Objective obj;
    objective_create(&obj, &ops_cpu, cfg, B);
    memcpy(obj.x0, in->x0, (size_t)B * obj.sample_numel * sizeof(float));
    ops_cpu.randn(obj.noise, SEED, RNG_NOISE, (uint32_t)in->step, 0, B, obj.sample_numel);
    DiffusionSchedule sched = diffusion_schedule_linear(1000);
    DynamicTerms dyn = {.stage = 1, .tau = 5.0f, .noisy = 1, .y_complete = in->y_complete};
    size_t nw = (size_t)B * L * (H - 1), nt = (size_t)B * L * T;
    memset(m.act.noise_attn, 0, nw * sizeof(float));
    memset(m.act.noise_mlp, 0, nw * sizeof(float));
    memset(m.act.noise_token, 0, nt * sizeof(float));
    float *ratio = xmalloc(B * sizeof(float));
    for (int pass = 0; pass < L; pass++) {
        objective_flops_ratios(&obj, &m, &sched, in->t, in->y, B, &dyn, ratio);
        for (size_t i = 0; i < nw; i++) {
            for (int which = 0; which < 2; which++) {
                uint32_t bits = rng_u32(99, RNG_DATA, which, 0, i);
                float side = (bits & 1) ? 1.0f : -1.0f, z = which ? m.act.mlp_logits[i] : m.act.attn_logits[i];
                (which ? m.act.noise_mlp : m.act.noise_attn)[i] = side * (0.5f + (float)rng_open01(bits)) - z;
            }
        }
        for (int b = 0; b < B; b++) // token logits are stored (L, B, T), their noise (B, L, T)
            for (int l = 0; l < L; l++)
                for (int k = 0; k < T; k++) {
                    size_t i = ((size_t)b * L + l) * T + k;
                    uint32_t bits = rng_u32(99, RNG_DATA, 2, 0, i);
                    float side = (bits & 1) ? 1.0f : -1.0f;
                    float z = m.act.token_logits[((size_t)l * m.capacity + b) * T + k];
                    m.act.noise_token[i] = side * (0.5f + (float)rng_open01(bits)) - z;
                }
    }
    memcpy(attn, m.act.noise_attn, nw * sizeof(float));
    memcpy(mlp, m.act.noise_mlp, nw * sizeof(float));
    memcpy(token, m.act.noise_token, nt * sizeof(float));
    free(ratio);
    diffusion_schedule_free(&sched);
    objective_destroy(&obj);
    dit_model_destroy(&m);
}

static void check_rel(const char *label, const char *what, double gpu, double cpu, double tol) {
    char name[200];
    snprintf(name, sizeof(name), "%s.%s", label, what);
    double rel = fabs(gpu - cpu) / fmax(fabs(cpu), 1e-12);
    check(rel <= tol, name, "gpu %.9g cpu %.9g rel %.2e, tolerance %.0e", gpu, cpu, rel, tol);
}

// Norm-wise within tol and, unless norm_only, every element within WORST_ELEMENT_FACTOR tol of the
// RMS. Adam's step and second moment are checked norm-wise only: where v is tiny the step
// m / sqrt(v) turns a rounding-sized difference of the gradient into a large one of single elements.
static void check_array(const char *label, const char *what, const float *gpu, const float *cpu, size_t n, double tol,
                        bool norm_only) {
    char name[384];
    snprintf(name, sizeof(name), "%s.%s", label, what);
    double rel = rel_error(gpu, cpu, n), worst = worst_element_error(gpu, cpu, n);
    double worst_tol = norm_only ? INFINITY : WORST_ELEMENT_FACTOR * tol;
    check(rel <= tol && worst <= worst_tol, name,
          "rel %.2e, worst element %.2e of the RMS; tolerances %.0e and %.0e, %zu elements", rel, worst, tol,
          worst_tol, n);
}

static void step_parity(const char *tag, const DitConfig *cfg, CudaPrecision prec) {
    cuda_set_precision(prec);
    const StepTol *tol = prec == CUDA_PRECISION_FP32 ? &FP32_STEP : &BF16_STEP;
    char label[96];
    snprintf(label, sizeof(label), "cuda.step.%s.%s", tag, precision_name(prec));
    DitModel shape;
    dit_model_create(&shape, cfg, &ops_cpu);
    const TensorTable *table = &shape.table;
    size_t total = table->total, first = table->trainable_begin, n = total - first;
    int B = BATCH, L = cfg->depth, H = cfg->heads, T = dit_tokens(cfg);
    size_t sample = (size_t)cfg->in_channels * cfg->input_size * cfg->input_size;

    float *params = tiny_dydit_params(cfg, table, 40), *x0 = xmalloc(B * sample * sizeof(float));
    fill_normal(x0, B * sample, 0.8f, 41);
    float *m0 = xmalloc(n * sizeof(float)), *v0 = xmalloc(n * sizeof(float));
    fill_normal(m0, n, 1e-3f, 42);
    for (size_t i = 0; i < n; i++) v0[i] = (float)(1e-6 * (1 + rng_open01(rng_u32(43, RNG_DATA, 0, 0, i))));
    static const int32_t t[BATCH] = {0, 250, 600, 999}, y[BATCH] = {0, 3, 5, 1}, y_complete[BATCH] = {0, 5, 5, 1};
    StepInputs in = {.cfg = cfg,
                     .params = params,
                     .x0 = x0,
                     .t = t,
                     .y = y,
                     .y_complete = y_complete,
                     .m0 = m0,
                     .v0 = v0,
                     .step = 99};
    size_t nw = (size_t)B * L * (H - 1), nt = (size_t)B * L * T, nmask = 2 * (size_t)B * L * H + nt;
    float *noise[3] = {NULL, NULL, NULL};
    if (prec == CUDA_PRECISION_BF16) {
        noise[0] = xmalloc(nw * sizeof(float)), noise[1] = xmalloc(nw * sizeof(float));
        noise[2] = xmalloc(nt * sizeof(float));
        margin_noise(&in, noise[0], noise[1], noise[2]);
        in.noise_attn = noise[0], in.noise_mlp = noise[1], in.noise_token = noise[2];
    }

    StepResult cpu = run_step(&ops_cpu, &in), gpu = run_step(&ops_cuda, &in);
    char name[200];
    snprintf(name, sizeof(name), "%s.same_decisions", label);
    size_t first_bad, bad = bit_mismatches(gpu.masks, cpu.masks, nmask, &first_bad);
    check(bad == 0, name, "%zu of %zu head, group and token decisions differ; heads %.2f groups %.2f tokens %.2f on",
          bad, nmask, cpu.loss.head_keep, cpu.loss.group_keep, cpu.loss.token_keep);
    double mixed = cpu.loss.token_keep;
    snprintf(name, sizeof(name), "%s.decisions_mixed", label);
    check(mixed > 0.1 && mixed < 0.9 && cpu.loss.head_keep < 1 && cpu.loss.group_keep < 1, name,
          "heads %.2f groups %.2f tokens %.2f on", cpu.loss.head_keep, cpu.loss.group_keep, mixed);

    const struct {
        const char *name;
        double gpu, cpu;
    } terms[] = {{"loss", gpu.loss.loss, cpu.loss.loss},
                 {"mse", gpu.loss.mse, cpu.loss.mse},
                 {"vb", gpu.loss.vb, cpu.loss.vb},
                 {"complete_mse", gpu.loss.complete_mse, cpu.loss.complete_mse},
                 {"complete_vb", gpu.loss.complete_vb, cpu.loss.complete_vb},
                 {"flops_loss", gpu.loss.flops_loss, cpu.loss.flops_loss},
                 {"flops_ratio", gpu.loss.flops_ratio, cpu.loss.flops_ratio}};
    for (size_t i = 0; i < sizeof(terms) / sizeof(terms[0]); i++)
        check_rel(label, terms[i].name, terms[i].gpu, terms[i].cpu, tol->loss_terms);

    double worst = 0;
    for (int i = 0; i < table->count; i++) {
        const TensorInfo *ti = &table->tensors[i];
        if (!ti->trainable) continue;
        char what[160];
        snprintf(what, sizeof(what), "grad.%s", ti->name);
        int router = strstr(ti->name, "_rate.") || strstr(ti->name, "token_selection.");
        check_array(label, what, gpu.grads + ti->offset, cpu.grads + ti->offset, ti->numel,
                    router ? tol->router_grads : tol->grads, false);
        worst = fmax(worst, rel_error(gpu.grads + ti->offset, cpu.grads + ti->offset, ti->numel));
    }
    printf("%s: worst per-tensor gradient error %.2e\n", label, worst);
    check_rel(label, "grad_norm", gpu.grad_norm, cpu.grad_norm, tol->grad_norm);
    snprintf(name, sizeof(name), "%s.adamw_applied", label);
    check(gpu.info.updated && cpu.info.updated && gpu.info.lr == cpu.info.lr, name, "lr %g", gpu.info.lr);

    // the AdamW update itself (params after minus before), then the moments and the EMA
    float *dgpu = xmalloc(n * sizeof(float)), *dcpu = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        dgpu[i] = gpu.params[first + i] - params[first + i];
        dcpu[i] = cpu.params[first + i] - params[first + i];
    }
    check_array(label, "adamw.update", dgpu, dcpu, n, tol->update, true);
    check_array(label, "adamw.m", gpu.m, cpu.m, n, tol->update, false);
    check_array(label, "adamw.v", gpu.v, cpu.v, n, tol->update, true);
    check_array(label, "ema", gpu.ema, cpu.ema, total, tol->ema, false);
    snprintf(name, sizeof(name), "%s.frozen_pos_embed", label);
    check_true(memcmp(gpu.params, params, first * sizeof(float)) == 0, name);

    free(dgpu), free(dcpu), free(params), free(x0), free(m0), free(v0);
    for (int i = 0; i < 3; i++) free(noise[i]);
    free_result(&cpu), free_result(&gpu);
    dit_model_destroy(&shape);
}

int main(void) {
    gpu_init();
    DitConfig hd72 = tiny_dydit(2, 144, 2), hd48 = tiny_dydit(2, 96, 2);
    CudaPrecision precisions[2] = {CUDA_PRECISION_FP32, CUDA_PRECISION_BF16};
    for (int p = 0; p < 2; p++) {
        step_parity("hidden144_hd72", &hd72, precisions[p]);
        step_parity("hidden96_hd48", &hd48, precisions[p]);
    }
    return check_exit();
}
