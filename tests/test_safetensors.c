// tests/test_safetensors.c: the safetensors reader and writer: round trips of every dtype, every
// kind of broken file, writer errors, offsets past 4 GiB. Usage: test_safetensors WORKDIR
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/safetensors.h"
#include "tests/check.h"
#include "tests/workdir.h"

static char err[512];

static int no_temp_files_left(const char *dir_file) {
    char *pattern = xasprintf("%s.tmp.", dir_file);
    char *cmd = xasprintf("ls '%s'* 2>/dev/null | grep -q .", pattern);
    int left = system(cmd) == 0;
    free(cmd);
    free(pattern);
    return !left;
}

static void test_round_trip(void) {
    char *path = path_in("all.safetensors");
    uint8_t b8[5] = {0, 1, 1, 0, 1}, u8[3] = {0, 128, 255}, e5[2] = {0x3c, 0xc0}, e4[2] = {0x38, 0xb8};
    int8_t i8[3] = {-128, 0, 127};
    int16_t i16[2] = {-32768, 32767};
    uint16_t u16[2] = {0, 65535};
    uint16_t f16[6] = {0x3C00, 0xC000, 0x3800, 0x0001, 0x7C00, 0x0000}; // 1, -2, 0.5, 2^-24, inf, 0
    uint16_t bf16[3] = {0x3F80, 0xC040, 0x3E80};                        // 1, -3, 0.25
    int32_t i32[2] = {INT32_MIN, INT32_MAX};
    uint32_t u32[2] = {0, UINT32_MAX};
    float f32[6] = {1.5f, -2.25f, 3e-38f, 1e38f, 0.0f, -0.0f};
    double f64[2] = {0.1, -1e10};
    int64_t i64[2] = {INT64_MIN, INT64_MAX};
    uint64_t u64[2] = {0, (uint64_t)INT64_MAX};
    float scalar = 42.0f;
    const struct {
        const char *name;
        StDtype dtype;
        int ndim;
        int64_t shape[3];
        const void *data;
    } items[] = {
        {"bool", ST_BOOL, 1, {5}, b8},      {"u8", ST_U8, 1, {3}, u8},
        {"i8", ST_I8, 1, {3}, i8},          {"i16", ST_I16, 1, {2}, i16},
        {"u16", ST_U16, 1, {2}, u16},       {"f16", ST_F16, 2, {2, 3}, f16},
        {"bf16", ST_BF16, 1, {3}, bf16},    {"i32", ST_I32, 1, {2}, i32},
        {"u32", ST_U32, 1, {2}, u32},       {"f32", ST_F32, 3, {1, 2, 3}, f32},
        {"f64", ST_F64, 1, {2}, f64},       {"i64", ST_I64, 1, {2}, i64},
        {"u64", ST_U64, 1, {2}, u64},       {"e5m2", ST_F8_E5M2, 1, {2}, e5},
        {"e4m3", ST_F8_E4M3, 1, {2}, e4},   {"scalar", ST_F32, 0, {0}, &scalar},
        {"empty", ST_F32, 2, {0, 7}, NULL}, {"weird \"name\" \xc3\xa9", ST_U8, 1, {1}, u8},
    };
    const int n = (int)(sizeof(items) / sizeof(items[0]));
    StWriter *w = st_writer_new();
    st_writer_meta(w, "step", "1");
    st_writer_meta(w, "quote", "a \"b\" \\ c\n");
    st_writer_meta(w, "step", "1000"); // the last value wins
    for (int i = 0; i < n; i++)
        st_writer_add(w, items[i].name, items[i].dtype, items[i].ndim, items[i].shape, items[i].data);
    int rc = st_writer_save(w, path, err, sizeof(err));
    st_writer_free(w);
    check(rc == 0, "st_write_all_dtypes", "%s", rc ? err : "");
    check_true(no_temp_files_left(path), "st_write_no_temp_left");

    StFile *f = st_open(path, err, sizeof(err));
    check(f != NULL, "st_open_round_trip", "%s", f ? "" : err);
    if (!f) return;
    struct stat st;
    stat(path, &st);
    int fd = open(path, O_RDONLY);
    uint64_t header_len = 0;
    if (read(fd, &header_len, 8) != 8) header_len = 1;
    close(fd);
    check((8 + header_len) % 8 == 0, "st_header_aligned_to_8", "header %llu bytes", (unsigned long long)header_len);
    check(st_count(f) == n, "st_count", "%d", st_count(f));
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        const StTensor *t = st_tensor(f, i);
        ok = t && strcmp(t->name, items[i].name) == 0 && t->dtype == items[i].dtype && t->ndim == items[i].ndim;
        for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == items[i].shape[d];
        if (!ok) break;
        uint64_t bytes = t->end - t->begin;
        unsigned char *buf = xmalloc(bytes + 1);
        ok = st_read_bytes(f, t, buf, err, sizeof(err)) == 0 && (bytes == 0 || memcmp(buf, items[i].data, bytes) == 0);
        free(buf);
    }
    check_true(ok, "st_names_dtypes_shapes_bytes");
    check_true(contains(st_meta(f, "step"), "1000") && strcmp(st_meta(f, "quote"), "a \"b\" \\ c\n") == 0 &&
                   !st_meta(f, "nothing") && st_meta_count(f) == 2,
               "st_metadata_round_trip");
    check_true(st_numel(st_find(f, "scalar")) == 1 && st_numel(st_find(f, "empty")) == 0 &&
                   st_find(f, "weird \"name\" \xc3\xa9"),
               "st_scalar_and_empty");

    float h[6], b[3], d[2], s;
    st_read_f32(f, st_find(f, "f16"), h, err, sizeof(err));
    st_read_f32(f, st_find(f, "bf16"), b, err, sizeof(err));
    st_read_f32(f, st_find(f, "f64"), d, err, sizeof(err));
    st_read_f32(f, st_find(f, "scalar"), &s, err, sizeof(err));
    check_true(h[0] == 1.0f && h[1] == -2.0f && h[2] == 0.5f && h[3] == 0x1p-24f && h[4] > 3e38f && h[5] == 0.0f,
               "st_read_f16");
    check_true(b[0] == 1.0f && b[1] == -3.0f && b[2] == 0.25f, "st_read_bf16");
    check_true(d[0] == 0.1f && d[1] == -1e10f && s == 42.0f, "st_read_f64_and_scalar");

    int64_t v[6];
    int iok = 1;
    iok &= st_read_i64(f, st_find(f, "bool"), v, err, sizeof(err)) == 0 && v[1] == 1 && v[3] == 0;
    iok &= st_read_i64(f, st_find(f, "i8"), v, err, sizeof(err)) == 0 && v[0] == -128 && v[2] == 127;
    iok &= st_read_i64(f, st_find(f, "u8"), v, err, sizeof(err)) == 0 && v[2] == 255;
    iok &= st_read_i64(f, st_find(f, "i16"), v, err, sizeof(err)) == 0 && v[0] == -32768;
    iok &= st_read_i64(f, st_find(f, "u16"), v, err, sizeof(err)) == 0 && v[1] == 65535;
    iok &= st_read_i64(f, st_find(f, "i32"), v, err, sizeof(err)) == 0 && v[0] == INT32_MIN;
    iok &= st_read_i64(f, st_find(f, "u32"), v, err, sizeof(err)) == 0 && v[1] == UINT32_MAX;
    iok &= st_read_i64(f, st_find(f, "i64"), v, err, sizeof(err)) == 0 && v[0] == INT64_MIN && v[1] == INT64_MAX;
    iok &= st_read_i64(f, st_find(f, "u64"), v, err, sizeof(err)) == 0 && v[1] == INT64_MAX;
    check(iok, "st_read_i64_all_integer_dtypes", "%s", iok ? "" : err);
    check(st_read_f32(f, st_find(f, "i32"), h, err, sizeof(err)) != 0 && contains(err, "want a float"),
          "st_read_f32_rejects_int", "%s", err);
    check(st_read_i64(f, st_find(f, "f32"), v, err, sizeof(err)) != 0 && contains(err, "want an integer"),
          "st_read_i64_rejects_float", "%s", err);
    st_close(f);
    free(path);
}

