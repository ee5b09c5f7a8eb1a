#include "data/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "data/half.h"
#include "data/json.h"

// Tensor bytes go between memory and disk unchanged, and safetensors is little-endian.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "data/safetensors.c assumes a little-endian host"
#endif

static const struct {
    const char *name;
    int size;
} dtype_info[ST_DTYPE_COUNT] = {
    [ST_BOOL] = {"BOOL", 1}, [ST_U8] = {"U8", 1},           [ST_I8] = {"I8", 1},           [ST_I16] = {"I16", 2},
    [ST_U16] = {"U16", 2},   [ST_F16] = {"F16", 2},         [ST_BF16] = {"BF16", 2},       [ST_I32] = {"I32", 4},
    [ST_U32] = {"U32", 4},   [ST_F32] = {"F32", 4},         [ST_F64] = {"F64", 8},         [ST_I64] = {"I64", 8},
    [ST_U64] = {"U64", 8},   [ST_F8_E5M2] = {"F8_E5M2", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1},
};

const char *st_dtype_name(StDtype dtype) { return (unsigned)dtype < ST_DTYPE_COUNT ? dtype_info[dtype].name : "?"; }
int st_dtype_size(StDtype dtype) { return (unsigned)dtype < ST_DTYPE_COUNT ? dtype_info[dtype].size : 0; }

int st_dtype_from_name(const char *name, StDtype *out) {
    for (int i = 0; i < ST_DTYPE_COUNT; i++) {
        if (strcmp(dtype_info[i].name, name) == 0) {
            *out = (StDtype)i;
            return 0;
        }
    }
    return -1;
}

static void shape_string(int ndim, const int64_t *shape, char *out, int size) {
    int n = snprintf(out, (size_t)size, "[");
    for (int i = 0; i < ndim && n >= 0 && n < size; i++)
        n += snprintf(out + n, (size_t)(size - n), "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n >= 0 && n < size) snprintf(out + n, (size_t)(size - n), "]");
}

// Bytes of a tensor, or -1 when the product does not fit in 63 bits.
static int64_t tensor_bytes(StDtype dtype, int ndim, const int64_t *shape) {
    uint64_t bytes = (uint64_t)st_dtype_size(dtype);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(bytes, (uint64_t)shape[i], &bytes)) return -1;
    }
    return bytes > (uint64_t)INT64_MAX ? -1 : (int64_t)bytes;
}

/* ---------------------------------------------------------------------------------------------
 * Reader
 * ------------------------------------------------------------------------------------------- */

struct StFile {
    char *path;
    int fd;
    uint64_t data_start; // file offset of the data buffer: 8 + header length
    uint64_t data_size;
    StTensor *tensors;
    int count;
    char **meta_keys, **meta_values;
    int meta_count;
};

// pread until n bytes arrived; a single pread may return less (and at most ~2 GiB on Linux).
static int pread_full(int fd, void *buf, uint64_t n, uint64_t offset, const char **why) {
    char *p = buf;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t got = pread(fd, p, chunk, (off_t)offset);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            *why = strerror(errno);
            return -1;
        }
        if (got == 0) {
            *why = "unexpected end of file (was it truncated?)";
            return -1;
        }
        p += got, offset += (uint64_t)got, n -= (uint64_t)got;
    }
    return 0;
}

static int parse_metadata(StFile *f, const JsonValue *v, char *err, int err_size) {
    if (v->type != JSON_OBJECT)
        return fail_at(err, err_size, f->path, "__metadata__ is a JSON %s, not an object", json_type_name(v->type));
    int n = v->u.object.count;
    f->meta_keys = xcalloc((size_t)n, sizeof(char *));
    f->meta_values = xcalloc((size_t)n, sizeof(char *));
    for (int i = 0; i < n; i++) {
        const JsonMember *m = &v->u.object.members[i];
        if (m->value.type != JSON_STRING)
            return fail_at(err, err_size, f->path,
                           "metadata value for '%s' is a JSON %s; safetensors metadata values must be strings", m->key,
                           json_type_name(m->value.type));
        if (strlen(m->key) != m->key_len || strlen(m->value.u.string.data) != m->value.u.string.len)
            return fail_at(err, err_size, f->path, "metadata entry '%s' contains a NUL character", m->key);
        f->meta_keys[i] = xstrdup(m->key);
        f->meta_values[i] = xstrdup(m->value.u.string.data);
        f->meta_count++;
    }
    return 0;
}

