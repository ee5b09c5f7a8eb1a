// train/cmd_forward.c: `dydit forward`, one forward pass on tensors from a file.
#include <stdio.h>
#include <stdlib.h>

#include "common/output_files.h"
#include "common/util.h"
#include "data/safetensors.h"
#include "train/commands.h"
#include "train/device_options.h"
#include "train/load_model.h"
#include "train/model_options.h"
#include "train/tensor_inputs.h"

enum { FORWARD_OWN_OPTIONS = 4 };

// Adds the DyDiT masks of the last forward, as (B, L, H), (B, L, H), (B, L, N) tensors; returns the
// host buffer the writer refers to.
static float *add_masks(StWriter *w, const DitModel *m, int64_t B) {
    const DitConfig *c = &m->cfg;
    int64_t L = c->depth, H = c->heads, T = dit_tokens(c);
    size_t nh = (size_t)(B * L * H), nt = (size_t)(B * L * T);
    float *masks = xmalloc((2 * nh + nt) * sizeof(float));
    m->ops->download(masks, m->act.head_mask, nh * sizeof(float));
    m->ops->download(masks + nh, m->act.chan_mask, nh * sizeof(float));
    m->ops->download(masks + 2 * nh, m->act.token_mask, nt * sizeof(float));
    int64_t hshape[3] = {B, L, H}, tshape[3] = {B, L, T};
    st_writer_add(w, "attn_mask", ST_F32, 3, hshape, masks);
    st_writer_add(w, "mlp_mask", ST_F32, 3, hshape, masks + nh);
    st_writer_add(w, "token_mask", ST_F32, 3, tshape, masks + 2 * nh);
    return masks;
}

int cmd_forward(int argc, char **argv) {
    const char *weights = NULL, *inputs = NULL, *out_path = NULL;
    int complete = 0;
    HintOptions ho = {0};
    DeviceOptions dev;
    Option options[FORWARD_OWN_OPTIONS + HINT_OPTION_COUNT + DEVICE_OPTION_COUNT] = {
        {"weights", OPT_STRING, &weights, "weights file (safetensors)", NULL, 0, NO_RANGE},
        {"inputs", OPT_STRING, &inputs, "x (B,C,H,W) f32, t (B) timesteps, y (B) labels", NULL, 0, NO_RANGE},
        {"out", OPT_STRING, &out_path, "output: out (B,C_out,H,W); for a DyDiT also the masks", NULL, 0, NO_RANGE},
        {"complete", OPT_FLAG, &complete, "DyDiT: the complete path (masks computed, not applied)", NULL, 0, NO_RANGE},
    };
    hint_options_add(&ho, options, FORWARD_OWN_OPTIONS);
    device_options_add(&dev, options, FORWARD_OWN_OPTIONS + HINT_OPTION_COUNT);
    OptionSet set = {"forward",
                     "One DiT/DyDiT forward pass on given tensors, for parity checks and debugging. A "
                     "DyDiT takes deterministic router decisions and also writes attn_mask (B,L,H), mlp_mask (B,L,H) "
                     "and token_mask (B,L,N).",
                     "dydit forward --weights W.safetensors --inputs IN.safetensors --out OUT.safetensors [--complete]",
                     options, FORWARD_OWN_OPTIONS + HINT_OPTION_COUNT + DEVICE_OPTION_COUNT};
    options_parse(&set, argc, argv);
    if (!weights || !inputs || !out_path) die("--weights, --inputs and --out are required (see dydit forward --help)");
    OutputFiles outputs = {0};
    const char *out_file = output_files_add(&outputs, "--out", out_path);
    output_files_refuse_input(&outputs, "--weights", weights);
    output_files_refuse_input(&outputs, "--inputs", inputs);

    Backend backend = device_options_open(&dev, 0);
    DitModel m;
    WeightsHints hints = hint_options_hints(&ho, &set);
    load_model(&m, weights, &hints, backend.ops);
    const DitConfig *c = &m.cfg;
    if (complete && !c->dynamic) die("--complete is for DyDiT weights; %s has no routers", weights);

    char err[1024];
    StFile *in = st_open(inputs, err, sizeof(err));
    if (!in) die("%s", err);
    int64_t B = input_batch(in, "x");
    int64_t xshape[4] = {B, c->in_channels, c->input_size, c->input_size};
    float *x = input_floats(in, "x", 4, xshape);
    float *t = input_timesteps(in, "t", B, 0, 0);
    int32_t *y = input_labels(in, "y", B, dit_label_rows(c));
    st_close(in);

    dit_model_plan(&m, (int)B);
    m.ops->upload(m.act.x, x, (size_t)(B * xshape[1] * xshape[2] * xshape[3]) * sizeof(float));
    DitRouting routing = dit_routing_eval();
    routing.complete = complete;
    dit_forward(&m, t, y, (int)B, &routing);
    int64_t oshape[4] = {B, dit_out_channels(c), c->input_size, c->input_size};
    size_t on = (size_t)(oshape[0] * oshape[1] * oshape[2] * oshape[3]);
    float *out = xmalloc(on * sizeof(float));
    m.ops->download(out, m.act.out, on * sizeof(float));
    int64_t bad = first_nonfinite_record(out, B, on / (size_t)B);
    if (bad >= 0) die("the forward pass produced a non-finite value in sample %lld; nothing written", (long long)bad);

    StWriter *w = st_writer_new();
    st_writer_meta(w, "format", "dydit-forward");
    st_writer_add(w, "out", ST_F32, 4, oshape, out);
    float *masks = c->dynamic ? add_masks(w, &m, B) : NULL;
    if (st_writer_save(w, out_file, err, sizeof(err))) die("%s", err);
    output_files_commit(&outputs);
    st_writer_free(w);
    free(masks);
    free(out);
    free(x);
    free(t);
    free(y);
    dit_model_destroy(&m);
    return 0;
}
