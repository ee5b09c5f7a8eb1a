// train/cmd_grad.c: `dydit grad`, the training loss and every parameter gradient on given
// tensors (no label dropout, no random draws): the parity interface of the training step.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/output_files.h"
#include "common/util.h"
#include "data/safetensors.h"
#include "model/objective.h"
#include "train/commands.h"
#include "train/device_options.h"
#include "train/load_model.h"
#include "train/model_options.h"
#include "train/tensor_inputs.h"

typedef struct {
    const char *weights, *inputs, *out;
    int stage;
    double target, tau, flops_weight;
} GradOptions;

enum { GRAD_OWN_OPTIONS = 7 };

// Router noise given in the inputs, uploaded into the model's noise buffers (missing ones are 0).
// Returns 1 when any was given.
static int read_router_noise(const StFile *in, DitModel *m, int64_t B) {
    const DitConfig *c = &m->cfg;
    int64_t L = c->depth, H = c->heads, T = dit_tokens(c);
    const char *names[3] = {"gumbel_attn", "gumbel_mlp", "gumbel_token"};
    float *dst[3] = {m->act.noise_attn, m->act.noise_mlp, m->act.noise_token};
    int64_t shapes[3][3] = {{B, L, H - 1}, {B, L, H - 1}, {B, L, T}};
    int any = 0;
    for (int i = 0; i < 3; i++) {
        size_t n = (size_t)(shapes[i][0] * shapes[i][1] * shapes[i][2]);
        if (!st_find(in, names[i])) {
            m->ops->zero(dst[i], n * sizeof(float));
            continue;
        }
        float *noise = input_floats(in, names[i], 3, shapes[i]);
        m->ops->upload(dst[i], noise, n * sizeof(float));
        free(noise);
        any = 1;
    }
    return any;
}

// Dies naming the first loss term or gradient that is not finite, before anything is written.
static void require_finite_outputs(const TensorTable *table, const float *grads, const char *const *scalar_names,
                                   const float *scalars, int scalar_count) {
    for (int i = 0; i < scalar_count; i++)
        if (!isfinite(scalars[i])) die("the loss term %s came out non-finite; nothing written", scalar_names[i]);
    for (int i = 0; i < table->count; i++) {
        const TensorInfo *t = &table->tensors[i];
        if (t->trainable && first_nonfinite_record(grads + t->offset, 1, t->numel) >= 0)
            die("the gradient of %s holds a non-finite value; nothing written", t->name);
    }
}