static int parse_tensor(StFile *f, const JsonMember *m, StTensor *t, char *err, int err_size) {
    const char *name = m->key, *path = f->path;
    if (strlen(name) != m->key_len) return fail_at(err, err_size, path, "a tensor name contains a NUL character");
    if (m->value.type != JSON_OBJECT)
        return fail_at(err, err_size, path, "tensor '%s' is described by a JSON %s, not an object", name,
                       json_type_name(m->value.type));
    const JsonValue *obj = &m->value;
    for (int i = 0; i < obj->u.object.count; i++) {
        const char *k = obj->u.object.members[i].key;
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
            return fail_at(err, err_size, path, "tensor '%s' has an unknown field '%s'", name, k);
    }
    const JsonValue *dtype = json_get(obj, "dtype"), *shape = json_get(obj, "shape"),
                    *offsets = json_get(obj, "data_offsets");
    if (!dtype || !shape || !offsets)
        return fail_at(err, err_size, path, "tensor '%s' lacks '%s'", name,
                       !dtype   ? "dtype"
                       : !shape ? "shape"
                                : "data_offsets");
    if (dtype->type != JSON_STRING || st_dtype_from_name(dtype->u.string.data, &t->dtype))
        return fail_at(err, err_size, path, "tensor '%s' has unknown dtype %s%s%s", name,
                       dtype->type == JSON_STRING ? "'" : "a JSON ",
                       dtype->type == JSON_STRING ? dtype->u.string.data : json_type_name(dtype->type),
                       dtype->type == JSON_STRING ? "'" : "");
    if (shape->type != JSON_ARRAY)
        return fail_at(err, err_size, path, "tensor '%s' has a shape that is not an array", name);
    if (shape->u.array.count > ST_MAX_DIMS)
        return fail_at(err, err_size, path, "tensor '%s' has %d dims, more than %d", name, shape->u.array.count,
                       ST_MAX_DIMS);
    t->ndim = shape->u.array.count;
    for (int i = 0; i < t->ndim; i++) {
        const JsonValue *d = &shape->u.array.items[i];
        if (d->type != JSON_INT || d->u.integer < 0)
            return fail_at(err, err_size, path, "tensor '%s' has shape entry %d that is not a non-negative integer",
                           name, i);
        t->shape[i] = d->u.integer;
    }
    char shp[160];
    shape_string(t->ndim, t->shape, shp, sizeof(shp));
    int64_t bytes = tensor_bytes(t->dtype, t->ndim, t->shape);
    if (bytes < 0)
        return fail_at(err, err_size, path, "tensor '%s' shape %s is too large (byte size overflows)", name, shp);
    if (offsets->type != JSON_ARRAY || offsets->u.array.count != 2 || offsets->u.array.items[0].type != JSON_INT ||
        offsets->u.array.items[1].type != JSON_INT || offsets->u.array.items[0].u.integer < 0 ||
        offsets->u.array.items[1].u.integer < 0)
        return fail_at(err, err_size, path, "tensor '%s' data_offsets is not a pair of non-negative integers", name);
    t->begin = (uint64_t)offsets->u.array.items[0].u.integer;
    t->end = (uint64_t)offsets->u.array.items[1].u.integer;
    if (t->begin > t->end || t->end > f->data_size)
        return fail_at(err, err_size, path,
                       "tensor '%s' has data_offsets [%llu, %llu] outside the %llu-byte data buffer", name,
                       (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)f->data_size);
    if (t->end - t->begin != (uint64_t)bytes)
        return fail_at(err, err_size, path, "tensor '%s' has data_offsets [%llu, %llu] but %s %s needs %lld bytes",
                       name, (unsigned long long)t->begin, (unsigned long long)t->end, st_dtype_name(t->dtype), shp,
                       (long long)bytes);
    t->name = xstrdup(name);
    return 0;
}

