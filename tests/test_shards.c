// tests/test_shards.c: the latent shard format: F16 conversion, round trips of both dtypes and
// both storage kinds, every kind of broken shard (one-line errors naming the file), the
// directory index, and the loader's checks of a set against its index.
// Usage: test_shards WORKDIR
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/half.h"
#include "data/loader.h"
#include "data/shard.h"
#include "data/shard_index.h"
#include "kernels/philox.h"
#include "tests/check.h"
#include "tests/shard_fixture.h"
#include "tests/workdir.h"

static char err[1024];

static int one_line(const char *s) { return !strchr(s, '\n'); }

static void test_half(void) {
    int round_trip = 1;
    for (uint32_t h = 0; h < 65536; h++) {
        float f = half_to_float((uint16_t)h);
        if (isnan(f))
            round_trip &= isnan(half_to_float(half_from_float(f)));
        else
            round_trip &= half_from_float(f) == h;
    }
    check_true(round_trip, "half_round_trip_all_65536");
    struct {
        float in;
        uint16_t want;
    } cases[] = {
        {1.0f + 0x1p-11f, 0x3C00},     // halfway between 1 and its successor: to even (1)
        {1.0f + 3 * 0x1p-11f, 0x3C02}, // halfway between odd and even mantissas: up to even
        {1.0f + 0x1p-11f + 0x1p-20f, 0x3C01},
        {65504.0f, 0x7BFF},
        {65519.0f, 0x7BFF},
        {65520.0f, 0x7C00}, // halfway to 65536 rounds to even, which is past the largest half
        {-1e6f, 0xFC00},
        {0x1p-25f, 0x0000},     // half the smallest subnormal: to even (zero)
        {3 * 0x1p-25f, 0x0002}, // between subnormals 1 and 2: to even
        {0x1p-14f, 0x0400},     // smallest normal
        {-0.0f, 0x8000},
        {0.1f, 0x2E66},
    };
    int ok = 1;
    char bad[128] = "";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (half_from_float(cases[i].in) != cases[i].want) {
            ok = 0;
            snprintf(bad, sizeof(bad), "%a -> 0x%04X, want 0x%04X", cases[i].in, half_from_float(cases[i].in),
                     cases[i].want);
        }
    check(ok && isnan(half_to_float(half_from_float(NAN))), "half_from_float_rounding", "%s", bad);
}

/* ---------------------------------------------------------------------------------------------
 * Round trips
 * ------------------------------------------------------------------------------------------- */