/* ---------------------------------------------------------------------------------------------
 * Broken files
 * ------------------------------------------------------------------------------------------- */

// length | header | data_bytes zero bytes; length_override replaces the stored length when nonzero.
static char *write_raw(const char *name, const char *header, uint64_t data_bytes, uint64_t length_override) {
    char *path = path_in(name);
    FILE *fp = fopen(path, "wb");
    uint64_t len = length_override ? length_override : strlen(header);
    fwrite(&len, 8, 1, fp);
    fwrite(header, 1, strlen(header), fp);
    for (uint64_t i = 0; i < data_bytes; i++) fputc(0, fp);
    fclose(fp);
    return path;
}

static void expect_open_error(const char *name, const char *path, const char *words) {
    StFile *f = st_open(path, err, sizeof(err));
    check(!f && contains(err, words) && contains(err, path), name, "%s", f ? "opened" : err);
    st_close(f);
}

static void broken(const char *name, const char *header, uint64_t data_bytes, const char *words) {
    char *file = xasprintf("%s.safetensors", name);
    char *path = write_raw(file, header, data_bytes, 0);
    expect_open_error(name, path, words);
    free(path);
    free(file);
}

#define T(name, dtype, shape, offsets)                                                                                 \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":" offsets "}"

static void test_broken_files(void) {
    char *path = path_in("short.safetensors");
    FILE *fp = fopen(path, "wb");
    fwrite("12345", 1, 5, fp);
    fclose(fp);
    expect_open_error("st_err_file_shorter_than_8", path, "shorter than the 8-byte");
    free(path);

    path = write_raw("hugelen.safetensors", "{}", 0, 1000);
    expect_open_error("st_err_header_longer_than_file", path, "larger than the rest of the file");
    free(path);

    // A sparse 200 MB file whose header claims 150 MB: over the 100 MB cap, within the file.
    path = write_raw("cap.safetensors", "{}", 0, 150u * 1000u * 1000u);
    int ok = truncate(path, 200 * 1000 * 1000) == 0;
    if (ok)
        expect_open_error("st_err_header_over_100MB", path, "exceeds the 100000000-byte limit");
    else
        check(0, "st_err_header_over_100MB", "cannot make a sparse file: %s", path);
    unlink(path);
    free(path);

    path = path_in("missing.safetensors");
    expect_open_error("st_err_missing_file", path, "cannot open");
    free(path);
    expect_open_error("st_err_directory", workdir, "not a regular file");

    broken("st_err_not_json", "{abc}", 0, "not valid JSON");
    broken("st_err_not_object", "[1, 2]", 0, "does not start with '{'");
    broken("st_err_entry_not_object", "{\"x\": 3}", 0, "not an object");
    broken("st_err_unknown_dtype", "{" T("x", "F48", "[1]", "[0,4]") "}", 4, "unknown dtype 'F48'");
    broken("st_err_negative_shape", "{" T("x", "F32", "[-1]", "[0,4]") "}", 4, "non-negative");
    broken("st_err_shape_overflow", "{" T("x", "F32", "[4611686018427387904, 4]", "[0,4]") "}", 4, "overflows");
    broken("st_err_too_many_dims", "{" T("x", "U8", "[1,1,1,1,1,1,1,1,1]", "[0,1]") "}", 1, "more than 8");
    broken("st_err_offsets_outside", "{" T("x", "F32", "[2]", "[0,8]") "}", 4, "outside the 4-byte data buffer");
    broken("st_err_offsets_reversed", "{" T("x", "U8", "[0]", "[4,0]") "}", 4, "outside");
    broken("st_err_offsets_not_pair", "{" T("x", "U8", "[1]", "[0]") "}", 1, "pair");
    broken("st_err_size_mismatch", "{" T("x", "F32", "[2, 3]", "[0,12]") "}", 12,
           "data_offsets [0, 12] but F32 [2, 3] needs 24 bytes");
    broken("st_err_overlap", "{" T("a", "F32", "[2]", "[0,8]") "," T("b", "F32", "[2]", "[4,12]") "}", 12, "overlaps");
    broken("st_err_hole", "{" T("a", "F32", "[1]", "[0,4]") "," T("b", "F32", "[1]", "[8,12]") "}", 12,
           "belong to no tensor");
    broken("st_err_trailing_bytes", "{" T("a", "F32", "[1]", "[0,4]") "}", 8, "bytes [4, 8)");
    broken("st_err_duplicate_name", "{" T("a", "F32", "[1]", "[0,4]") "," T("a", "F32", "[1]", "[4,8]") "}", 8,
           "duplicate key 'a'");
    broken("st_err_metadata_not_string", "{\"__metadata__\":{\"step\":5}}", 0, "metadata value for 'step'");
    broken("st_err_metadata_not_object", "{\"__metadata__\":[]}", 0, "__metadata__ is a JSON array");
    broken("st_err_unknown_field", "{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"pad\":1}}", 1,
           "unknown field 'pad'");
    broken("st_err_missing_field", "{\"x\":{\"dtype\":\"U8\",\"shape\":[1]}}", 1, "lacks 'data_offsets'");
    broken("st_err_bad_utf8_name", "{\"\xff\":{}}", 0, "UTF-8");

    // Headers padded with spaces (as writers align the data) are fine.
    path = write_raw("padded.safetensors", "{" T("a", "U8", "[2]", "[0,2]") "}     ", 2, 0);
    StFile *f = st_open(path, err, sizeof(err));
    check(f && st_count(f) == 1, "st_padded_header_accepted", "%s", f ? "" : err);
    st_close(f);
    free(path);

    // A file truncated after it was opened: the read reports it, nothing crashes.
    path = write_raw("shrinks.safetensors", "{" T("a", "F32", "[4]", "[0,16]") "}", 16, 0);
    f = st_open(path, err, sizeof(err));
    float out[4];
    ok = f && truncate(path, 8 + (off_t)strlen("{" T("a", "F32", "[4]", "[0,16]") "}") + 4) == 0;
    check(ok && st_read_f32(f, st_find(f, "a"), out, err, sizeof(err)) != 0 && contains(err, "end of file"),
          "st_err_truncated_later", "%s", err);
    st_close(f);
    free(path);
}

