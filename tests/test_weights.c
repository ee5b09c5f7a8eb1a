// tests/test_weights.c: DiT weight files: round trip, configuration from metadata, shapes and
// hints, wrong or missing or unknown tensors, the pos_embed check, half precision, diffusers names,
// conversion. Usage: test_weights WORKDIR
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/safetensors.h"
#include "model/init.h"
#include "model/weights.h"
#include "tests/check.h"
#include "tests/workdir.h"

static char err[512];

static DitConfig tiny_config(void) {
    DitConfig c = {
        .depth = 2,
        .hidden = 32,
        .heads = 4,
        .patch = 2,
        .in_channels = 4,
        .input_size = 8,
        .num_classes = 10,
        .learn_sigma = 1,
        .mlp_ratio = 4.0f,
        .class_dropout = 0.1f,
        .frequency_size = 16,
    };
    return c;
}

// Initialised weights with every trainable value made distinct (adaLN starts at zero otherwise).
static float *tiny_weights(const DitConfig *cfg, const TensorTable *table) {
    float *host = xmalloc(sizeof(float) * table->total);
    dit_init_host(cfg, table, host, 7);
    for (size_t i = table->trainable_begin; i < table->total; i++)
        host[i] += 0.001f * (float)((i * 2654435761u) % 1000) - 0.5f;
    return host;
}

static int configs_equal(const DitConfig *a, const DitConfig *b) {
    return a->depth == b->depth && a->hidden == b->hidden && a->heads == b->heads && a->patch == b->patch &&
           a->in_channels == b->in_channels && a->input_size == b->input_size && a->num_classes == b->num_classes &&
           a->learn_sigma == b->learn_sigma && a->mlp_ratio == b->mlp_ratio && a->class_dropout == b->class_dropout &&
           a->frequency_size == b->frequency_size;
}

// How a test file departs from a plain official-names F32 file without metadata.
typedef struct {
    StDtype dtype;           // ST_F32, ST_F16 or ST_BF16
    const char *skip;        // tensor left out
    int no_pos_embed;        // leave pos_embed out
    float pos_delta;         // added to the stored pos_embed
    const char *shrink;      // tensor whose first dim loses one row
    const char *extra;       // an additional tensor unknown to DiT
    const char *nan_in;      // tensor whose first element becomes NaN
    const char *const *meta; // key, value, ..., NULL
} Variant;

static int write_variant(const char *path, const TensorTable *table, const float *host, const Variant *v) {
    StWriter *w = st_writer_new();
    float *copy = xmalloc(sizeof(float) * table->total);
    memcpy(copy, host, sizeof(float) * table->total);
    uint16_t *half = xmalloc(sizeof(uint16_t) * table->total);
    for (size_t i = 0; i < table->total; i++) {
        if (v->dtype == ST_F16) {
            _Float16 h = (_Float16)host[i];
            memcpy(&half[i], &h, 2);
        } else {
            uint32_t bits;
            memcpy(&bits, &host[i], 4);
            half[i] = (uint16_t)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16); // round to nearest even
        }
    }
    for (int i = 0; v->meta && v->meta[i]; i += 2) st_writer_meta(w, v->meta[i], v->meta[i + 1]);
    static const float extra_data[3] = {1, 2, 3};
    for (int i = 0; i < table->count; i++) {
        const TensorInfo *t = &table->tensors[i];
        int64_t shape[TENSOR_MAX_DIMS];
        memcpy(shape, t->shape, sizeof(shape));
        if (v->skip && strcmp(t->name, v->skip) == 0) continue;
        if (strcmp(t->name, "pos_embed") == 0) {
            if (v->no_pos_embed) continue;
            for (size_t e = 0; e < t->numel; e++) copy[t->offset + e] += v->pos_delta;
        }
        if (v->shrink && strcmp(t->name, v->shrink) == 0) shape[0]--;
        if (v->nan_in && strcmp(t->name, v->nan_in) == 0) copy[t->offset] = NAN;
        const void *data = v->dtype == ST_F32 ? (const void *)(copy + t->offset) : (const void *)(half + t->offset);
        st_writer_add(w, t->name, v->dtype, t->ndim, shape, data);
    }
    if (v->extra) st_writer_add(w, v->extra, ST_F32, 1, (const int64_t[]){3}, extra_data);
    int rc = st_writer_save(w, path, err, sizeof(err));
    st_writer_free(w);
    free(copy);
    free(half);
    return rc;
}