static void test_round_trip(StDtype dtype, ShardStorage storage) {
    char name[64];
    snprintf(name, sizeof(name), "shard_round_trip_%s_%s", st_dtype_name(dtype), shard_storage_name(storage));
    const int64_t N = 7;
    ShardLayout l = fixture_layout(3, 4, 5, 12, storage, dtype, 0.18215);
    l.encoder = (char *)"sd-vae";
    l.image_size = 32;
    int64_t flips = storage == SHARD_POSTERIOR ? 2 : 1, numel = shard_latent_numel(&l), total = N * flips * numel;
    float *value = xmalloc(sizeof(float) * (size_t)total), *std = xmalloc(sizeof(float) * (size_t)total);
    for (int64_t i = 0; i < total; i++) {
        // F16 sets hold values already on the half grid, so both dtypes must come back exactly
        uint32_t bits = rng_u32(7, RNG_DATA, 0, (uint32_t)i, 0);
        float v = dtype == ST_F16 ? half_to_float((uint16_t)(bits & 0x7BFF)) : (float)rng_normal(7, RNG_DATA, 1, 0, i);
        value[i] = (bits >> 31) ? -v : v;
        std[i] = fabsf(value[i]);
    }
    void *packed_value = xmalloc(sizeof(float) * (size_t)total), *packed_std = xmalloc(sizeof(float) * (size_t)total);
    shard_pack(dtype, packed_value, value, total);
    shard_pack(dtype, packed_std, std, total);
    int64_t labels[7] = {0, 11, 3, 3, 5, 7, 1};
    ShardMeta extra[] = {{"first_item", "14"}, {"note", "h\xc3\xa9llo"}};
    ShardData d = {N, packed_value, packed_value, packed_std, labels, extra, 2};
    char *path = path_in("round.safetensors");
    int rc = shard_write(path, &l, &d, err, sizeof(err));
    ShardFile *s = rc ? NULL : shard_open(path, err, sizeof(err));
    if (!s) {
        check(0, name, "%s", err);
    } else {
        const ShardLayout *g = shard_layout(s);
        char what[256] = "";
        int ok = shard_layout_compare(g, &l, what, sizeof(what)) == 0 && shard_count(s) == N &&
                 !strcmp(shard_meta(s, "first_item"), "14") && !strcmp(shard_meta(s, "note"), "h\xc3\xa9llo") &&
                 !strcmp(shard_meta(s, "format"), SHARD_FORMAT) && !strcmp(g->classes[11], "eleven");
        for (int64_t n = 0; n < N; n++) ok &= shard_labels(s)[n] == labels[n];
        float *got = xmalloc(sizeof(float) * (size_t)numel), *got_std = xmalloc(sizeof(float) * (size_t)numel);
        for (int64_t n = 0; n < N && ok; n++)
            for (int f = 0; f < flips && ok; f++) {
                ok = shard_read(s, n, f, got, storage == SHARD_POSTERIOR ? got_std : NULL, err, sizeof(err)) == 0;
                const float *want = value + (n * flips + f) * numel, *want_std = std + (n * flips + f) * numel;
                ok = ok && !memcmp(got, want, sizeof(float) * (size_t)numel);
                if (storage == SHARD_POSTERIOR) ok = ok && !memcmp(got_std, want_std, sizeof(float) * (size_t)numel);
            }
        check(ok, name, "%s%s", ok ? "" : what, ok ? "" : err);
        rc = shard_read(s, N, 0, got, got_std, err, sizeof(err));
        int bad_flip = shard_read(s, 0, storage == SHARD_POSTERIOR ? 2 : 1, got, got_std, err, sizeof(err));
        snprintf(name, sizeof(name), "shard_read_range_%s_%s", st_dtype_name(dtype), shard_storage_name(storage));
        check(rc != 0 && bad_flip != 0 && contains(err, "no sample 0, flip"), name, "%s", "");
        free(got);
        free(got_std);
        shard_close(s);
    }
    free(path);
    free(value);
    free(std);
    free(packed_value);
    free(packed_std);
}

static void test_writer_refuses_bad_labels(void) {
    ShardLayout l = fixture_layout(1, 2, 2, 3, SHARD_SAMPLE, ST_F32, 1.0);
    float v[8] = {0};
    int64_t labels[2] = {1, 3};
    ShardData d = {.count = 2, .latents = v, .labels = labels};
    char *path = path_in("bad-label-write.safetensors");
    int rc = shard_write(path, &l, &d, err, sizeof(err));
    check(rc != 0 && contains(err, "label 3 of sample 1 is outside [0, 3)") && access(path, F_OK) != 0,
          "shard_write_refuses_bad_label", "%s", err);
    free(path);
}

/* ---------------------------------------------------------------------------------------------
 * Broken shards, written tensor by tensor through the safetensors writer
 * ------------------------------------------------------------------------------------------- */

static uint8_t zeros[4096];

// The metadata of a valid sample shard of 4 latents 1 x 2 x 3 and 10 classes.
static StWriter *base_writer(void) {
    StWriter *w = st_writer_new();
    const char *kv[][2] = {
        {"format", SHARD_FORMAT}, {"format_version", "1"},
        {"source", "test"},       {"encoder", "identity"},
        {"scale_factor", "1"},    {"image_size", "2"},
        {"channels", "1"},        {"height", "2"},
        {"width", "3"},           {"count", "4"},
        {"storage", "sample"},    {"classes", "[\"0\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]"}};
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++) st_writer_meta(w, kv[i][0], kv[i][1]);
    return w;
}

