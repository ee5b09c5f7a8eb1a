#include "data/shard_index.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "data/json.h"

#define INDEX_FORMAT "dydit-latents-index"
enum { INDEX_MAX_BYTES = 64 << 20, INDEX_MAX_SHARDS = 1 << 20 };

char *shard_file_name(int k) { return xasprintf("shard-%05d.safetensors", k); }

void shard_index_free(ShardIndex *ix) {
    for (int i = 0; i < ix->shard_count && ix->shards; i++) free(ix->shards[i].file);
    free(ix->shards);
    shard_layout_free(&ix->layout);
    memset(ix, 0, sizeof(*ix));
}

static char *index_text(const ShardIndex *ix) {
    const ShardLayout *l = &ix->layout;
    char *source = json_quote(l->source), *encoder = json_quote(l->encoder), *classes = shard_classes_json(l);
    char scale[32];
    shard_scale_text(l->scale_factor, scale, sizeof(scale));
    char *text = xasprintf("{\"format\": \"%s\", \"format_version\": %d, \"count\": %lld,\n \"channels\": %d, "
                           "\"height\": %d, \"width\": %d, \"image_size\": %d, \"encoder\": %s,\n \"scale_factor\": "
                           "%s, \"storage\": \"%s\", \"dtype\": \"%s\", \"source\": %s,\n \"classes\": %s,\n "
                           "\"shards\": [",
                           INDEX_FORMAT, SHARD_FORMAT_VERSION, (long long)ix->count, l->channels, l->height, l->width,
                           l->image_size, encoder, scale, shard_storage_name(l->storage), st_dtype_name(l->dtype),
                           source, classes);
    for (int i = 0; i < ix->shard_count; i++) {
        char *file = json_quote(ix->shards[i].file);
        char *more = xasprintf("%s%s\n  {\"file\": %s, \"count\": %lld}", text, i ? "," : "", file,
                               (long long)ix->shards[i].count);
        free(text);
        free(file);
        text = more;
    }
    char *done = xasprintf("%s]}\n", text);
    free(text);
    free(source);
    free(encoder);
    free(classes);
    return done;
}

int shard_index_write(const char *dir, const ShardIndex *ix, char *err, int err_size) {
    char *path = xasprintf("%s/%s", dir, SHARD_INDEX_FILE), *tmp = xasprintf("%s.tmp.XXXXXX", path);
    char *text = index_text(ix);
    size_t len = strlen(text);
    int rc = 0, fd = mkstemp(tmp);
    if (fd < 0) {
        rc = fail_at(err, err_size, path, "cannot create a temporary file beside it: %s", strerror(errno));
    } else {
        int ok = fchmod(fd, 0644) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
        int e = errno;
        if (close(fd) != 0 && ok) ok = 0, e = errno;
        if (!ok)
            rc = fail_at(err, err_size, path, "writing %s: %s", tmp, strerror(e));
        else if (rename(tmp, path) != 0)
            rc = fail_at(err, err_size, path, "cannot rename %s into place: %s", tmp, strerror(errno));
        if (rc) unlink(tmp);
    }
    if (rc == 0) { // make the rename durable; a file system that cannot fsync a directory is not an error
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    free(text);
    free(tmp);
    free(path);
    return rc;
}

static char *read_small_file(const char *path, size_t *len, char *err, int err_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail_at(err, err_size, path, "cannot open: %s%s", strerror(errno),
                errno == ENOENT ? " (an unfinished dydit encode? run it again to finish the set)" : "");
        return NULL;
    }
    char *text = xmalloc(INDEX_MAX_BYTES + 1);
    *len = fread(text, 1, INDEX_MAX_BYTES + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || *len > INDEX_MAX_BYTES) {
        fail_at(err, err_size, path, bad ? "read error" : "larger than %d bytes", INDEX_MAX_BYTES);
        free(text);
        return NULL;
    }
    text[*len] = '\0';
    return text;
}

// A member of the index object with the given JSON type; NULL (and err) when absent or mistyped.
static const JsonValue *member(const JsonValue *root, const char *key, JsonType type, const char *path, char *err,
                               int err_size) {
    const JsonValue *v = json_get(root, key);
    if (!v || v->type != type) {
        fail_at(err, err_size, path, "'%s' is %s, want a JSON %s", key, v ? json_type_name(v->type) : "missing",
                json_type_name(type));
        return NULL;
    }
    return v;
}

static int int_member(const JsonValue *root, const char *key, int64_t lo, int64_t hi, int64_t *out, const char *path,
                      char *err, int err_size) {
    const JsonValue *v = member(root, key, JSON_INT, path, err, err_size);
    if (!v) return -1;
    if (v->u.integer < lo || v->u.integer > hi)
        return fail_at(err, err_size, path, "'%s' is %lld, outside [%lld, %lld]", key, (long long)v->u.integer,
                       (long long)lo, (long long)hi);
    *out = v->u.integer;
    return 0;
}