// Runs weights_load_file; returns rc and leaves the loaded host in *out (or NULL).
static int load(const char *path, const WeightsHints *hints, DitConfig *cfg, TensorTable *table, float **out) {
    *out = NULL;
    memset(table, 0, sizeof(*table));
    return weights_load_file(path, hints, cfg, table, out, err, sizeof(err));
}

static char *stderr_file;
static int saved_stderr = -1;

static void capture_stderr_begin(void) {
    fflush(stderr);
    saved_stderr = dup(2);
    int fd = open(stderr_file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 2);
    close(fd);
}

// What was written to stderr since capture_stderr_begin (caller frees).
static char *capture_stderr_end(void) {
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    FILE *fp = fopen(stderr_file, "rb");
    char *text = xcalloc(1, 4096);
    if (fp) {
        size_t n = fread(text, 1, 4095, fp);
        while (n > 0 && text[n - 1] == '\n') n--; // keeps PASS lines on one line
        text[n] = '\0';
        fclose(fp);
    }
    return text;
}

static void test_weights_round_trip(const DitConfig *cfg, const TensorTable *table, const float *host) {
    char *path = path_in("tiny.safetensors");
    WeightsMeta extra[] = {{"step", "123"}, {"note", "round trip"}};
    int rc = weights_save(path, cfg, table, host, extra, 2, err, sizeof(err));
    check(rc == 0, "weights_save", "%s", rc ? err : "");

    StFile *f = st_open(path, err, sizeof(err));
    check_true(f && contains(st_meta(f, "format"), "dydit-weights") && strcmp(st_meta(f, "format_version"), "1") == 0 &&
                   strcmp(st_meta(f, "model"), "custom") == 0 && strcmp(st_meta(f, "heads"), "4") == 0 &&
                   strcmp(st_meta(f, "class_dropout"), "0.1") == 0 && strcmp(st_meta(f, "mlp_ratio"), "4") == 0 &&
                   strcmp(st_meta(f, "learn_sigma"), "1") == 0 && strcmp(st_meta(f, "step"), "123") == 0 &&
                   st_count(f) == table->count && st_find(f, "pos_embed") && st_find(f, "pos_embed")->dtype == ST_F32,
               "weights_save_metadata_and_names");
    st_close(f);

    DitConfig got;
    TensorTable t2;
    float *h2;
    rc = load(path, NULL, &got, &t2, &h2);
    check(rc == 0 && configs_equal(&got, cfg) && t2.total == table->total &&
              memcmp(h2, host, sizeof(float) * table->total) == 0,
          "weights_round_trip_config_from_metadata", "%s", rc ? err : "");
    free(h2);
    tensor_table_free(&t2);

    WeightsHints agree = {.heads = 4, .input_size = 8};
    rc = load(path, &agree, &got, &t2, &h2);
    check(rc == 0, "weights_hints_agreeing_with_metadata", "%s", rc ? err : "");
    free(h2);
    tensor_table_free(&t2);

    // a flag corrects the metadata (the shapes still decide what they imply)
    WeightsHints contradict = {.heads = 8};
    rc = load(path, &contradict, &got, &t2, &h2);
    check(rc == 0 && got.heads == 8, "weights_hint_overrides_metadata", "%s", rc ? err : "heads 8 from --heads");
    if (rc == 0) free(h2), tensor_table_free(&t2);
    WeightsHints preset = {.model = "DiT-S/2"};
    rc = load(path, &preset, &got, &t2, &h2);
    check(rc != 0 && contains(err, "depth 12 from --model DiT-S/2 disagrees with 2 from the tensor shapes"),
          "weights_preset_contradicts_shapes", "%s", err);
    WeightsHints unknown = {.model = "DiT-Q/3"};
    rc = load(path, &unknown, &got, &t2, &h2);
    check(rc != 0 && contains(err, "unknown model 'DiT-Q/3'"), "weights_unknown_preset_hint", "%s", err);

    WeightsMeta reserved[] = {{"heads", "3"}};
    rc = weights_save(path, cfg, table, host, reserved, 1, err, sizeof(err));
    check(rc != 0 && contains(err, "reserved"), "weights_save_reserved_key", "%s", err);
    float *bad = xmalloc(sizeof(float) * table->total);
    memcpy(bad, host, sizeof(float) * table->total);
    bad[table->total - 1] = INFINITY;
    rc = weights_save(path, cfg, table, bad, NULL, 0, err, sizeof(err));
    check(rc != 0 && contains(err, "non-finite"), "weights_save_refuses_non_finite", "%s", err);
    free(bad);
    free(path);
}

