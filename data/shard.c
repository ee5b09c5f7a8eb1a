#include "data/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "data/half.h"
#include "data/json.h"

// Bounds that keep every size product far from overflow; real latents are at most a few hundred wide.
enum { SHARD_MAX_CHANNELS = 4096, SHARD_MAX_SIDE = 65536, SHARD_MAX_CLASSES = 1 << 24 };

const char *shard_storage_name(ShardStorage storage) { return storage == SHARD_POSTERIOR ? "posterior" : "sample"; }

int64_t shard_latent_numel(const ShardLayout *l) { return (int64_t)l->channels * l->height * l->width; }

int64_t shard_sample_numel(const ShardLayout *l) {
    return shard_latent_numel(l) * (l->storage == SHARD_POSTERIOR ? 2 : 1);
}

void shard_layout_copy(ShardLayout *dst, const ShardLayout *src) {
    *dst = *src;
    dst->source = xstrdup(src->source);
    dst->encoder = xstrdup(src->encoder);
    dst->classes = xcalloc((size_t)src->num_classes, sizeof(char *));
    for (int k = 0; k < src->num_classes; k++) dst->classes[k] = xstrdup(src->classes[k]);
}

void shard_layout_free(ShardLayout *l) {
    if (l->classes)
        for (int k = 0; k < l->num_classes; k++) free(l->classes[k]);
    free(l->classes);
    free(l->source);
    free(l->encoder);
    memset(l, 0, sizeof(*l));
}

int shard_layout_compare(const ShardLayout *a, const ShardLayout *b, char *what, int what_size) {
#define DIFFER(...) return snprintf(what, (size_t)what_size, __VA_ARGS__), -1
    if (strcmp(a->source, b->source)) DIFFER("source '%s' vs '%s'", a->source, b->source);
    if (strcmp(a->encoder, b->encoder)) DIFFER("encoder '%s' vs '%s'", a->encoder, b->encoder);
    if (a->scale_factor != b->scale_factor)
        DIFFER("scale_factor %.9g vs %.9g", (double)a->scale_factor, (double)b->scale_factor);
    if (a->image_size != b->image_size) DIFFER("image_size %d vs %d", a->image_size, b->image_size);
    if (a->channels != b->channels || a->height != b->height || a->width != b->width)
        DIFFER("latent shape %dx%dx%d vs %dx%dx%d", a->channels, a->height, a->width, b->channels, b->height, b->width);
    if (a->storage != b->storage)
        DIFFER("storage '%s' vs '%s'", shard_storage_name(a->storage), shard_storage_name(b->storage));
    if (a->dtype != b->dtype) DIFFER("dtype %s vs %s", st_dtype_name(a->dtype), st_dtype_name(b->dtype));
    if (a->num_classes != b->num_classes) DIFFER("%d vs %d classes", a->num_classes, b->num_classes);
    for (int k = 0; k < a->num_classes; k++)
        if (strcmp(a->classes[k], b->classes[k])) DIFFER("class %d is '%s' vs '%s'", k, a->classes[k], b->classes[k]);
#undef DIFFER
    return 0;
}

char *shard_classes_json(const ShardLayout *l) {
    size_t len = 2;
    char **quoted = xcalloc((size_t)l->num_classes, sizeof(char *));
    for (int k = 0; k < l->num_classes; k++) len += strlen(quoted[k] = json_quote(l->classes[k])) + 1;
    char *s = xmalloc(len + 1), *p = s;
    *p++ = '[';
    for (int k = 0; k < l->num_classes; k++) {
        if (k) *p++ = ',';
        p += sprintf(p, "%s", quoted[k]);
        free(quoted[k]);
    }
    *p++ = ']';
    *p = '\0';
    free(quoted);
    return s;
}

