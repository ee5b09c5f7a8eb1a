// tests/test_idx.c: the IDX reader on the real Fashion-MNIST files (compared with an independent
// reading by Python's gzip module and numpy, run at test time) and on broken files: wrong magic,
// wrong dims, truncated data, trailing bytes, a cut gzip stream, missing files, bad labels.
// Usage: test_idx WORKDIR (the environment variable PYTHON names the interpreter).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "data/idx.h"
#include "tests/check.h"
#include "tests/workdir.h"

static char err[1024];

// What Python reads from one split: counts, dims, the first 20 labels, per-class counts, the sum
// of all pixels, a checksum weighting each pixel by its image and its position, and image 7's sum.
typedef struct {
    long long count, rows, cols, labels_count;
    int first_labels[20];
    long long per_class[10];
    unsigned long long pixel_sum, weighted, image7_sum;
} Facts;

static const char *facts_script =
    "import gzip, struct, sys\n"
    "import numpy as np\n"
    "d, p = sys.argv[1], sys.argv[2]\n"
    "img = gzip.open(f'{d}/{p}-images-idx3-ubyte.gz').read()\n"
    "lab = gzip.open(f'{d}/{p}-labels-idx1-ubyte.gz').read()\n"
    "m, n, r, c = struct.unpack('>4i', img[:16])\n"
    "ml, nl = struct.unpack('>2i', lab[:8])\n"
    "assert m == 2051 and ml == 2049 and len(img) == 16 + n * r * c and len(lab) == 8 + nl\n"
    "x = np.frombuffer(img, np.uint8, offset=16).reshape(n, r * c)\n"
    "y = np.frombuffer(lab, np.uint8, offset=8)\n"
    "rows, cols = x.sum(1, dtype=np.uint64), x.sum(0, dtype=np.uint64)\n"
    "w = int((rows * (np.arange(n, dtype=np.uint64) % 1009 + 1)).sum())\n"
    "w += int((cols * np.arange(1, r * c + 1, dtype=np.uint64)).sum())\n"
    "print(n, r, c, nl, *y[:20].tolist(), *np.bincount(y, minlength=10).tolist(), int(rows.sum()), w,\n"
    "      int(rows[7]))\n";

static int python_facts(const char *split_prefix, Facts *f) {
    const char *python = getenv("PYTHON") ? getenv("PYTHON") : "/usr/bin/python3";
    char *script = path_in("facts.py");
    FILE *s = fopen(script, "w");
    if (!s) return -1;
    fputs(facts_script, s);
    fclose(s);
    char *cmd = xasprintf("%s %s %s %s", python, script, FASHION_MNIST_DIR, split_prefix);
    FILE *p = popen(cmd, "r");
    int got = 0;
    if (p) {
        got += fscanf(p, "%lld %lld %lld %lld", &f->count, &f->rows, &f->cols, &f->labels_count);
        for (int i = 0; i < 20; i++) got += fscanf(p, "%d", &f->first_labels[i]);
        for (int k = 0; k < 10; k++) got += fscanf(p, "%lld", &f->per_class[k]);
        got += fscanf(p, "%llu %llu %llu", &f->pixel_sum, &f->weighted, &f->image7_sum);
        pclose(p);
    }
    free(cmd);
    free(script);
    return got == 4 + 20 + 10 + 3 ? 0 : -1;
}