static void test_weights_inference(const DitConfig *cfg, const TensorTable *table, const float *host) {
    char *path = path_in("bare.safetensors");
    DitConfig got;
    TensorTable t2;
    float *h2;
    Variant plain = {.dtype = ST_F32};
    write_variant(path, table, host, &plain);

    int rc = load(path, NULL, &got, &t2, &h2);
    check(rc != 0 && contains(err, "--heads") && contains(err, "--model"), "weights_heads_ambiguity_error", "%s", err);

    WeightsHints heads = {.heads = 4};
    rc = load(path, &heads, &got, &t2, &h2);
    check(rc == 0 && configs_equal(&got, cfg) && memcmp(h2, host, sizeof(float) * table->total) == 0,
          "weights_inferred_with_heads_hint", "%s", rc ? err : "");
    free(h2);
    tensor_table_free(&t2);

    WeightsHints no_null = {.heads = 4, .has_class_dropout = 1, .class_dropout = 0.0f};
    rc = load(path, &no_null, &got, &t2, &h2);
    // Without a null row the 11-row label table means 11 classes.
    check(rc == 0 && got.num_classes == 11 && got.class_dropout == 0.0f &&
              memcmp(h2, host, sizeof(float) * table->total) == 0,
          "weights_no_null_row_hint", "%s", rc ? err : "");
    if (rc == 0) {
        free(h2);
        tensor_table_free(&t2);
    }

    const char *partial[] = {"num_classes", "10", "heads", "4", NULL};
    Variant meta = {.dtype = ST_F32, .meta = partial};
    write_variant(path, table, host, &meta);
    rc = load(path, NULL, &got, &t2, &h2);
    check(rc == 0 && configs_equal(&got, cfg), "weights_partial_metadata", "%s", rc ? err : "");
    free(h2);
    tensor_table_free(&t2);

    const char *nc11[] = {"num_classes", "11", "heads", "4", NULL};
    meta.meta = nc11;
    write_variant(path, table, host, &meta);
    StFile *f = st_open(path, err, sizeof(err));
    rc = f ? weights_config(f, NULL, &got, err, sizeof(err)) : -1;
    check(rc == 0 && got.num_classes == 11 && got.class_dropout == 0.0f,
          "weights_num_classes_metadata_means_no_null_row", "%s", rc ? err : "");
    st_close(f);

    const char *nc5[] = {"num_classes", "5", "heads", "4", NULL};
    meta.meta = nc5;
    write_variant(path, table, host, &meta);
    rc = load(path, NULL, &got, &t2, &h2);
    check(rc != 0 && contains(err, "label table has 11 rows"), "weights_num_classes_contradicts_table", "%s", err);

    const char *bad_int[] = {"depth", "two", NULL};
    meta.meta = bad_int;
    write_variant(path, table, host, &meta);
    rc = load(path, &heads, &got, &t2, &h2);
    check(rc != 0 && contains(err, "metadata depth = 'two' is not an integer"), "weights_bad_metadata_value", "%s",
          err);

    const char *other_version[] = {"format", "dydit-weights", "format_version", "2", NULL};
    meta.meta = other_version;
    write_variant(path, table, host, &meta);
    rc = load(path, &heads, &got, &t2, &h2);
    check(rc != 0 && contains(err, "format_version '2'"), "weights_unsupported_version", "%s", err);

    Variant no_pos = {.dtype = ST_F32, .no_pos_embed = 1};
    write_variant(path, table, host, &no_pos);
    rc = load(path, &heads, &got, &t2, &h2);
    check(rc != 0 && contains(err, "--input-size"), "weights_input_size_needed_without_pos_embed", "%s", err);
    WeightsHints with_size = {.heads = 4, .input_size = 8};
    rc = load(path, &with_size, &got, &t2, &h2);
    check(rc == 0 && configs_equal(&got, cfg) && memcmp(h2, host, sizeof(float) * table->total) == 0,
          "weights_input_size_hint_recomputes_pos_embed", "%s", rc ? err : "");
    free(h2);
    tensor_table_free(&t2);
    free(path);
}