int shard_classes_parse(const char *json, ShardLayout *l, char *err, int err_size) {
    char why[256];
    JsonValue *v = json_parse(json, strlen(json), why, sizeof(why));
    if (!v) return snprintf(err, (size_t)err_size, "classes is not valid JSON: %s", why), -1;
    const char *problem = NULL;
    int n = v->type == JSON_ARRAY ? v->u.array.count : 0;
    if (v->type != JSON_ARRAY || n < 1 || n > SHARD_MAX_CLASSES) problem = "classes must be a JSON list of names";
    for (int k = 0; k < n && !problem; k++) {
        const JsonValue *c = &v->u.array.items[k];
        if (c->type != JSON_STRING || strlen(c->u.string.data) != c->u.string.len)
            problem = "classes holds an entry that is not a string without NULs";
    }
    if (problem) {
        snprintf(err, (size_t)err_size, "%s", problem);
    } else {
        l->num_classes = n;
        l->classes = xcalloc((size_t)n, sizeof(char *));
        for (int k = 0; k < n; k++) l->classes[k] = xstrdup(v->u.array.items[k].u.string.data);
    }
    json_free(v);
    return problem ? -1 : 0;
}

void shard_scale_text(float scale, char *out, int size) {
    for (int digits = 6; digits <= 9; digits++) { // 9 significant digits always round-trip a float
        snprintf(out, (size_t)size, "%.*g", digits, (double)scale);
        if (strtof(out, NULL) == scale) return;
    }
}