static int compare_by_offset(const void *a, const void *b) {
    const StTensor *x = *(const StTensor *const *)a, *y = *(const StTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

// The tensors must tile the data buffer exactly: no overlap (two tensors sharing bytes would alias)
// and no hole (unexplained bytes mean a writer bug or a corrupted file).
static int check_coverage(StFile *f, char *err, int err_size) {
    const StTensor **sorted = xmalloc(sizeof(*sorted) * (size_t)(f->count ? f->count : 1));
    for (int i = 0; i < f->count; i++) sorted[i] = &f->tensors[i];
    qsort(sorted, (size_t)f->count, sizeof(*sorted), compare_by_offset);
    uint64_t cursor = 0;
    int rc = 0;
    for (int i = 0; i < f->count && rc == 0; i++) {
        const StTensor *t = sorted[i];
        if (t->begin < cursor)
            rc = fail_at(err, err_size, f->path,
                         "tensor '%s' (bytes [%llu, %llu)) overlaps tensor '%s' (bytes [%llu, %llu))", t->name,
                         (unsigned long long)t->begin, (unsigned long long)t->end, sorted[i - 1]->name,
                         (unsigned long long)sorted[i - 1]->begin, (unsigned long long)sorted[i - 1]->end);
        else if (t->begin > cursor)
            rc = fail_at(err, err_size, f->path, "bytes [%llu, %llu) of the data buffer belong to no tensor",
                         (unsigned long long)cursor, (unsigned long long)t->begin);
        cursor = t->end;
    }
    if (rc == 0 && cursor != f->data_size)
        rc = fail_at(err, err_size, f->path, "bytes [%llu, %llu) of the data buffer belong to no tensor",
                     (unsigned long long)cursor, (unsigned long long)f->data_size);
    free(sorted);
    return rc;
}

static int parse_header(StFile *f, const char *text, uint64_t len, char *err, int err_size) {
    if (len == 0 || text[0] != '{')
        return fail_at(err, err_size, f->path, "header does not start with '{' (not a safetensors file?)");
    char why[256];
    JsonValue *root = json_parse(text, (size_t)len, why, sizeof(why));
    if (!root) return fail_at(err, err_size, f->path, "header is not valid JSON: %s", why);
    int rc = 0;
    if (root->type != JSON_OBJECT) rc = fail_at(err, err_size, f->path, "header is not a JSON object");
    int n = root->type == JSON_OBJECT ? root->u.object.count : 0;
    f->tensors = xcalloc((size_t)(n ? n : 1), sizeof(StTensor));
    for (int i = 0; i < n && rc == 0; i++) {
        const JsonMember *m = &root->u.object.members[i];
        if (strcmp(m->key, "__metadata__") == 0) {
            rc = parse_metadata(f, &m->value, err, err_size);
        } else {
            rc = parse_tensor(f, m, &f->tensors[f->count], err, err_size);
            if (rc == 0) f->count++;
        }
    }
    json_free(root);
    if (rc == 0) rc = check_coverage(f, err, err_size);
    return rc;
}

StFile *st_open(const char *path, char *err, int err_size) {
    StFile *f = xcalloc(1, sizeof(*f));
    f->path = xstrdup(path);
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    char *header = NULL;
    const char *why;
    struct stat st;
    int rc = 0;
    unsigned char len8[8];
    if (f->fd < 0) {
        rc = fail_at(err, err_size, path, "cannot open: %s", strerror(errno));
    } else if (fstat(f->fd, &st) != 0) {
        rc = fail_at(err, err_size, path, "cannot stat: %s", strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rc = fail_at(err, err_size, path, "not a regular file");
    } else if ((uint64_t)st.st_size < 8) {
        rc = fail_at(err, err_size, path, "file is %lld bytes, shorter than the 8-byte safetensors header length",
                     (long long)st.st_size);
    } else if (pread_full(f->fd, len8, 8, 0, &why)) {
        rc = fail_at(err, err_size, path, "cannot read the header length: %s", why);
    } else {
        uint64_t size = (uint64_t)st.st_size, n = 0;
        for (int i = 7; i >= 0; i--) n = (n << 8) | len8[i];
        if (n > size - 8)
            rc = fail_at(err, err_size, path, "header length %llu is larger than the rest of the file (%llu bytes)",
                         (unsigned long long)n, (unsigned long long)(size - 8));
        else if (n > ST_MAX_HEADER_BYTES)
            rc = fail_at(err, err_size, path, "header length %llu exceeds the %u-byte limit", (unsigned long long)n,
                         ST_MAX_HEADER_BYTES);
        else {
            f->data_start = 8 + n;
            f->data_size = size - 8 - n;
            header = xmalloc((size_t)n + 1);
            if (pread_full(f->fd, header, n, 8, &why))
                rc = fail_at(err, err_size, path, "cannot read the header: %s", why);
            else
                rc = parse_header(f, header, n, err, err_size);
        }
    }
    free(header);
    if (rc) {
        st_close(f);
        return NULL;
    }
    return f;
}

void st_close(StFile *f) {
    if (!f) return;
    if (f->fd >= 0) close(f->fd);
    for (int i = 0; i < f->count; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->meta_count; i++) {
        free(f->meta_keys[i]);
        free(f->meta_values[i]);
    }
    free(f->tensors);
    free(f->meta_keys);
    free(f->meta_values);
    free(f->path);
    free(f);
}

const char *st_path(const StFile *f) { return f->path; }
int st_count(const StFile *f) { return f->count; }
const StTensor *st_tensor(const StFile *f, int i) { return (i >= 0 && i < f->count) ? &f->tensors[i] : NULL; }

const StTensor *st_find(const StFile *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

int64_t st_numel(const StTensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

void st_shape_string(const StTensor *t, char *out, int size) { shape_string(t->ndim, t->shape, out, size); }

const char *st_meta(const StFile *f, const char *key) {
    for (int i = 0; i < f->meta_count; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_values[i];
    return NULL;
}

int st_meta_count(const StFile *f) { return f->meta_count; }

void st_meta_at(const StFile *f, int i, const char **key, const char **value) {
    *key = f->meta_keys[i];
    *value = f->meta_values[i];
}

int st_read_bytes(const StFile *f, const StTensor *t, void *out, char *err, int err_size) {
    const char *why;
    if (pread_full(f->fd, out, t->end - t->begin, f->data_start + t->begin, &why))
        return fail_at(err, err_size, f->path, "reading tensor '%s': %s", t->name, why);
    return 0;
}

static float bf16_to_float(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float x;
    memcpy(&x, &bits, sizeof(x));
    return x;
}

enum { CONVERT_CHUNK_BYTES = 1 << 20 };

// Reads the tensor in chunks of whole elements and hands each chunk to convert(src, count, dst_index).
typedef int (*ConvertFn)(const void *src, int64_t count, void *dst, int64_t first, const char **why);

static int read_converted(const StFile *f, const StTensor *t, void *out, ConvertFn convert, char *err, int err_size) {
    int64_t esize = st_dtype_size(t->dtype), total = st_numel(t), per_chunk = CONVERT_CHUNK_BYTES / esize;
    char *chunk = xmalloc(CONVERT_CHUNK_BYTES);
    const char *why = NULL;
    int rc = 0;
    for (int64_t first = 0; first < total && rc == 0; first += per_chunk) {
        int64_t count = total - first < per_chunk ? total - first : per_chunk;
        if (pread_full(f->fd, chunk, (uint64_t)(count * esize), f->data_start + t->begin + (uint64_t)(first * esize),
                       &why) ||
            convert(chunk, count, out, first, &why))
            rc = fail_at(err, err_size, f->path, "reading tensor '%s': %s", t->name, why);
    }
    free(chunk);
    return rc;
}

static int f16_to_f32(const void *src, int64_t n, void *dst, int64_t first, const char **why) {
    const uint16_t *s = src;
    float *d = (float *)dst + first;
    for (int64_t i = 0; i < n; i++) d[i] = half_to_float(s[i]);
    return 0;
}

static int bf16_to_f32(const void *src, int64_t n, void *dst, int64_t first, const char **why) {
    const uint16_t *s = src;
    float *d = (float *)dst + first;
    for (int64_t i = 0; i < n; i++) d[i] = bf16_to_float(s[i]);
    return 0;
}

static int f64_to_f32(const void *src, int64_t n, void *dst, int64_t first, const char **why) {
    const double *s = src;
    float *d = (float *)dst + first;
    for (int64_t i = 0; i < n; i++) d[i] = (float)s[i];
    return 0;
}

int st_read_f32(const StFile *f, const StTensor *t, float *out, char *err, int err_size) {
    switch (t->dtype) {
    case ST_F32:
        return st_read_bytes(f, t, out, err, err_size);
    case ST_F16:
        return read_converted(f, t, out, f16_to_f32, err, err_size);
    case ST_BF16:
        return read_converted(f, t, out, bf16_to_f32, err, err_size);
    case ST_F64:
        return read_converted(f, t, out, f64_to_f32, err, err_size);
    default:
        return fail_at(err, err_size, f->path, "tensor '%s' has dtype %s; want a float tensor (F32, F16, BF16 or F64)",
                       t->name, st_dtype_name(t->dtype));
    }
}

#define INT_TO_I64(fn, type)                                                                                           \
    static int fn(const void *src, int64_t n, void *dst, int64_t first, const char **why) {                            \
        const type *s = src;                                                                                           \
        int64_t *d = (int64_t *)dst + first;                                                                           \
        for (int64_t i = 0; i < n; i++) d[i] = (int64_t)s[i];                                                          \
        return 0;                                                                                                      \
    }
INT_TO_I64(u8_to_i64, uint8_t)
INT_TO_I64(i8_to_i64, int8_t)
INT_TO_I64(i16_to_i64, int16_t)
INT_TO_I64(u16_to_i64, uint16_t)
INT_TO_I64(i32_to_i64, int32_t)
INT_TO_I64(u32_to_i64, uint32_t)
#undef INT_TO_I64

static int bool_to_i64(const void *src, int64_t n, void *dst, int64_t first, const char **why) {
    const uint8_t *s = src;
    int64_t *d = (int64_t *)dst + first;
    for (int64_t i = 0; i < n; i++) {
        if (s[i] > 1) {
            *why = "BOOL element is neither 0 nor 1";
            return -1;
        }
        d[i] = s[i];
    }
    return 0;
}

static int u64_to_i64(const void *src, int64_t n, void *dst, int64_t first, const char **why) {
    const uint64_t *s = src;
    int64_t *d = (int64_t *)dst + first;
    for (int64_t i = 0; i < n; i++) {
        if (s[i] > (uint64_t)INT64_MAX) {
            *why = "U64 element does not fit in int64";
            return -1;
        }
        d[i] = (int64_t)s[i];
    }
    return 0;
}

int st_read_i64(const StFile *f, const StTensor *t, int64_t *out, char *err, int err_size) {
    switch (t->dtype) {
    case ST_I64:
        return st_read_bytes(f, t, out, err, err_size);
    case ST_BOOL:
        return read_converted(f, t, out, bool_to_i64, err, err_size);
    case ST_U8:
        return read_converted(f, t, out, u8_to_i64, err, err_size);
    case ST_I8:
        return read_converted(f, t, out, i8_to_i64, err, err_size);
    case ST_I16:
        return read_converted(f, t, out, i16_to_i64, err, err_size);
    case ST_U16:
        return read_converted(f, t, out, u16_to_i64, err, err_size);
    case ST_I32:
        return read_converted(f, t, out, i32_to_i64, err, err_size);
    case ST_U32:
        return read_converted(f, t, out, u32_to_i64, err, err_size);
    case ST_U64:
        return read_converted(f, t, out, u64_to_i64, err, err_size);
    default:
        return fail_at(err, err_size, f->path, "tensor '%s' has dtype %s; want an integer or BOOL tensor", t->name,
                       st_dtype_name(t->dtype));
    }
}

/* ---------------------------------------------------------------------------------------------
 * Writer
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    char *name;
    StDtype dtype;
    int ndim; // as given; validated at save
    int64_t shape[ST_MAX_DIMS];
    const void *data;
} WriterEntry;

struct StWriter {
    WriterEntry *entries;
    int count, capacity;
    char **meta_keys, **meta_values;
    int meta_count, meta_capacity;
};

StWriter *st_writer_new(void) { return xcalloc(1, sizeof(StWriter)); }

void st_writer_meta(StWriter *w, const char *key, const char *value) {
    for (int i = 0; i < w->meta_count; i++) {
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_values[i]);
            w->meta_values[i] = xstrdup(value);
            return;
        }
    }
    if (w->meta_count == w->meta_capacity) {
        w->meta_capacity = w->meta_capacity ? 2 * w->meta_capacity : 16;
        w->meta_keys = xrealloc(w->meta_keys, sizeof(char *) * (size_t)w->meta_capacity);
        w->meta_values = xrealloc(w->meta_values, sizeof(char *) * (size_t)w->meta_capacity);
    }
    w->meta_keys[w->meta_count] = xstrdup(key);
    w->meta_values[w->meta_count] = xstrdup(value);
    w->meta_count++;
}

void st_writer_add(StWriter *w, const char *name, StDtype dtype, int ndim, const int64_t *shape, const void *data) {
    if (w->count == w->capacity) {
        w->capacity = w->capacity ? 2 * w->capacity : 64;
        w->entries = xrealloc(w->entries, sizeof(WriterEntry) * (size_t)w->capacity);
    }
    WriterEntry *e = &w->entries[w->count++];
    memset(e, 0, sizeof(*e));
    e->name = xstrdup(name);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int i = 0; i < ndim && i < ST_MAX_DIMS; i++) e->shape[i] = shape[i];
    e->data = data;
}

void st_writer_free(StWriter *w) {
    if (!w) return;
    for (int i = 0; i < w->count; i++) free(w->entries[i].name);
    for (int i = 0; i < w->meta_count; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->entries);
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

static int compare_names(const void *a, const void *b) {
    return strcmp((*(const WriterEntry *const *)a)->name, (*(const WriterEntry *const *)b)->name);
}

static int writer_validate(const StWriter *w, const char *path, char *err, int err_size) {
    for (int i = 0; i < w->meta_count; i++)
        if (!json_utf8_valid(w->meta_keys[i], strlen(w->meta_keys[i])) ||
            !json_utf8_valid(w->meta_values[i], strlen(w->meta_values[i])))
            return fail_at(err, err_size, path, "metadata entry %d is not valid UTF-8", i);
    for (int i = 0; i < w->count; i++) {
        const WriterEntry *e = &w->entries[i];
        if (!json_utf8_valid(e->name, strlen(e->name)))
            return fail_at(err, err_size, path, "tensor name %d is not valid UTF-8", i);
        if (strcmp(e->name, "__metadata__") == 0)
            return fail_at(err, err_size, path, "'__metadata__' cannot name a tensor");
        if ((unsigned)e->dtype >= ST_DTYPE_COUNT)
            return fail_at(err, err_size, path, "tensor '%s' has an invalid dtype", e->name);
        if (e->ndim < 0 || e->ndim > ST_MAX_DIMS)
            return fail_at(err, err_size, path, "tensor '%s' has %d dims; safetensors allows 0 to %d", e->name, e->ndim,
                           ST_MAX_DIMS);
        int64_t bytes = tensor_bytes(e->dtype, e->ndim, e->shape);
        if (bytes < 0) return fail_at(err, err_size, path, "tensor '%s' has a negative or overflowing shape", e->name);
        if (bytes > 0 && !e->data) return fail_at(err, err_size, path, "tensor '%s' has no data", e->name);
    }
    const WriterEntry **sorted = xmalloc(sizeof(*sorted) * (size_t)(w->count ? w->count : 1));
    for (int i = 0; i < w->count; i++) sorted[i] = &w->entries[i];
    qsort(sorted, (size_t)w->count, sizeof(*sorted), compare_names);
    int rc = 0;
    for (int i = 1; i < w->count && rc == 0; i++)
        if (strcmp(sorted[i - 1]->name, sorted[i]->name) == 0)
            rc = fail_at(err, err_size, path, "duplicate tensor name '%s'", sorted[i]->name);
    free(sorted);
    return rc;
}

typedef struct {
    char *data;
    size_t len, cap;
} Text;

static void text_put(Text *t, const char *s) {
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        t->cap = t->cap ? t->cap : 4096;
        while (t->len + n + 1 > t->cap) t->cap *= 2;
        t->data = xrealloc(t->data, t->cap);
    }
    memcpy(t->data + t->len, s, n + 1);
    t->len += n;
}

static void text_put_quoted(Text *t, const char *s) {
    char *q = json_quote(s);
    text_put(t, q);
    free(q);
}

// The JSON header, padded with spaces so that the data buffer starts at a multiple of 8 bytes.
static Text writer_header(const StWriter *w) {
    Text h = {0};
    char num[96];
    text_put(&h, "{");
    if (w->meta_count) {
        text_put(&h, "\"__metadata__\":{");
        for (int i = 0; i < w->meta_count; i++) {
            if (i) text_put(&h, ",");
            text_put_quoted(&h, w->meta_keys[i]);
            text_put(&h, ":");
            text_put_quoted(&h, w->meta_values[i]);
        }
        text_put(&h, "}");
    }
    uint64_t offset = 0;
    for (int i = 0; i < w->count; i++) {
        const WriterEntry *e = &w->entries[i];
        if (i || w->meta_count) text_put(&h, ",");
        text_put_quoted(&h, e->name);
        text_put(&h, ":{\"dtype\":\"");
        text_put(&h, st_dtype_name(e->dtype));
        text_put(&h, "\",\"shape\":[");
        for (int d = 0; d < e->ndim; d++) {
            snprintf(num, sizeof(num), "%s%lld", d ? "," : "", (long long)e->shape[d]);
            text_put(&h, num);
        }
        uint64_t end = offset + (uint64_t)tensor_bytes(e->dtype, e->ndim, e->shape);
        snprintf(num, sizeof(num), "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                 (unsigned long long)end);
        text_put(&h, num);
        offset = end;
    }
    text_put(&h, "}");
    while ((8 + h.len) % 8) text_put(&h, " ");
    return h;
}

// 0, or the errno of the failure.
static int write_full(int fd, const void *buf, uint64_t n) {
    const char *p = buf;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t put = write(fd, p, chunk);
        if (put < 0 && errno == EINTR) continue;
        if (put < 0) return errno;
        if (put == 0) return EIO;
        p += put, n -= (uint64_t)put;
    }
    return 0;
}

// Length, header, tensor bytes, fsync; 0 or the errno of the first failure.
static int write_contents(int fd, const StWriter *w, const Text *header) {
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)header->len >> (8 * i));
    if (fchmod(fd, 0644) != 0) return errno;
    int e = write_full(fd, len8, 8);
    if (!e) e = write_full(fd, header->data, header->len);
    for (int i = 0; i < w->count && !e; i++) {
        const WriterEntry *t = &w->entries[i];
        e = write_full(fd, t->data, (uint64_t)tensor_bytes(t->dtype, t->ndim, t->shape));
    }
    if (!e && fsync(fd) != 0) e = errno;
    return e;
}

// Makes the rename itself durable. Some file systems cannot fsync a directory; the file's own
// data is already safe then, so that failure is not reported.
static void fsync_parent_dir(const char *path) {
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int st_writer_save(StWriter *w, const char *path, char *err, int err_size) {
    if (writer_validate(w, path, err, err_size)) return -1;
    Text header = writer_header(w);
    if (header.len > ST_MAX_HEADER_BYTES) {
        free(header.data);
        return fail_at(err, err_size, path, "header would be %zu bytes, over the %u-byte limit", header.len,
                       ST_MAX_HEADER_BYTES);
    }
    char *tmp = xasprintf("%s.tmp.XXXXXX", path);
    int fd = mkstemp(tmp), rc = 0;
    if (fd < 0) {
        rc = fail_at(err, err_size, path, "cannot create a temporary file beside it: %s", strerror(errno));
    } else {
        int e = write_contents(fd, w, &header);
        if (close(fd) != 0 && !e) e = errno;
        if (e)
            rc = fail_at(err, err_size, path, "writing %s: %s", tmp, strerror(e));
        else if (rename(tmp, path) != 0)
            rc = fail_at(err, err_size, path, "cannot rename %s into place: %s", tmp, strerror(errno));
        if (rc)
            unlink(tmp);
        else
            fsync_parent_dir(path);
    }
    free(tmp);
    free(header.data);
    return rc;
}