static void test_weights_errors(const TensorTable *table, const float *host) {
    char *path = path_in("broken_weights.safetensors");
    WeightsHints heads = {.heads = 4};
    DitConfig got;
    TensorTable t2;
    float *h2;

    Variant shrink = {.dtype = ST_F32, .shrink = "blocks.1.mlp.fc2.bias"};
    write_variant(path, table, host, &shrink);
    int rc = load(path, &heads, &got, &t2, &h2);
    check(rc != 0 && contains(err, "tensor 'blocks.1.mlp.fc2.bias' has shape [31], expected [32]"),
          "weights_wrong_shape", "%s", err);

    Variant skip = {.dtype = ST_F32, .skip = "blocks.1.attn.proj.weight"};
    write_variant(path, table, host, &skip);
    rc = load(path, &heads, &got, &t2, &h2);
    check(rc != 0 && contains(err, "missing tensor 'blocks.1.attn.proj.weight'") && contains(err, "[32, 32]"),
          "weights_missing_tensor", "%s", err);

    Variant extra = {.dtype = ST_F32, .extra = "blocks.0.mystery.weight"};
    write_variant(path, table, host, &extra);
    rc = load(path, &heads, &got, &t2, &h2);
    check(rc != 0 && contains(err, "tensor 'blocks.0.mystery.weight' is not a parameter"), "weights_unknown_tensor",
          "%s", err);

    Variant stray = {.dtype = ST_F32, .extra = "blocks.7.attn.proj.bias"};
    write_variant(path, table, host, &stray);
    rc = load(path, &heads, &got, &t2, &h2);
    check(rc != 0 && contains(err, "missing tensor 'blocks.2.mlp.fc1.weight' (the file names blocks up to 7)"),
          "weights_stray_block_index", "%s", err);

    Variant nan = {.dtype = ST_F32, .nan_in = "blocks.0.attn.qkv.weight"};
    write_variant(path, table, host, &nan);
    rc = load(path, &heads, &got, &t2, &h2);
    check(rc != 0 && contains(err, "non-finite"), "weights_non_finite_tensor", "%s", err);

    StWriter *w = st_writer_new();
    float one = 1;
    st_writer_add(w, "something.else", ST_F32, 1, (const int64_t[]){1}, &one);
    st_writer_save(w, path, err, sizeof(err));
    st_writer_free(w);
    rc = load(path, &heads, &got, &t2, &h2);
    check(rc != 0 && contains(err, "not DiT weights"), "weights_not_dit", "%s", err);

    Variant pos = {.dtype = ST_F32, .pos_delta = 1e-3f};
    write_variant(path, table, host, &pos);
    capture_stderr_begin();
    rc = load(path, &heads, &got, &t2, &h2);
    char *said = capture_stderr_end();
    check(rc == 0 && contains(said, "pos_embed differs") && memcmp(h2, host, sizeof(float) * table->total) == 0,
          "weights_pos_embed_mismatch_warns_and_recomputes", "%s", rc ? err : "warned");
    free(said);
    free(h2);
    tensor_table_free(&t2);
    free(path);
}

static void test_weights_half(const TensorTable *table, const float *host) {
    char *path = path_in("half.safetensors");
    WeightsHints heads = {.heads = 4};
    const StDtype dtypes[2] = {ST_BF16, ST_F16};
    const double tolerance[2] = {1.0 / 256, 1.0 / 2048};
    for (int k = 0; k < 2; k++) {
        Variant v = {.dtype = dtypes[k]};
        write_variant(path, table, host, &v);
        DitConfig got;
        TensorTable t2;
        float *h2;
        capture_stderr_begin(); // the rounded pos_embed differs from the exact table: a warning
        int rc = load(path, &heads, &got, &t2, &h2);
        free(capture_stderr_end());
        double worst = 0;
        for (size_t i = 0; rc == 0 && i < table->total; i++) {
            double rel = fabs((double)h2[i] - host[i]) / fmax(fabs(host[i]), 1e-3);
            if (rel > worst) worst = rel;
        }
        char name[64];
        snprintf(name, sizeof(name), "weights_load_%s", st_dtype_name(dtypes[k]));
        if (rc)
            check(0, name, "%s", err);
        else
            check(worst <= tolerance[k], name, "worst relative error %.2g", worst);
        if (rc == 0) {
            free(h2);
            tensor_table_free(&t2);
        }
    }
    free(path);
}