void shard_pack(StDtype dtype, void *dst, const float *src, int64_t n) {
    if (dtype == ST_F32) {
        memcpy(dst, src, (size_t)n * sizeof(float));
        return;
    }
    uint16_t *h = dst;
    for (int64_t i = 0; i < n; i++) h[i] = half_from_float(src[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Writing
 * ------------------------------------------------------------------------------------------- */

int shard_write(const char *path, const ShardLayout *l, const ShardData *d, char *err, int err_size) {
    if (l->dtype != ST_F16 && l->dtype != ST_F32)
        return fail_at(err, err_size, path, "shards store F16 or F32, not %s", st_dtype_name(l->dtype));
    if (d->count < 0 || l->num_classes < 1 || l->channels < 1 || l->height < 1 || l->width < 1)
        return fail_at(err, err_size, path, "invalid shard layout or count");
    int posterior = l->storage == SHARD_POSTERIOR;
    if (d->count > 0 && (!d->labels || (posterior ? !d->mean || !d->std : !d->latents)))
        return fail_at(err, err_size, path, "no data for the %s tensors", shard_storage_name(l->storage));
    for (int64_t n = 0; n < d->count; n++)
        if (d->labels[n] < 0 || d->labels[n] >= l->num_classes)
            return fail_at(err, err_size, path, "label %lld of sample %lld is outside [0, %d)", (long long)d->labels[n],
                           (long long)n, l->num_classes);
    StWriter *w = st_writer_new();
    char num[64];
    st_writer_meta(w, "format", SHARD_FORMAT);
    snprintf(num, sizeof(num), "%d", SHARD_FORMAT_VERSION);
    st_writer_meta(w, "format_version", num);
    st_writer_meta(w, "source", l->source);
    st_writer_meta(w, "encoder", l->encoder);
    shard_scale_text(l->scale_factor, num, sizeof(num));
    st_writer_meta(w, "scale_factor", num);
    const struct {
        const char *key;
        int64_t value;
    } ints[] = {{"image_size", l->image_size},
                {"channels", l->channels},
                {"height", l->height},
                {"width", l->width},
                {"count", d->count}};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        snprintf(num, sizeof(num), "%lld", (long long)ints[i].value);
        st_writer_meta(w, ints[i].key, num);
    }
    char *classes = shard_classes_json(l);
    st_writer_meta(w, "classes", classes);
    st_writer_meta(w, "storage", shard_storage_name(l->storage));
    for (int i = 0; i < d->extra_count; i++) st_writer_meta(w, d->extra[i].key, d->extra[i].value);

    int64_t latent[4] = {d->count, l->channels, l->height, l->width};
    int64_t flips[5] = {d->count, 2, l->channels, l->height, l->width};
    if (posterior) {
        st_writer_add(w, "mean", l->dtype, 5, flips, d->mean);
        st_writer_add(w, "std", l->dtype, 5, flips, d->std);
    } else {
        st_writer_add(w, "latents", l->dtype, 4, latent, d->latents);
    }
    st_writer_add(w, "labels", ST_I64, 1, &d->count, d->labels);
    int rc = st_writer_save(w, path, err, err_size);
    st_writer_free(w);
    free(classes);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Reading
 * ------------------------------------------------------------------------------------------- */

struct ShardFile {
    char *path;
    int fd;
    ShardLayout layout;
    int64_t count;
    int32_t *labels;
    uint64_t value_offset, std_offset; // file offsets of latents (or mean) and of std
    char **meta_keys, **meta_values;
    int meta_count;
};

const char *shard_path(const ShardFile *s) { return s->path; }
const ShardLayout *shard_layout(const ShardFile *s) { return &s->layout; }
int64_t shard_count(const ShardFile *s) { return s->count; }
const int32_t *shard_labels(const ShardFile *s) { return s->labels; }

const char *shard_meta(const ShardFile *s, const char *key) {
    for (int i = 0; i < s->meta_count; i++)
        if (!strcmp(s->meta_keys[i], key)) return s->meta_values[i];
    return NULL;
}

void shard_close(ShardFile *s) {
    if (!s) return;
    if (s->fd >= 0) close(s->fd);
    for (int i = 0; i < s->meta_count; i++) {
        free(s->meta_keys[i]);
        free(s->meta_values[i]);
    }
    free(s->meta_keys);
    free(s->meta_values);
    free(s->labels);
    shard_layout_free(&s->layout);
    free(s->path);
    free(s);
}

// An integer metadata entry in [lo, hi]; 0, or -1 with err.
static int meta_int(const StFile *f, const char *key, int64_t lo, int64_t hi, int64_t *out, char *err, int err_size) {
    const char *v = st_meta(f, key);
    long x;
    if (!v) return fail_at(err, err_size, st_path(f), "metadata lacks '%s'", key);
    if (parse_long(v, &x) || x < lo || x > hi)
        return fail_at(err, err_size, st_path(f), "metadata %s = '%s' is not an integer in [%lld, %lld]", key, v,
                       (long long)lo, (long long)hi);
    *out = x;
    return 0;
}

static int meta_string(const StFile *f, const char *key, char **out, char *err, int err_size) {
    const char *v = st_meta(f, key);
    if (!v || !*v) return fail_at(err, err_size, st_path(f), "metadata lacks '%s'", key);
    *out = xstrdup(v);
    return 0;
}

static int parse_layout(const StFile *f, ShardFile *s, char *err, int err_size) {
    const char *path = st_path(f), *format = st_meta(f, "format"), *v;
    ShardLayout *l = &s->layout;
    if (!format || strcmp(format, SHARD_FORMAT))
        return fail_at(err, err_size, path, "metadata format is %s%s%s, not '%s' (not a dydit latent shard)",
                       format ? "'" : "", format ? format : "missing", format ? "'" : "", SHARD_FORMAT);
    int64_t version, x;
    if (meta_int(f, "format_version", 1, INT32_MAX, &version, err, err_size)) return -1;
    if (version > SHARD_FORMAT_VERSION)
        return fail_at(err, err_size, path, "format_version %lld is newer than this program reads (%d)",
                       (long long)version, SHARD_FORMAT_VERSION);
    if (meta_string(f, "source", &l->source, err, err_size) || meta_string(f, "encoder", &l->encoder, err, err_size))
        return -1;
    double scale;
    v = st_meta(f, "scale_factor");
    if (!v || parse_double(v, &scale) || !isfinite(scale) || scale <= 0)
        return fail_at(err, err_size, path, "metadata scale_factor '%s' is not a positive number", v ? v : "(missing)");
    l->scale_factor = (float)scale;
    if (meta_int(f, "image_size", 1, SHARD_MAX_SIDE, &x, err, err_size)) return -1;
    l->image_size = (int)x;
    if (meta_int(f, "channels", 1, SHARD_MAX_CHANNELS, &x, err, err_size)) return -1;
    l->channels = (int)x;
    if (meta_int(f, "height", 1, SHARD_MAX_SIDE, &x, err, err_size)) return -1;
    l->height = (int)x;
    if (meta_int(f, "width", 1, SHARD_MAX_SIDE, &x, err, err_size)) return -1;
    l->width = (int)x;
    if (meta_int(f, "count", 0, INT64_MAX / 2, &s->count, err, err_size)) return -1;
    v = st_meta(f, "storage");
    if (v && !strcmp(v, "sample"))
        l->storage = SHARD_SAMPLE;
    else if (v && !strcmp(v, "posterior"))
        l->storage = SHARD_POSTERIOR;
    else
        return fail_at(err, err_size, path, "metadata storage '%s' is neither 'sample' nor 'posterior'",
                       v ? v : "(missing)");
    v = st_meta(f, "classes");
    char why[300];
    if (!v) return fail_at(err, err_size, path, "metadata lacks 'classes'");
    if (shard_classes_parse(v, l, why, sizeof(why))) return fail_at(err, err_size, path, "metadata %s", why);
    return 0;
}

// The tensor must exist with a float dtype the layout allows and exactly the given shape.
static const StTensor *expect_tensor(const StFile *f, const char *name, int ndim, const int64_t *shape, char *err,
                                     int err_size) {
    const StTensor *t = st_find(f, name);
    char want[160] = "[", have[160];
    for (int d = 0; d < ndim; d++)
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%lld", d ? ", " : "", (long long)shape[d]);
    strcat(want, "]");
    if (!t) return fail_at(err, err_size, st_path(f), "no tensor '%s' (want %s)", name, want), NULL;
    st_shape_string(t, have, sizeof(have));
    int same = t->ndim == ndim;
    for (int d = 0; d < ndim && same; d++) same = t->shape[d] == shape[d];
    if (!same)
        return fail_at(err, err_size, st_path(f), "tensor '%s' has shape %s, want %s (from the metadata)", name, have,
                       want),
               NULL;
    return t;
}

static int check_tensors(const StFile *f, ShardFile *s, uint64_t data_start, char *err, int err_size) {
    const char *path = st_path(f);
    ShardLayout *l = &s->layout;
    int posterior = l->storage == SHARD_POSTERIOR;
    const char *value_name = posterior ? "mean" : "latents";
    for (int i = 0; i < st_count(f); i++) {
        const char *name = st_tensor(f, i)->name;
        if (strcmp(name, "labels") && strcmp(name, value_name) && (!posterior || strcmp(name, "std")))
            return fail_at(err, err_size, path, "unexpected tensor '%s' for storage '%s'", name,
                           shard_storage_name(l->storage));
    }
    int64_t shape[5] = {s->count, 2, l->channels, l->height, l->width},
            latent[4] = {s->count, l->channels, l->height, l->width};
    const StTensor *value, *std = NULL, *labels;
    if (!(value = expect_tensor(f, value_name, posterior ? 5 : 4, posterior ? shape : latent, err, err_size)) ||
        (posterior && !(std = expect_tensor(f, "std", 5, shape, err, err_size))) ||
        !(labels = expect_tensor(f, "labels", 1, &s->count, err, err_size)))
        return -1;
    if (value->dtype != ST_F16 && value->dtype != ST_F32)
        return fail_at(err, err_size, path, "tensor '%s' has dtype %s, want F16 or F32", value_name,
                       st_dtype_name(value->dtype));
    if (std && std->dtype != value->dtype)
        return fail_at(err, err_size, path, "tensor 'std' has dtype %s but 'mean' has %s", st_dtype_name(std->dtype),
                       st_dtype_name(value->dtype));
    if (labels->dtype != ST_I64)
        return fail_at(err, err_size, path, "tensor 'labels' has dtype %s, want I64", st_dtype_name(labels->dtype));
    l->dtype = value->dtype;
    s->value_offset = data_start + value->begin;
    s->std_offset = std ? data_start + std->begin : 0;

    int64_t *raw = xmalloc((size_t)(s->count ? s->count : 1) * sizeof(int64_t));
    int rc = st_read_i64(f, labels, raw, err, err_size);
    s->labels = xmalloc((size_t)(s->count ? s->count : 1) * sizeof(int32_t));
    for (int64_t n = 0; n < s->count && rc == 0; n++) {
        if (raw[n] < 0 || raw[n] >= l->num_classes)
            rc = fail_at(err, err_size, path, "label %lld of sample %lld is outside [0, %d) (the %d classes)",
                         (long long)raw[n], (long long)n, l->num_classes, l->num_classes);
        s->labels[n] = (int32_t)raw[n];
    }
    free(raw);
    return rc;
}

// pread until n bytes arrived; 0, or -1 with why.
static int pread_full(int fd, void *buf, size_t n, uint64_t offset, const char **why) {
    char *p = buf;
    while (n > 0) {
        ssize_t got = pread(fd, p, n, (off_t)offset);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) {
            *why = got < 0 ? strerror(errno) : "unexpected end of file (was it truncated?)";
            return -1;
        }
        p += got, offset += (uint64_t)got, n -= (size_t)got;
    }
    return 0;
}

ShardFile *shard_open(const char *path, char *err, int err_size) {
    ShardFile *s = xcalloc(1, sizeof(*s));
    s->path = xstrdup(path);
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    StFile *f = NULL;
    int rc = 0;
    unsigned char len8[8];
    const char *why;
    struct stat st;
    // validate the safetensors structure first: it gives the precise message for broken files
    if (!(f = st_open(path, err, err_size)))
        rc = -1;
    else if (s->fd < 0 || fstat(s->fd, &st) != 0)
        rc = fail_at(err, err_size, path, "cannot open: %s", strerror(errno));
    else if (pread_full(s->fd, len8, 8, 0, &why))
        rc = fail_at(err, err_size, path, "cannot read the header length: %s", why);
    if (rc == 0) rc = parse_layout(f, s, err, err_size);
    if (rc == 0) {
        uint64_t header = 0, end = 0;
        for (int i = 7; i >= 0; i--) header = (header << 8) | len8[i];
        rc = check_tensors(f, s, 8 + header, err, err_size);
        for (int i = 0; i < st_count(f); i++)
            if (st_tensor(f, i)->end > end) end = st_tensor(f, i)->end;
        // the file checked by st_open must be the one this descriptor reads
        if (rc == 0 && 8 + header + end != (uint64_t)st.st_size)
            rc = fail_at(err, err_size, path, "changed while it was being opened");
    }
    if (rc == 0) {
        s->meta_count = st_meta_count(f);
        s->meta_keys = xcalloc((size_t)s->meta_count + 1, sizeof(char *));
        s->meta_values = xcalloc((size_t)s->meta_count + 1, sizeof(char *));
        for (int i = 0; i < s->meta_count; i++) {
            const char *k, *v;
            st_meta_at(f, i, &k, &v);
            s->meta_keys[i] = xstrdup(k);
            s->meta_values[i] = xstrdup(v);
        }
    }
    st_close(f);
    if (rc) {
        shard_close(s);
        return NULL;
    }
    return s;
}

// Reads numel stored elements at offset into out as floats. F16 data is read into the upper half
// of out's bytes and widened front to back: element k is written at bytes [4k, 4k + 4), which lie
// below the half at 2 numel + 2 (k + 1) still to be read, so no scratch buffer is needed.
static int read_values(const ShardFile *s, uint64_t offset, int64_t numel, float *out, const char **why) {
    if (s->layout.dtype == ST_F32) return pread_full(s->fd, out, (size_t)numel * sizeof(float), offset, why);
    uint16_t *h = (uint16_t *)out + numel;
    if (pread_full(s->fd, h, (size_t)numel * sizeof(uint16_t), offset, why)) return -1;
    for (int64_t k = 0; k < numel; k++) out[k] = half_to_float(h[k]);
    return 0;
}

int shard_read(const ShardFile *s, int64_t n, int flip, float *value, float *std, char *err, int err_size) {
    int posterior = s->layout.storage == SHARD_POSTERIOR;
    if (n < 0 || n >= s->count || flip < 0 || flip > (posterior ? 1 : 0) || (posterior && !std))
        return fail_at(err, err_size, s->path, "no sample %lld, flip %d here (%lld samples, storage '%s')",
                       (long long)n, flip, (long long)s->count, shard_storage_name(s->layout.storage));
    int64_t numel = shard_latent_numel(&s->layout), esize = st_dtype_size(s->layout.dtype);
    uint64_t at = (uint64_t)((n * (posterior ? 2 : 1) + flip) * numel * esize);
    const char *why;
    if (read_values(s, s->value_offset + at, numel, value, &why) ||
        (posterior && read_values(s, s->std_offset + at, numel, std, &why)))
        return fail_at(err, err_size, s->path, "reading sample %lld: %s", (long long)n, why);
    return 0;
}