static void test_writer_errors(void) {
    char *path = path_in("keep.safetensors");
    float x[2] = {1, 2};
    int64_t shape[9] = {2, 1, 1, 1, 1, 1, 1, 1, 1};
    StWriter *w = st_writer_new();
    st_writer_add(w, "x", ST_F32, 1, shape, x);
    int rc = st_writer_save(w, path, err, sizeof(err));
    st_writer_free(w);
    check(rc == 0, "st_writer_first_save", "%s", rc ? err : "");

    w = st_writer_new();
    st_writer_add(w, "y", ST_F32, 1, shape, x);
    st_writer_add(w, "y", ST_F32, 1, shape, x);
    rc = st_writer_save(w, path, err, sizeof(err));
    st_writer_free(w);
    check(rc != 0 && contains(err, "duplicate tensor name 'y'"), "st_writer_err_duplicate", "%s", err);
    StFile *f = st_open(path, err, sizeof(err));
    check_true(f && st_find(f, "x") && !st_find(f, "y"), "st_writer_failed_save_keeps_old_file");
    st_close(f);

    w = st_writer_new();
    st_writer_add(w, "z", ST_U8, 9, shape, x);
    rc = st_writer_save(w, path, err, sizeof(err));
    st_writer_free(w);
    check(rc != 0 && contains(err, "9 dims"), "st_writer_err_ndim", "%s", err);

    w = st_writer_new();
    st_writer_add(w, "__metadata__", ST_U8, 1, shape, x);
    rc = st_writer_save(w, path, err, sizeof(err));
    st_writer_free(w);
    check(rc != 0 && contains(err, "__metadata__"), "st_writer_err_reserved_name", "%s", err);

    w = st_writer_new();
    int64_t negative = -1;
    st_writer_add(w, "n", ST_U8, 1, &negative, x);
    rc = st_writer_save(w, path, err, sizeof(err));
    st_writer_free(w);
    check(rc != 0 && contains(err, "negative"), "st_writer_err_negative_shape", "%s", err);

    char *bad_dir = path_in("no/such/dir/w.safetensors");
    w = st_writer_new();
    rc = st_writer_save(w, bad_dir, err, sizeof(err));
    st_writer_free(w);
    check(rc != 0 && contains(err, "temporary file"), "st_writer_err_no_directory", "%s", err);
    free(bad_dir);
    free(path);
}