static void test_real_split(const char *split, const char *prefix, long long want_count) {
    char name[64];
    FashionMnist m;
    snprintf(name, sizeof(name), "fashion_mnist_%s_load", split);
    int rc = fashion_mnist_load(FASHION_MNIST_DIR, split, &m, err, sizeof(err));
    check(rc == 0 && m.count == want_count && m.rows == 28 && m.cols == 28, name, "%s", rc ? err : "");
    if (rc) return;
    Facts f;
    snprintf(name, sizeof(name), "fashion_mnist_%s_python", split);
    if (python_facts(prefix, &f)) {
        check(0, name, "the Python reading failed");
        fashion_mnist_free(&m);
        return;
    }
    check(f.count == m.count && f.labels_count == m.count && f.rows == 28 && f.cols == 28, name,
          "python: %lld images %lldx%lld, %lld labels", f.count, f.rows, f.cols, f.labels_count);
    int labels_ok = 1;
    for (int i = 0; i < 20; i++) labels_ok &= m.labels[i] == f.first_labels[i];
    long long per_class[10] = {0};
    for (long long i = 0; i < m.count; i++) per_class[m.labels[i]]++;
    for (int k = 0; k < 10; k++) labels_ok &= per_class[k] == f.per_class[k] && per_class[k] == want_count / 10;
    snprintf(name, sizeof(name), "fashion_mnist_%s_labels", split);
    check(labels_ok, name, "first labels %d %d %d ..., python %d %d %d ...; balanced %lld per class", m.labels[0],
          m.labels[1], m.labels[2], f.first_labels[0], f.first_labels[1], f.first_labels[2], want_count / 10);
    unsigned long long sum = 0, weighted = 0, image7 = 0;
    size_t n = (size_t)m.count * 28 * 28;
    for (size_t i = 0; i < n; i++) { // image i / 784 weighs (i / 784) % 1009 + 1, pixel i % 784 weighs i % 784 + 1
        sum += m.images[i];
        weighted += ((unsigned long long)(i / 784 % 1009 + 1) + i % 784 + 1) * m.images[i];
    }
    for (size_t i = 7 * 784; i < 8 * 784; i++) image7 += m.images[i];
    snprintf(name, sizeof(name), "fashion_mnist_%s_pixels", split);
    check(sum == f.pixel_sum && weighted == f.weighted && image7 == f.image7_sum, name,
          "pixel sum %llu vs %llu, weighted %llu vs %llu", sum, f.pixel_sum, weighted, f.weighted);
    fashion_mnist_free(&m);
}

/* ---------------------------------------------------------------------------------------------
 * Broken files
 * ------------------------------------------------------------------------------------------- */

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

// Writes an IDX file: magic, dims, then `data_bytes` bytes of the pattern i * 7; gzip-compressed
// when gz.
static char *write_idx(const char *name, uint32_t magic, int ndim, const uint32_t *dims, size_t data_bytes, int gz) {
    char *path = path_in(name);
    unsigned char head[4 + 4 * 4];
    put_be32(head, magic);
    for (int d = 0; d < ndim; d++) put_be32(head + 4 + 4 * d, dims[d]);
    unsigned char *data = xmalloc(data_bytes + 1);
    for (size_t i = 0; i < data_bytes; i++) data[i] = (unsigned char)(i * 7);
    if (gz) {
        gzFile f = gzopen(path, "wb");
        gzwrite(f, head, (unsigned)(4 + 4 * ndim));
        if (data_bytes) gzwrite(f, data, (unsigned)data_bytes);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        fwrite(head, 1, (size_t)(4 + 4 * ndim), f);
        fwrite(data, 1, data_bytes, f);
        fclose(f);
    }
    free(data);
    return path;
}

static void expect_error(const char *name, const char *path, int ndim, const char *words) {
    IdxArray a;
    int rc = idx_read(path, ndim, &a, err, sizeof(err));
    check(rc != 0 && contains(err, words) && contains(err, path) && !strchr(err, '\n'), name, "%s",
          rc ? err : "accepted");
    if (rc == 0) idx_free(&a);
}

static void test_small_files(void) {
    uint32_t dims[3] = {3, 2, 5};
    IdxArray a;
    for (int gz = 0; gz < 2; gz++) {
        char *path = write_idx(gz ? "ok.gz" : "ok.idx", 0x803, 3, dims, 30, gz);
        int rc = idx_read(path, 3, &a, err, sizeof(err));
        int ok = rc == 0 && a.ndim == 3 && a.dims[0] == 3 && a.dims[1] == 2 && a.dims[2] == 5;
        for (int i = 0; ok && i < 30; i++) ok = a.data[i] == (unsigned char)(i * 7);
        check(ok, gz ? "idx_read_gzip" : "idx_read_plain", "%s", rc ? err : "");
        if (rc == 0) idx_free(&a);
        free(path);
    }
    char *p;
    expect_error("idx_wrong_magic_dims", p = write_idx("m1.gz", 2052, 4, (uint32_t[]){3, 2, 5, 1}, 30, 1), 3,
                 "magic 2052 says 4 dims, want 3");
    free(p);
    expect_error("idx_labels_as_images", p = write_idx("m2.gz", 2049, 1, dims, 3, 1), 3, "magic 2049 says 1 dims");
    free(p);
    expect_error("idx_float_type", p = write_idx("m3.gz", 0x0D03, 3, dims, 120, 1), 3, "not an unsigned-byte IDX");
    free(p);
    expect_error("idx_garbage_magic", p = write_idx("m4.gz", 0x50B0803, 3, dims, 30, 1), 3, "magic 0x050B0803");
    free(p);
    expect_error("idx_truncated_data", p = write_idx("t1.gz", 0x803, 3, dims, 25, 1), 3, "truncated: 25 of the 30");
    free(p);
    expect_error("idx_truncated_dims", p = write_idx("t2.gz", 0x803, 1, dims, 0, 1), 3, "while reading the dims");
    free(p);
    expect_error("idx_trailing_bytes", p = write_idx("t3.gz", 0x803, 3, dims, 31, 1), 3, "bytes after the 30");
    free(p);
    expect_error("idx_zero_dim", p = write_idx("z.gz", 0x803, 3, (uint32_t[]){0, 2, 5}, 0, 1), 3, "dim 0 is 0");
    free(p);
    expect_error("idx_huge_dims", p = write_idx("h.gz", 0x803, 3, (uint32_t[]){0x7FFFFFFF, 0x7FFFFFFF, 9}, 0, 1), 3,
                 "more than");
    free(p);
    expect_error("idx_missing", p = path_in("nope.gz"), 3, "cannot open");
    free(p);
    // a gzip stream cut in the middle: zlib notices before the IDX sizes do
    uint32_t big[3] = {50, 28, 28};
    char *full = write_idx("cut.gz", 0x803, 3, big, 50 * 784, 1);
    FILE *f = fopen(full, "rb");
    unsigned char buf[4096];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    f = fopen(full, "wb");
    fwrite(buf, 1, n / 2, f);
    fclose(f);
    expect_error("idx_cut_gzip_stream", full, 3, full);
    free(full);
}