static int64_t good_labels[4] = {0, 9, 2, 3};

static void add(StWriter *w, const char *name, StDtype dtype, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                int64_t d4, const void *data) {
    int64_t shape[5] = {d0, d1, d2, d3, d4};
    st_writer_add(w, name, dtype, ndim, shape, data);
}

// Saves w as NAME, opens it as a shard and expects a one-line error naming it that contains words.
static void expect_broken(const char *name, StWriter *w, const char *words) {
    char *path = xasprintf("%s/%s.safetensors", workdir, name);
    if (st_writer_save(w, path, err, sizeof(err))) {
        check(0, name, "could not write the fixture: %s", err);
    } else {
        ShardFile *s = shard_open(path, err, sizeof(err));
        check(!s && contains(err, words) && contains(err, path) && one_line(err), name, "%s", s ? "accepted" : err);
        shard_close(s);
    }
    st_writer_free(w);
    free(path);
}

static void test_broken_shards(void) {
    StWriter *w = base_writer();
    add(w, "latents", ST_F32, 4, 4, 1, 2, 3, 0, zeros);
    add(w, "labels", ST_I64, 1, 4, 0, 0, 0, 0, good_labels);
    char *path = path_in("baseline.safetensors");
    int rc = st_writer_save(w, path, err, sizeof(err));
    ShardFile *s = rc ? NULL : shard_open(path, err, sizeof(err));
    check(s != NULL, "shard_baseline_fixture_opens", "%s", s ? "" : err);
    shard_close(s);
    st_writer_free(w);

    // a truncated copy of the baseline
    FILE *f = fopen(path, "rb");
    char buf[8192];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    char *cut = path_in("truncated.safetensors");
    f = fopen(cut, "wb");
    fwrite(buf, 1, n - 10, f);
    fclose(f);
    s = shard_open(cut, err, sizeof(err));
    check(!s && contains(err, cut) && contains(err, "outside the") && one_line(err), "shard_truncated", "%s", err);
    free(cut);
    free(path);
    char *text = path_in("text.safetensors");
    f = fopen(text, "w");
    fputs("this is not a shard at all\n", f);
    fclose(f);
    s = shard_open(text, err, sizeof(err));
    check(!s && contains(err, text) && one_line(err), "shard_not_safetensors", "%s", err);
    free(text);

#define CASE(NAME, WORDS, ...)                                                                                         \
    do {                                                                                                               \
        StWriter *w_ = base_writer();                                                                                  \
        __VA_ARGS__;                                                                                                   \
        expect_broken(NAME, w_, WORDS);                                                                                \
    } while (0)
#define LATENTS add(w_, "latents", ST_F32, 4, 4, 1, 2, 3, 0, zeros)
#define LABELS add(w_, "labels", ST_I64, 1, 4, 0, 0, 0, 0, good_labels)
    CASE("shard_no_format", "not a dydit latent shard", st_writer_meta(w_, "format", "other"); LATENTS; LABELS);
    CASE("shard_newer_version", "format_version 2 is newer", st_writer_meta(w_, "format_version", "2"); LATENTS;
         LABELS);
    CASE("shard_bad_storage", "storage 'baked' is neither", st_writer_meta(w_, "storage", "baked"); LATENTS; LABELS);
    CASE("shard_bad_classes", "classes is not valid JSON", st_writer_meta(w_, "classes", "[a, b]"); LATENTS; LABELS);
    CASE("shard_no_classes", "classes must be a JSON list", st_writer_meta(w_, "classes", "[]"); LATENTS; LABELS);
    CASE("shard_bad_channels", "channels = '0' is not an integer", st_writer_meta(w_, "channels", "0"); LATENTS;
         LABELS);
    CASE("shard_bad_scale", "scale_factor '-1' is not a positive", st_writer_meta(w_, "scale_factor", "-1"); LATENTS;
         LABELS);
    CASE("shard_latents_dtype", "tensor 'latents' has dtype I32, want F16 or F32",
         add(w_, "latents", ST_I32, 4, 4, 1, 2, 3, 0, zeros);
         LABELS);
    CASE("shard_latents_shape", "tensor 'latents' has shape [4, 1, 2, 4], want [4, 1, 2, 3]",
         add(w_, "latents", ST_F32, 4, 4, 1, 2, 4, 0, zeros);
         LABELS);
    CASE("shard_latents_ndim", "tensor 'latents' has shape [4, 6], want [4, 1, 2, 3]",
         add(w_, "latents", ST_F32, 2, 4, 6, 0, 0, 0, zeros);
         LABELS);
    CASE("shard_count_disagrees", "has shape [4, 1, 2, 3], want [5, 1, 2, 3]", st_writer_meta(w_, "count", "5");
         LATENTS; LABELS);
    CASE("shard_labels_count", "tensor 'labels' has shape [3], want [4]", LATENTS;
         add(w_, "labels", ST_I64, 1, 3, 0, 0, 0, 0, good_labels));
    CASE("shard_labels_dtype", "tensor 'labels' has dtype I32, want I64", LATENTS;
         add(w_, "labels", ST_I32, 1, 4, 0, 0, 0, 0, good_labels));
    static const int64_t high[4] = {0, 1, 10, 2}, negative[4] = {0, -1, 1, 2};
    CASE("shard_label_too_large", "label 10 of sample 2 is outside [0, 10)", LATENTS;
         add(w_, "labels", ST_I64, 1, 4, 0, 0, 0, 0, high));
    CASE("shard_label_negative", "label -1 of sample 1 is outside [0, 10)", LATENTS;
         add(w_, "labels", ST_I64, 1, 4, 0, 0, 0, 0, negative));
    CASE("shard_missing_labels", "no tensor 'labels' (want [4])", LATENTS);
    CASE("shard_extra_tensor", "unexpected tensor 'junk' for storage 'sample'", LATENTS; LABELS;
         add(w_, "junk", ST_F32, 1, 2, 0, 0, 0, 0, zeros));
    CASE("shard_posterior_missing_std", "no tensor 'std' (want [4, 2, 1, 2, 3])",
         st_writer_meta(w_, "storage", "posterior");
         add(w_, "mean", ST_F16, 5, 4, 2, 1, 2, 3, zeros); LABELS);
    CASE("shard_posterior_mixed_dtypes", "tensor 'std' has dtype F32 but 'mean' has F16",
         st_writer_meta(w_, "storage", "posterior");
         add(w_, "mean", ST_F16, 5, 4, 2, 1, 2, 3, zeros); add(w_, "std", ST_F32, 5, 4, 2, 1, 2, 3, zeros); LABELS);
    CASE("shard_posterior_with_latents", "unexpected tensor 'latents' for storage 'posterior'",
         st_writer_meta(w_, "storage", "posterior");
         LATENTS; LABELS);
#undef CASE
#undef LATENTS
#undef LABELS
}