// Offsets past 4 GiB: a sparse file with a 5 GB tensor, then a small one behind it.
static void test_offsets_beyond_4gib(void) {
    const uint64_t big = 5000000000ull;
    char header[512];
    snprintf(header, sizeof(header),
             "{\"big\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]},"
             "\"tail\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[%llu,%llu]}}",
             (unsigned long long)big, (unsigned long long)big, (unsigned long long)big, (unsigned long long)big + 8);
    size_t n = strlen(header);
    while ((8 + n) % 8) header[n++] = ' ';
    header[n] = '\0';
    char *path = write_raw("sparse.safetensors", header, 0, 0);
    float tail[2] = {3.25f, -7.5f};
    int fd = open(path, O_WRONLY);
    int ok = fd >= 0 && ftruncate(fd, (off_t)(8 + n + big + 8)) == 0 &&
             pwrite(fd, tail, sizeof(tail), (off_t)(8 + n + big)) == (ssize_t)sizeof(tail);
    if (fd >= 0) close(fd);
    if (!ok) {
        check(0, "st_offsets_beyond_4GiB", "cannot make a sparse 5 GB file in %s", workdir);
    } else {
        StFile *f = st_open(path, err, sizeof(err));
        float got[2] = {0, 0};
        int rc = f ? st_read_f32(f, st_find(f, "tail"), got, err, sizeof(err)) : -1;
        check(f && rc == 0 && st_numel(st_find(f, "big")) == (int64_t)big && st_find(f, "tail")->begin == big &&
                  got[0] == 3.25f && got[1] == -7.5f,
              "st_offsets_beyond_4GiB", "%s", f && rc == 0 ? "" : err);
        st_close(f);
    }
    unlink(path);
    free(path);
}

/* ---------------------------------------------------------------------------------------------
 * Weights
 * ------------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
        return 2;
    }
    workdir_init(argv[1], "safetensors");
    test_round_trip();
    test_broken_files();
    test_writer_errors();
    test_offsets_beyond_4gib();
    return check_exit();
}