static void write_split(const char *dir, uint32_t images, uint32_t labels, unsigned char bad_label) {
    char *sub = path_in(dir);
    make_dirs(sub);
    char *a = xasprintf("%s/train-images-idx3-ubyte.gz", dir), *b = xasprintf("%s/train-labels-idx1-ubyte.gz", dir);
    free(write_idx(a, 0x803, 3, (uint32_t[]){images, 28, 28}, (size_t)images * 784, 1));
    char *lp = path_in(b);
    gzFile f = gzopen(lp, "wb");
    unsigned char head[8];
    put_be32(head, 0x801);
    put_be32(head + 4, labels);
    gzwrite(f, head, 8);
    for (uint32_t i = 0; i < labels; i++) {
        unsigned char v = i == labels - 1 ? bad_label : (unsigned char)(i % 10);
        gzwrite(f, &v, 1);
    }
    gzclose(f);
    free(lp);
    free(a);
    free(b);
    free(sub);
}

static void test_fashion_mnist_errors(void) {
    FashionMnist m;
    char *missing = path_in("no-such-dir");
    int rc = fashion_mnist_load(missing, "train", &m, err, sizeof(err));
    check(rc != 0 && contains(err, "apt-get install dataset-fashion-mnist") && contains(err, "--fashion-mnist-dir") &&
              contains(err, "no-such-dir/train-images-idx3-ubyte.gz"),
          "fashion_mnist_missing_says_install", "%s", err);
    free(missing);
    rc = fashion_mnist_load(FASHION_MNIST_DIR, "valid", &m, err, sizeof(err));
    check(rc != 0 && contains(err, "unknown Fashion-MNIST split 'valid'"), "fashion_mnist_bad_split", "%s", err);
    write_split("fm-count", 4, 5, 3);
    char *dir = path_in("fm-count");
    rc = fashion_mnist_load(dir, "train", &m, err, sizeof(err));
    check(rc != 0 && contains(err, "holds 5 labels but") && contains(err, "4 images"), "fashion_mnist_count_mismatch",
          "%s", err);
    free(dir);
    write_split("fm-label", 4, 4, 10);
    dir = path_in("fm-label");
    rc = fashion_mnist_load(dir, "train", &m, err, sizeof(err));
    check(rc != 0 && contains(err, "label 10 of image 3 is not a class"), "fashion_mnist_label_range", "%s", err);
    free(dir);
    write_split("fm-ok", 4, 4, 9);
    dir = path_in("fm-ok");
    rc = fashion_mnist_load(dir, "train", &m, err, sizeof(err));
    check(rc == 0 && m.count == 4 && m.labels[3] == 9, "fashion_mnist_small_dir", "%s", rc ? err : "");
    if (rc == 0) fashion_mnist_free(&m);
    free(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
        return 2;
    }
    workdir_init(argv[1], "idx");
    test_real_split("train", "train", 60000);
    test_real_split("test", "t10k", 10000);
    check_true(!strcmp(fashion_mnist_class_names[0], "T-shirt/top") &&
                   !strcmp(fashion_mnist_class_names[9], "Ankle boot"),
               "fashion_mnist_class_names");
    test_small_files();
    test_fashion_mnist_errors();
    return check_exit();
}
