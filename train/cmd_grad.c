// train/cmd_grad.c: `dydit grad`, the training loss and every parameter gradient on given
// tensors (no label dropout, no random draws): the parity interface of the training step.
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "data/safetensors.h"
#include "model/objective.h"
#include "train/commands.h"
#include "train/load_model.h"
#include "train/model_options.h"
#include "train/tensor_inputs.h"

int cmd_grad(int argc, char **argv) {
    const char *weights = NULL, *inputs = NULL, *out_path = NULL;
    HintOptions ho = {0};
    Option options[3 + HINT_OPTION_COUNT] = {
        {"weights", OPT_STRING, &weights, "weights file (safetensors)", NULL, 0},
        {"inputs", OPT_STRING, &inputs, "x0, noise (B,C,H,W) f32, t (B) timesteps, y (B) labels", NULL, 0},
        {"out", OPT_STRING, &out_path, "output file: loss, mse, vb and grad.<name> per parameter", NULL, 0},
    };
    hint_options_add(&ho, options, 3);
    OptionSet set = {"grad",
                     "The diffusion training loss (batch mean of mse + vb) and the gradient of every trainable "
                     "parameter, on given x0, noise, t and y (fp32, CPU).",
                     "dydit grad --weights W.safetensors --inputs IN.safetensors --out OUT.safetensors", options,
                     3 + HINT_OPTION_COUNT};
    options_parse(&set, argc, argv);
    if (!weights || !inputs || !out_path) die("--weights, --inputs and --out are required (see dydit grad --help)");

    DitModel m;
    WeightsHints hints = hint_options_hints(&ho, &set);
    load_model(&m, weights, &hints, &ops_cpu);
    const DitConfig *c = &m.cfg;
    DiffusionSchedule sched = diffusion_schedule_linear(1000);

    char err[1024];
    StFile *in = st_open(inputs, err, sizeof(err));
    if (!in) die("%s", err);
    int64_t B = input_batch(in, "x0");
    int64_t shape[4] = {B, c->in_channels, c->input_size, c->input_size};
    float *x0 = input_floats(in, "x0", 4, shape), *noise = input_floats(in, "noise", 4, shape);
    float *tf = input_timesteps(in, "t", B, 1, sched.T);
    int32_t *y = input_labels(in, "y", B, dit_label_rows(c));
    st_close(in);
    int32_t *t = xmalloc((size_t)B * sizeof(int32_t));
    for (int64_t b = 0; b < B; b++) t[b] = (int32_t)tf[b];

    dit_model_plan(&m, (int)B);
    Objective obj;
    objective_create(&obj, &ops_cpu, c, (int)B);
    size_t n = (size_t)(B * shape[1] * shape[2] * shape[3]);
    ops_cpu.upload(obj.x0, x0, n * sizeof(float));
    ops_cpu.upload(obj.noise, noise, n * sizeof(float));
    ops_cpu.zero(m.grads, m.table.total * sizeof(float));
    LossTerms terms = objective_run(&obj, &m, &sched, t, y, (int)B, 1.0f / (float)B);

    float scalars[3] = {(float)terms.loss, (float)terms.mse, (float)terms.vb};
    float *grads = xmalloc(m.table.total * sizeof(float));
    ops_cpu.download(grads, m.grads, m.table.total * sizeof(float));
    StWriter *w = st_writer_new();
    st_writer_meta(w, "format", "dydit-grad");
    st_writer_add(w, "loss", ST_F32, 0, NULL, &scalars[0]);
    st_writer_add(w, "mse", ST_F32, 0, NULL, &scalars[1]);
    st_writer_add(w, "vb", ST_F32, 0, NULL, &scalars[2]);
    char **names = xcalloc((size_t)m.table.count, sizeof(char *));
    for (int i = 0; i < m.table.count; i++) {
        const TensorInfo *ti = &m.table.tensors[i];
        if (!ti->trainable) continue;
        names[i] = xasprintf("grad.%s", ti->name);
        st_writer_add(w, names[i], ST_F32, ti->ndim, ti->shape, grads + ti->offset);
    }
    if (st_writer_save(w, out_path, err, sizeof(err))) die("%s", err);
    st_writer_free(w);
    for (int i = 0; i < m.table.count; i++) free(names[i]);
    free(names);
    free(grads);
    free(x0);
    free(noise);
    free(tf);
    free(t);
    free(y);
    objective_destroy(&obj);
    diffusion_schedule_free(&sched);
    dit_model_destroy(&m);
    return 0;
}