static int parse_index(const JsonValue *root, ShardIndex *ix, const char *path, char *err, int err_size) {
    ShardLayout *l = &ix->layout;
    const JsonValue *format, *source, *encoder, *storage, *dtype, *classes, *shards;
    int64_t version, c, h, w, size;
    if (root->type != JSON_OBJECT) return fail_at(err, err_size, path, "is not a JSON object");
    if (!(format = member(root, "format", JSON_STRING, path, err, err_size))) return -1;
    if (strcmp(format->u.string.data, INDEX_FORMAT))
        return fail_at(err, err_size, path, "format is '%s', not '%s'", format->u.string.data, INDEX_FORMAT);
    if (int_member(root, "format_version", 1, SHARD_FORMAT_VERSION, &version, path, err, err_size) ||
        int_member(root, "count", 1, INT64_MAX / 2, &ix->count, path, err, err_size) ||
        int_member(root, "channels", 1, INT32_MAX, &c, path, err, err_size) ||
        int_member(root, "height", 1, INT32_MAX, &h, path, err, err_size) ||
        int_member(root, "width", 1, INT32_MAX, &w, path, err, err_size) ||
        int_member(root, "image_size", 1, INT32_MAX, &size, path, err, err_size))
        return -1;
    l->channels = (int)c, l->height = (int)h, l->width = (int)w, l->image_size = (int)size;
    const JsonValue *scale = json_get(root, "scale_factor");
    if (!scale || (scale->type != JSON_INT && scale->type != JSON_DOUBLE))
        return fail_at(err, err_size, path, "'scale_factor' is not a number");
    double value = scale->type == JSON_INT ? (double)scale->u.integer : scale->u.number;
    l->scale_factor = (float)value;
    if (!(value > 0) || !isfinite(l->scale_factor))
        return fail_at(err, err_size, path, "'scale_factor' must be positive");
    if (!(source = member(root, "source", JSON_STRING, path, err, err_size)) ||
        !(encoder = member(root, "encoder", JSON_STRING, path, err, err_size)) ||
        !(storage = member(root, "storage", JSON_STRING, path, err, err_size)) ||
        !(dtype = member(root, "dtype", JSON_STRING, path, err, err_size)) ||
        !(classes = member(root, "classes", JSON_ARRAY, path, err, err_size)) ||
        !(shards = member(root, "shards", JSON_ARRAY, path, err, err_size)))
        return -1;
    l->source = xstrdup(source->u.string.data);
    l->encoder = xstrdup(encoder->u.string.data);
    if (!strcmp(storage->u.string.data, "sample") || !strcmp(storage->u.string.data, "posterior"))
        l->storage = strcmp(storage->u.string.data, "sample") ? SHARD_POSTERIOR : SHARD_SAMPLE;
    else
        return fail_at(err, err_size, path, "storage '%s' is neither 'sample' nor 'posterior'", storage->u.string.data);
    if (st_dtype_from_name(dtype->u.string.data, &l->dtype) || (l->dtype != ST_F16 && l->dtype != ST_F32))
        return fail_at(err, err_size, path, "dtype '%s' is neither F16 nor F32", dtype->u.string.data);
    l->num_classes = classes->u.array.count;
    l->classes = xcalloc((size_t)(l->num_classes ? l->num_classes : 1), sizeof(char *));
    for (int k = 0; k < l->num_classes; k++) {
        const JsonValue *name = &classes->u.array.items[k];
        if (name->type != JSON_STRING) return fail_at(err, err_size, path, "class %d is not a string", k);
        l->classes[k] = xstrdup(name->u.string.data);
    }
    if (l->num_classes < 1) return fail_at(err, err_size, path, "lists no classes");
    int n = shards->u.array.count;
    if (n < 1 || n > INDEX_MAX_SHARDS) return fail_at(err, err_size, path, "lists %d shards", n);
    ix->shards = xcalloc((size_t)n, sizeof(ShardEntry));
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        const JsonValue *e = &shards->u.array.items[i], *file, *count;
        if (e->type != JSON_OBJECT || !(file = json_get(e, "file")) || file->type != JSON_STRING ||
            !*file->u.string.data || strchr(file->u.string.data, '/'))
            return fail_at(err, err_size, path, "shards[%d] lacks a plain file name", i);
        ix->shards[i].file = xstrdup(file->u.string.data);
        ix->shard_count = i + 1;
        if (!(count = json_get(e, "count")) || count->type != JSON_INT || count->u.integer < 0 ||
            count->u.integer > INT64_MAX / 2)
            return fail_at(err, err_size, path, "shards[%d] lacks a non-negative integer count", i);
        ix->shards[i].count = count->u.integer;
        if (__builtin_add_overflow(total, count->u.integer, &total))
            return fail_at(err, err_size, path, "shard counts overflow");
    }
    if (total != ix->count)
        return fail_at(err, err_size, path, "shard counts add up to %lld, but count is %lld", (long long)total,
                       (long long)ix->count);
    return 0;
}

int shard_index_read(const char *dir, ShardIndex *ix, char *err, int err_size) {
    memset(ix, 0, sizeof(*ix));
    char *path = xasprintf("%s/%s", dir, SHARD_INDEX_FILE);
    size_t len;
    char *text = read_small_file(path, &len, err, err_size), why[256];
    JsonValue *root = NULL;
    int rc = -1;
    if (text && !(root = json_parse(text, len, why, sizeof(why))))
        fail_at(err, err_size, path, "not valid JSON: %s", why);
    if (root) rc = parse_index(root, ix, path, err, err_size);
    if (rc) shard_index_free(ix);
    json_free(root);
    free(text);
    free(path);
    return rc;
}