// The diffusers layout, written by hand from docs/algorithm.md 7.4 (independently of model/weights.c).
static void write_diffusers(const char *path, const DitConfig *cfg, const TensorTable *table, const float *host) {
    StWriter *w = st_writer_new();
    const int64_t D = cfg->hidden;
    char name[160];
#define AT(n) (host + tensor_table_find(table, n)->offset)
#define ADD(dname, official)                                                                                           \
    do {                                                                                                               \
        const TensorInfo *t_ = tensor_table_find(table, official);                                                     \
        st_writer_add(w, dname, ST_F32, t_->ndim, t_->shape, host + t_->offset);                                       \
    } while (0)
    ADD("pos_embed.proj.weight", "x_embedder.proj.weight");
    ADD("pos_embed.proj.bias", "x_embedder.proj.bias");
    ADD("proj_out_1.weight", "final_layer.adaLN_modulation.1.weight");
    ADD("proj_out_1.bias", "final_layer.adaLN_modulation.1.bias");
    ADD("proj_out_2.weight", "final_layer.linear.weight");
    ADD("proj_out_2.bias", "final_layer.linear.bias");
    for (int i = 0; i < cfg->depth; i++) {
        static const char *const emb[][2] = {
            {"timestep_embedder.linear_1.weight", "t_embedder.mlp.0.weight"},
            {"timestep_embedder.linear_1.bias", "t_embedder.mlp.0.bias"},
            {"timestep_embedder.linear_2.weight", "t_embedder.mlp.2.weight"},
            {"timestep_embedder.linear_2.bias", "t_embedder.mlp.2.bias"},
            {"class_embedder.embedding_table.weight", "y_embedder.embedding_table.weight"},
        };
        for (int e = 0; e < 5; e++) {
            snprintf(name, sizeof(name), "transformer_blocks.%d.norm1.emb.%s", i, emb[e][0]);
            ADD(name, emb[e][1]);
        }
        static const char *const block[][2] = {
            {"norm1.linear.weight", "adaLN_modulation.1.weight"},
            {"norm1.linear.bias", "adaLN_modulation.1.bias"},
            {"attn1.to_out.0.weight", "attn.proj.weight"},
            {"attn1.to_out.0.bias", "attn.proj.bias"},
            {"ff.net.0.proj.weight", "mlp.fc1.weight"},
            {"ff.net.0.proj.bias", "mlp.fc1.bias"},
            {"ff.net.2.weight", "mlp.fc2.weight"},
            {"ff.net.2.bias", "mlp.fc2.bias"},
        };
        for (int e = 0; e < 8; e++) {
            char official[160];
            snprintf(name, sizeof(name), "transformer_blocks.%d.%s", i, block[e][0]);
            snprintf(official, sizeof(official), "blocks.%d.%s", i, block[e][1]);
            ADD(name, official);
        }
        const char *qkv[3] = {"q", "k", "v"};
        snprintf(name, sizeof(name), "blocks.%d.attn.qkv.weight", i);
        const float *wq = AT(name);
        snprintf(name, sizeof(name), "blocks.%d.attn.qkv.bias", i);
        const float *bq = AT(name);
        for (int part = 0; part < 3; part++) {
            snprintf(name, sizeof(name), "transformer_blocks.%d.attn1.to_%s.weight", i, qkv[part]);
            st_writer_add(w, name, ST_F32, 2, (const int64_t[]){D, D}, wq + part * D * D);
            snprintf(name, sizeof(name), "transformer_blocks.%d.attn1.to_%s.bias", i, qkv[part]);
            st_writer_add(w, name, ST_F32, 1, (const int64_t[]){D}, bq + part * D);
        }
    }
#undef ADD
#undef AT
    if (st_writer_save(w, path, err, sizeof(err))) check(0, "write_diffusers_fixture", "%s", err);
    st_writer_free(w);
}