int cmd_grad(int argc, char **argv) {
    GradOptions o = {.stage = 2, .target = 1.0, .tau = 5.0, .flops_weight = 2.0};
    HintOptions ho = {0};
    DeviceOptions dev;
    Option options[GRAD_OWN_OPTIONS + HINT_OPTION_COUNT + DEVICE_OPTION_COUNT] = {
        {"weights", OPT_STRING, &o.weights, "weights file (safetensors)", NULL, 0, NO_RANGE},
        {"inputs", OPT_STRING, &o.inputs,
         "x0, noise (B,C,H,W) f32, t (B), y (B); DyDiT: optional gumbel_attn/gumbel_mlp (B,L,H-1), gumbel_token "
         "(B,L,N), y_complete (B)",
         NULL, 0, NO_RANGE},
        {"out", OPT_STRING, &o.out, "output: loss terms and grad.<name> per trainable parameter", NULL, 0, NO_RANGE},
        {"stage", OPT_INT, &o.stage, "DyDiT: 1 adds the complete path's loss, 2 does not", NULL, 0, RANGE(1, 2)},
        {"target", OPT_FLOAT, &o.target, "DyDiT: the FLOPs ratio target", NULL, 0, RANGE(0, 1)},
        {"tau", OPT_FLOAT, &o.tau, "DyDiT: straight-through temperature", NULL, 0, RANGE_ABOVE(0, 1e6)},
        {"flops-weight", OPT_FLOAT, &o.flops_weight, "DyDiT: weight of the FLOPs loss", NULL, 0, RANGE(0, 1e6)},
    };
    hint_options_add(&ho, options, GRAD_OWN_OPTIONS);
    device_options_add(&dev, options, GRAD_OWN_OPTIONS + HINT_OPTION_COUNT);
    OptionSet set = {"grad",
                     "The training loss and the gradient of every trainable parameter on given x0, noise, t and y. "
                     "A DiT's loss is the batch mean of mse + vb; a DyDiT's adds the FLOPs loss "
                     "and, in stage 1, the complete path's mse + vb.",
                     "dydit grad --weights W.safetensors --inputs IN.safetensors --out OUT.safetensors", options,
                     GRAD_OWN_OPTIONS + HINT_OPTION_COUNT + DEVICE_OPTION_COUNT};
    options_parse(&set, argc, argv);
    if (!o.weights || !o.inputs || !o.out) die("--weights, --inputs and --out are required (see dydit grad --help)");
    OutputFiles outputs = {0};
    const char *out_file = output_files_add(&outputs, "--out", o.out);
    output_files_refuse_input(&outputs, "--weights", o.weights);
    output_files_refuse_input(&outputs, "--inputs", o.inputs);

    Backend backend = device_options_open(&dev, 0);
    const Ops *ops = backend.ops;
    DitModel m;
    WeightsHints hints = hint_options_hints(&ho, &set);
    load_model(&m, o.weights, &hints, ops);
    const DitConfig *c = &m.cfg;
    DiffusionSchedule sched = diffusion_schedule_linear(1000);

    char err[1024];
    StFile *in = st_open(o.inputs, err, sizeof(err));
    if (!in) die("%s", err);
    int64_t B = input_batch(in, "x0");
    int64_t shape[4] = {B, c->in_channels, c->input_size, c->input_size};
    float *x0 = input_floats(in, "x0", 4, shape), *noise = input_floats(in, "noise", 4, shape);
    float *tf = input_timesteps(in, "t", B, 1, sched.T);
    int32_t *y = input_labels(in, "y", B, dit_label_rows(c));
    int32_t *y_complete = st_find(in, "y_complete") ? input_labels(in, "y_complete", B, dit_label_rows(c)) : NULL;
    int32_t *t = xmalloc((size_t)B * sizeof(int32_t));
    for (int64_t b = 0; b < B; b++) t[b] = (int32_t)tf[b];

    dit_model_plan(&m, (int)B);
    DynamicTerms dyn = {.stage = o.stage,
                        .target = (float)o.target,
                        .flops_weight = (float)o.flops_weight,
                        .tau = (float)o.tau,
                        .y_complete = y_complete};
    if (c->dynamic) dyn.noisy = read_router_noise(in, &m, B);
    st_close(in);
    Objective obj;
    objective_create(&obj, ops, c, (int)B);
    size_t n = (size_t)(B * shape[1] * shape[2] * shape[3]);
    ops->upload(obj.x0, x0, n * sizeof(float));
    ops->upload(obj.noise, noise, n * sizeof(float));
    ops->zero(m.grads, m.table.total * sizeof(float));
    LossTerms terms = objective_run(&obj, &m, &sched, t, y, (int)B, 1.0f / (float)B, c->dynamic ? &dyn : NULL);

    const char *scalar_names[7] = {"loss", "mse", "vb", "flops_loss", "flops_ratio", "complete_mse", "complete_vb"};
    float scalars[7] = {(float)terms.loss,       (float)terms.mse,         (float)terms.vb,
                        (float)terms.flops_loss, (float)terms.flops_ratio, (float)terms.complete_mse,
                        (float)terms.complete_vb};
    int scalar_count = !c->dynamic ? 3 : o.stage == 1 ? 7 : 5;
    float *grads = xmalloc(m.table.total * sizeof(float));
    ops->download(grads, m.grads, m.table.total * sizeof(float));
    require_finite_outputs(&m.table, grads, scalar_names, scalars, scalar_count);
    StWriter *w = st_writer_new();
    st_writer_meta(w, "format", "dydit-grad");
    for (int i = 0; i < scalar_count; i++) st_writer_add(w, scalar_names[i], ST_F32, 0, NULL, &scalars[i]);
    char **names = xcalloc((size_t)m.table.count, sizeof(char *));
    for (int i = 0; i < m.table.count; i++) {
        const TensorInfo *ti = &m.table.tensors[i];
        if (!ti->trainable) continue;
        names[i] = xasprintf("grad.%s", ti->name);
        st_writer_add(w, names[i], ST_F32, ti->ndim, ti->shape, grads + ti->offset);
    }
    if (st_writer_save(w, out_file, err, sizeof(err))) die("%s", err);
    output_files_commit(&outputs);
    st_writer_free(w);
    for (int i = 0; i < m.table.count; i++) free(names[i]);
    free(names);
    free(grads);
    free(x0);
    free(noise);
    free(tf);
    free(t);
    free(y);
    free(y_complete);
    objective_destroy(&obj);
    diffusion_schedule_free(&sched);
    dit_model_destroy(&m);
    return 0;
}