/* ---------------------------------------------------------------------------------------------
 * Index and set-level checks
 * ------------------------------------------------------------------------------------------- */

static float ramp(int64_t i, int flip, int64_t e) { return (float)(i * 100 + e); }

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void expect_loader_error(const char *name, const char *dir, const char *words) {
    LoaderConfig cfg = {.global_batch = 2, .rank = 0, .world = 1, .seed = 1};
    Loader *l = loader_open(dir, &cfg, err, sizeof(err));
    check(!l && contains(err, words) && one_line(err), name, "%s", l ? "accepted" : err);
    loader_close(l);
}

static void test_index_and_set(void) {
    ShardLayout l = fixture_layout(1, 2, 3, 10, SHARD_SAMPLE, ST_F32, 1.0);
    int64_t counts[3] = {4, 0, 3};
    char *dir = path_in("set");
    int rc = fixture_write_set(dir, &l, counts, 3, ramp, NULL, err, sizeof(err));
    ShardIndex ix;
    if (rc == 0) rc = shard_index_read(dir, &ix, err, sizeof(err));
    char what[256] = "";
    check(rc == 0 && ix.count == 7 && ix.shard_count == 3 && ix.shards[1].count == 0 &&
              !strcmp(ix.shards[2].file, "shard-00002.safetensors") &&
              shard_layout_compare(&ix.layout, &l, what, sizeof(what)) == 0,
          "shard_index_round_trip", "%s%s", rc ? err : "", what);
    if (rc == 0) shard_index_free(&ix);

    char *index = xasprintf("%s/index.json", dir), *shard1 = xasprintf("%s/shard-00001.safetensors", dir);
    FILE *f = fopen(index, "r");
    char good[4096];
    size_t n = fread(good, 1, sizeof(good) - 1, f);
    good[n] = '\0';
    fclose(f);
    LoaderConfig cfg = {.global_batch = 7, .rank = 0, .world = 1, .seed = 3};
    Loader *ld = loader_open(dir, &cfg, err, sizeof(err));
    check(ld && loader_info(ld).count == 7 && loader_info(ld).num_classes == 10, "loader_opens_set_with_empty_shard",
          "%s", ld ? "" : err);
    loader_close(ld);

    // the index disagrees with a shard's count
    char *edited = xstrdup(good), *p = strstr(edited, "\"count\": 3}");
    p[9] = '5';
    char *q = strstr(edited, "\"count\": 7");
    q[9] = '9';
    write_text(index, edited);
    expect_loader_error("loader_shard_count_vs_index", dir, "holds 3 samples");
    // counts that do not add up
    q[9] = '8';
    write_text(index, edited);
    expect_loader_error("index_counts_do_not_add_up", dir, "shard counts add up to 9, but count is 8");
    free(edited);
    // a shard of another set (other classes)
    write_text(index, good);
    ShardLayout other = fixture_layout(1, 2, 3, 11, SHARD_SAMPLE, ST_F32, 1.0);
    ShardData empty = {.count = 0};
    rc = shard_write(shard1, &other, &empty, err, sizeof(err));
    check(rc == 0, "shard_write_empty", "%s", rc ? err : "");
    expect_loader_error("loader_shard_layout_vs_index", dir, "does not match");
    check(contains(err, "11 vs 10 classes"), "loader_layout_difference_named", "%s", err);
    unlink(shard1);
    expect_loader_error("loader_missing_shard", dir, "shard-00001.safetensors: cannot open");
    unlink(index);
    expect_loader_error("loader_missing_index", dir, "unfinished dydit encode");
    write_text(index, "{\"format\": \"dydit-latents-index\", ");
    expect_loader_error("index_not_json", dir, "index.json: not valid JSON");
    char *bad_dtype = xstrdup(good);
    memcpy(strstr(bad_dtype, "\"F32\""), "\"I32\"", 5);
    write_text(index, bad_dtype);
    expect_loader_error("index_bad_dtype", dir, "dtype 'I32' is neither F16 nor F32");
    free(bad_dtype);
    write_text(index, good);
    cfg.world = 2;
    ld = loader_open(dir, &cfg, err, sizeof(err));
    check(!ld && contains(err, "divisible by the world size"), "loader_batch_not_divisible", "%s", err);
    free(index);
    free(shard1);
    free(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
        return 2;
    }
    workdir_init(argv[1], "shards");
    test_half();
    test_round_trip(ST_F32, SHARD_SAMPLE);
    test_round_trip(ST_F16, SHARD_SAMPLE);
    test_round_trip(ST_F32, SHARD_POSTERIOR);
    test_round_trip(ST_F16, SHARD_POSTERIOR);
    test_writer_refuses_bad_labels();
    test_broken_shards();
    test_index_and_set();
    return check_exit();
}
