// tests/test_npz.c: the .npz writer: ZIP64 records of a 9.8 GB archive checked field by field
// (without writing it), a small archive read back byte by byte, and misuse reported.
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data/npz.h"
#include "tests/check.h"
#include "tests/workdir.h"

static uint64_t get(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

// The DiT evaluation batch: 50,000 images of 256x256x3 behind a 128-byte npy header.
static void test_zip64_records(void) {
    const uint64_t size = 128 + 50000ull * 256 * 256 * 3;
    ZipMember m = {.name = "arr_0.npy", .size = size, .local_offset = 0, .crc = 0x12345678u, .zip64 = 1};
    check(zip_needs_zip64(size, 59) && !zip_needs_zip64(1000, 59) && zip_needs_zip64(0xFFFFFFFFull - 59, 59) &&
              !zip_needs_zip64(0xFFFFFFFEull - 59, 59),
          "npz.zip64_threshold", "ZIP64 once an offset or size reaches 0xFFFFFFFF");

    uint8_t local[ZIP_RECORDS_MAX];
    size_t n = zip_local_header(local, &m);
    int ok = n == 30 + 9 + 20 && get(local, 4) == 0x04034b50 && get(local + 4, 2) == 45 && get(local + 8, 2) == 0 &&
             get(local + 14, 4) == 0x12345678u && get(local + 18, 4) == 0xFFFFFFFFu &&
             get(local + 22, 4) == 0xFFFFFFFFu && get(local + 26, 2) == 9 && get(local + 28, 2) == 20 &&
             memcmp(local + 30, "arr_0.npy", 9) == 0 && get(local + 39, 2) == 1 && get(local + 41, 2) == 16 &&
             get(local + 43, 8) == size && get(local + 51, 8) == size;
    check(ok, "npz.zip64_local_header", "%zu bytes, sizes in the ZIP64 extra field", n);

    const uint64_t directory = n + size; // past 4 GiB
    uint8_t tail[ZIP_RECORDS_MAX];
    size_t t = zip_directory(tail, &m, directory);
    const uint8_t *c = tail, *end64 = tail + 46 + 9 + 28, *locator = end64 + 56, *end = locator + 20;
    ok = t == 46 + 9 + 28 + 56 + 20 + 22 && get(c, 4) == 0x02014b50 && get(c + 20, 4) == 0xFFFFFFFFu &&
         get(c + 24, 4) == 0xFFFFFFFFu && get(c + 30, 2) == 28 && get(c + 42, 4) == 0xFFFFFFFFu &&
         get(c + 55, 2) == 1 && get(c + 57, 2) == 24 && get(c + 59, 8) == size && get(c + 67, 8) == size &&
         get(c + 75, 8) == 0;
    check(ok, "npz.zip64_central_header", "sizes and offset escaped, all three in the extra field");
    ok = get(end64, 4) == 0x06064b50 && get(end64 + 4, 8) == 44 && get(end64 + 24, 8) == 1 && get(end64 + 32, 8) == 1 &&
         get(end64 + 40, 8) == 83 && get(end64 + 48, 8) == directory && get(locator, 4) == 0x07064b50 &&
         get(locator + 8, 8) == directory + 83 && get(locator + 16, 4) == 1 && get(end, 4) == 0x06054b50 &&
         get(end + 10, 2) == 1 && get(end + 12, 4) == 83 && get(end + 16, 4) == 0xFFFFFFFFu;
    check(ok, "npz.zip64_end_records", "directory at %llu, ZIP64 end record at %llu", (unsigned long long)directory,
          (unsigned long long)(directory + 83));
}

static uint8_t *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *data = malloc(*size);
    if (fread(data, 1, *size, f) != *size) *size = 0;
    fclose(f);
    return data;
}

// A (3, 7) array read back: npy header alignment, CRC, sizes and the end record.
static void test_small_archive(int zip64) {
    char *path = path_in(zip64 ? "small64.npz" : "small.npz"), err[512];
    int64_t shape[2] = {3, 7};
    uint8_t values[21];
    for (int i = 0; i < 21; i++) values[i] = (uint8_t)(200 + i);
    NpzWriter *w = npz_open(path, 2, shape, zip64, err, sizeof(err));
    int rc = !w || npz_append(w, values, 21, err, sizeof(err)) || npz_close(w, err, sizeof(err));
    size_t size = 0;
    uint8_t *zip = rc ? NULL : read_file(path, &size);
    const char *name = zip64 ? "npz.small_zip64_archive" : "npz.small_archive";
    if (!zip || size < 100) {
        check(0, name, "%s", rc ? err : "cannot read it back");
        return;
    }
    size_t local = 30 + 9 + (zip64 ? 20 : 0);
    const uint8_t *npy = zip + local;
    size_t header = 10 + get(npy + 8, 2), member = header + 21;
    const char *dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 7), }";
    uint32_t crc = (uint32_t)crc32(0, npy, (uInt)member);
    const uint8_t *end = zip + size - 22;
    int ok = memcmp(npy, "\x93NUMPY\x01\x00", 8) == 0 && header % 64 == 0 && npy[header - 1] == '\n' &&
             memcmp(npy + 10, dict, strlen(dict)) == 0 && memcmp(npy + header, values, 21) == 0 &&
             get(zip + 14, 4) == crc && get(end, 4) == 0x06054b50 &&
             (zip64 ? get(zip + 22, 4) == 0xFFFFFFFFu && get(zip + 43, 8) == member && get(end + 16, 4) == 0xFFFFFFFFu
                    : get(zip + 22, 4) == member && get(end + 16, 4) == local + member);
    check(ok, name, "%zu bytes, npy header %zu bytes, crc %08x", size, header, crc);
    free(zip);
}

static void test_misuse(void) {
    char *path = path_in("short.npz"), err[512] = "";
    int64_t shape[1] = {10};
    uint8_t data[16] = {0};
    NpzWriter *w = npz_open(path, 1, shape, 0, err, sizeof(err));
    int rc = w ? npz_append(w, data, 4, err, sizeof(err)) : -1;
    struct stat st;
    rc = rc == 0 && npz_close(w, err, sizeof(err)) != 0;
    check(rc && contains(err, "only 4 of the array's 10 bytes") && stat(path, &st) != 0, "npz.too_few_bytes", "%s",
          err);
    w = npz_open(path, 1, shape, 0, err, sizeof(err));
    rc = w && npz_append(w, data, 11, err, sizeof(err)) != 0;
    check(rc && contains(err, "more than the array's 10 bytes") && stat(path, &st) != 0, "npz.too_many_bytes", "%s",
          err);
    int64_t bad[1] = {-1};
    check(!npz_open(path, 1, bad, 0, err, sizeof(err)) && contains(err, "short.npz: cannot store"), "npz.bad_shape",
          "%s", err);
    check(!npz_open("/nonexistent-dir/x.npz", 1, shape, 0, err, sizeof(err)) && contains(err, "cannot create"),
          "npz.unwritable", "%s", err);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: test_npz WORKDIR\n");
        return 2;
    }
    workdir_init(argv[1], "npz");
    test_zip64_records();
    test_small_archive(0);
    test_small_archive(1);
    test_misuse();
    return check_exit();
}