static void test_weights_diffusers(const DitConfig *cfg, const TensorTable *table, const float *host) {
    char *path = path_in("diffusers.safetensors");
    write_diffusers(path, cfg, table, host);
    WeightsHints hints = {.model = NULL, .heads = 4, .input_size = 8};
    DitConfig got;
    TensorTable t2;
    float *h2;
    capture_stderr_begin();
    int rc = load(path, &hints, &got, &t2, &h2);
    char *said = capture_stderr_end();
    check(rc == 0 && configs_equal(&got, cfg) && memcmp(h2, host, sizeof(float) * table->total) == 0 &&
              contains(said, "/127"),
          "weights_diffusers_names", "%s", rc ? err : "with the /127 warning");
    if (rc == 0) {
        free(h2);
        tensor_table_free(&t2);
    }
    free(said);
    free(path);
}

static void test_weights_convert(const DitConfig *cfg, const TensorTable *table, const float *host) {
    char *in = path_in("convert_in.safetensors"), *out = path_in("convert_out.safetensors");
    const char *meta[] = {"train_args", "{\"lr\": 0.0001}", "format", "pt", NULL};
    Variant v = {.dtype = ST_BF16, .meta = meta};
    write_variant(in, table, host, &v);
    WeightsHints hints = {.heads = 4};
    DitConfig got;
    capture_stderr_begin();
    int rc = weights_convert(in, out, &hints, &got, err, sizeof(err));
    free(capture_stderr_end());
    check(rc == 0 && configs_equal(&got, cfg), "weights_convert", "%s", rc ? err : "");

    TensorTable t2;
    float *h2;
    rc = load(out, NULL, &got, &t2, &h2);
    StFile *f = st_open(out, err, sizeof(err));
    int dtypes_f32 = f != NULL;
    for (int i = 0; f && i < st_count(f); i++) dtypes_f32 &= st_tensor(f, i)->dtype == ST_F32;
    check(rc == 0 && configs_equal(&got, cfg) && f && dtypes_f32 &&
              strcmp(st_meta(f, "format"), "dydit-weights") == 0 && contains(st_meta(f, "train_args"), "0.0001"),
          "weights_convert_output_is_canonical", "%s", rc ? err : "");
    st_close(f);
    if (rc == 0) {
        free(h2);
        tensor_table_free(&t2);
    }

    char *diff = path_in("convert_diffusers.safetensors");
    write_diffusers(diff, cfg, table, host);
    WeightsHints dh = {.heads = 4, .input_size = 8};
    capture_stderr_begin();
    rc = weights_convert(diff, out, &dh, NULL, err, sizeof(err));
    free(capture_stderr_end());
    int rc2 = rc ? -1 : load(out, NULL, &got, &t2, &h2);
    check(rc == 0 && rc2 == 0 && memcmp(h2, host, sizeof(float) * table->total) == 0,
          "weights_convert_diffusers_to_official", "%s", rc || rc2 ? err : "");
    if (rc == 0 && rc2 == 0) {
        free(h2);
        tensor_table_free(&t2);
    }
    free(diff);
    free(in);
    free(out);
}

static void test_weights(void) {
    DitConfig cfg = tiny_config();
    char why[200];
    if (dit_config_validate(&cfg, why, sizeof(why))) {
        check(0, "tiny_config", "%s", why);
        return;
    }
    TensorTable table = tensor_table_build(&cfg);
    float *host = tiny_weights(&cfg, &table);
    test_weights_round_trip(&cfg, &table, host);
    test_weights_inference(&cfg, &table, host);
    test_weights_errors(&table, host);
    test_weights_half(&table, host);
    test_weights_diffusers(&cfg, &table, host);
    test_weights_convert(&cfg, &table, host);
    free(host);
    tensor_table_free(&table);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
        return 2;
    }
    workdir_init(argv[1], "weights");
    stderr_file = path_in("stderr.txt");
    test_weights();
    free(stderr_file);
    return check_exit();
}
