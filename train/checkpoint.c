#include "train/checkpoint.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"
#include "data/json.h"
#include "data/safetensors.h"
#include "model/weights.h"
#include "train/options.h"

#define CHECKPOINT_FORMAT "dydit-checkpoint"
#define CHECKPOINT_PREFIX "step-"

// Writes text to path through a temporary file, fsync and rename; 0 or -1 with err.
static int write_file_atomically(const char *path, const char *text, char *err, int err_size) {
    char *tmp = xasprintf("%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644), rc = 0;
    size_t len = strlen(text);
    if (fd < 0) {
        rc = fail_at(err, err_size, path, "cannot create %s: %s", tmp, strerror(errno));
    } else {
        int ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
        int e = ok ? 0 : (errno ? errno : EIO);
        if (close(fd) != 0 && ok) ok = 0, e = errno;
        if (!ok || rename(tmp, path) != 0) {
            rc = fail_at(err, err_size, path, "cannot write: %s", strerror(ok ? errno : e));
            unlink(tmp);
        }
    }
    free(tmp);
    return rc;
}

static void sync_directory(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

// Removes the entry `name` of the directory dir_fd and, when it is a directory, everything in it,
// without following symbolic links: a link is removed as a link and what it points to stays, so
// the removal never leaves the directory it starts in.
static void remove_entry(int dir_fd, const char *name) {
    struct stat st;
    if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW)) return;
    if (!S_ISDIR(st.st_mode)) {
        unlinkat(dir_fd, name, 0);
        return;
    }
    int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) remove_entry(dirfd(d), e->d_name);
    closedir(d);
    unlinkat(dir_fd, name, AT_REMOVEDIR);
}

// The step of a finished checkpoint's name (step-NNNNNNN, nothing after the digits), or -1.
static long step_of_name(const char *name) {
    long step;
    const char *digits = name + strlen(CHECKPOINT_PREFIX);
    if (!starts_with(name, CHECKPOINT_PREFIX) || !*digits || strspn(digits, "0123456789") != strlen(digits) ||
        parse_long(digits, &step))
        return -1;
    return step;
}

static int compare_steps_descending(const void *a, const void *b) {
    long x = *(const long *)a, y = *(const long *)b;
    return (x < y) - (x > y);
}

// Keeps `keep` checkpoints of this run's history: the one just written (at step `written`) and
// the newest keep - 1 real checkpoint directories of earlier steps. Checkpoints of later steps
// belong to another run into the same directory (one that went further): this run cannot recreate
// them, so they stay. Symbolic links are never followed nor removed.
static void prune(int ckpt_fd, long written, int keep) {
    int fd = dup(ckpt_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    long *older = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        long step = step_of_name(e->d_name);
        struct stat st;
        if (step < 0 || step >= written || fstatat(ckpt_fd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) ||
            !S_ISDIR(st.st_mode))
            continue;
        older = xrealloc(older, sizeof(long) * (size_t)(n + 1));
        older[n++] = step;
    }
    closedir(d);
    if (n > 1) qsort(older, (size_t)n, sizeof(long), compare_steps_descending); // older is NULL when n is 0
    for (int i = keep - 1; i < n; i++) {
        char name[64];
        snprintf(name, sizeof(name), CHECKPOINT_PREFIX "%07ld", older[i]);
        remove_entry(ckpt_fd, name);
    }
    free(older);
}

static int save_weights(const char *path, const DitConfig *cfg, const TensorTable *table, const float *host, long step,
                        char *err, int err_size) {
    char text[32];
    snprintf(text, sizeof(text), "%ld", step);
    WeightsMeta meta = {"step", text};
    return weights_save(path, cfg, table, host, &meta, 1, err, err_size);
}

static int save_moments(const char *path, const TensorTable *table, const CheckpointTensors *t, long adam_step,
                        char *err, int err_size) {
    StWriter *w = st_writer_new();
    int64_t shape[1] = {(int64_t)(table->total - table->trainable_begin)};
    char text[32];
    snprintf(text, sizeof(text), "%ld", adam_step);
    st_writer_meta(w, "format", CHECKPOINT_FORMAT);
    st_writer_meta(w, "adam_step", text);
    st_writer_add(w, "adam.m", ST_F32, 1, shape, t->adam_m);
    st_writer_add(w, "adam.v", ST_F32, 1, shape, t->adam_v);
    int rc = st_writer_save(w, path, err, err_size);
    st_writer_free(w);
    return rc;
}

static char *state_json(const CheckpointState *st, const char *options_json) {
    unsigned long long seed = (unsigned long long)st->seed;
    return xasprintf("{\"format\": \"" CHECKPOINT_FORMAT "\", \"format_version\": 2, \"step\": %ld, "
                     "\"optimizer_step\": %ld, \"seed\": %llu, \"batch\": %d,\n"
                     " \"data_cursor\": {\"samples_seen\": %lld, \"note\": \"batches are drawn by (seed, step, "
                     "global sample index)\"},\n"
                     " \"random_streams\": {\"seed\": %llu, \"next_step\": %ld},\n"
                     " \"schedule\": {\"target_ratio\": %.17g, \"tau\": %.17g},\n"
                     " \"options\": %s}\n",
                     st->step, st->optimizer_step, seed, st->batch, (long long)st->step * st->batch, seed, st->step,
                     st->target_ratio, st->tau, options_json ? options_json : "{}");
}

// The files of a checkpoint into the directory dir.
static int write_checkpoint_files(const char *dir, const CheckpointState *state, const DitConfig *cfg,
                                  const TensorTable *table, const CheckpointTensors *t, const char *options_json,
                                  char *err, int err_size) {
    char *model = xasprintf("%s/model.safetensors", dir), *ema = xasprintf("%s/ema.safetensors", dir);
    char *moments = xasprintf("%s/optimizer.safetensors", dir), *state_path = xasprintf("%s/state.json", dir);
    char *text = state_json(state, options_json);
    int rc = save_weights(model, cfg, table, t->params, state->step, err, err_size);
    if (!rc) rc = save_weights(ema, cfg, table, t->ema, state->step, err, err_size);
    if (!rc) rc = save_moments(moments, table, t, state->optimizer_step, err, err_size);
    if (!rc) rc = write_file_atomically(state_path, text, err, err_size);
    free(text);
    free(state_path);
    free(moments);
    free(ema);
    free(model);
    return rc;
}

// Moves the complete checkpoint ckpt_dir/tmp_name to ckpt_dir/name. A checkpoint of the same
// step already there is set aside, never removed first: at every moment one complete copy sits
// under the name checkpoints/latest gives.
static int move_into_place(int ckpt_fd, const char *ckpt_dir, const char *tmp_name, const char *name, char *err,
                           int err_size) {
    char *old = xasprintf("%s.old", name);
    remove_entry(ckpt_fd, old);
    int had_old = renameat(ckpt_fd, name, ckpt_fd, old) == 0, rc = 0;
    if (renameat(ckpt_fd, tmp_name, ckpt_fd, name)) {
        rc = fail_at(err, err_size, ckpt_dir, "cannot rename %s to %s: %s", tmp_name, name, strerror(errno));
        if (had_old) renameat(ckpt_fd, old, ckpt_fd, name);
    } else if (had_old) {
        remove_entry(ckpt_fd, old);
    }
    free(old);
    return rc;
}

int checkpoint_save(const char *run_dir, const CheckpointState *state, const DitConfig *cfg, const TensorTable *table,
                    const CheckpointTensors *t, const char *options_json, int keep, char *err, int err_size) {
    char *ckpt_dir = xasprintf("%s/checkpoints", run_dir);
    char *name = xasprintf(CHECKPOINT_PREFIX "%07ld", state->step), *tmp_name = xasprintf("%s.tmp", name);
    char *tmp = xasprintf("%s/%s", ckpt_dir, tmp_name);
    char *latest = xasprintf("%s/latest", ckpt_dir), *latest_text = xasprintf("%s\n", name);
    int ckpt_fd = make_dirs(ckpt_dir) ? -1 : open(ckpt_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = ckpt_fd < 0 ? fail_at(err, err_size, ckpt_dir, "cannot create: %s", strerror(errno)) : 0;
    if (!rc) {
        remove_entry(ckpt_fd, tmp_name);
        if (mkdirat(ckpt_fd, tmp_name, 0777)) rc = fail_at(err, err_size, tmp, "cannot create: %s", strerror(errno));
    }
    if (!rc) rc = write_checkpoint_files(tmp, state, cfg, table, t, options_json, err, err_size);
    if (!rc) {
        sync_directory(tmp);
        rc = move_into_place(ckpt_fd, ckpt_dir, tmp_name, name, err, err_size);
    }
    if (rc && ckpt_fd >= 0) {
        remove_entry(ckpt_fd, tmp_name);
    } else if (!rc) {
        fsync(ckpt_fd);
        rc = write_file_atomically(latest, latest_text, err, err_size);
        if (!rc) prune(ckpt_fd, state->step, keep > 0 ? keep : 1);
    }
    if (ckpt_fd >= 0) close(ckpt_fd);
    free(latest);
    free(latest_text);
    free(ckpt_dir);
    free(name);
    free(tmp_name);
    free(tmp);
    return rc;
}

char *checkpoint_resolve(const char *path) {
    char *state = xasprintf("%s/state.json", path);
    int direct = access(state, R_OK) == 0;
    free(state);
    if (direct) return xstrdup(path);
    char *latest = xasprintf("%s/checkpoints/latest", path);
    FILE *f = fopen(latest, "r");
    free(latest);
    if (!f) return NULL;
    char name[256] = "";
    if (!fgets(name, sizeof(name), f)) name[0] = '\0';
    fclose(f);
    name[strcspn(name, "\r\n")] = '\0';
    if (!starts_with(name, CHECKPOINT_PREFIX) || strchr(name, '/')) return NULL;
    return xasprintf("%s/checkpoints/%s", path, name);
}

static char *read_text(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *text = NULL;
    size_t cap = 0, n = 0, got;
    char buf[4096];
    while ((got = fread(buf, 1, sizeof(buf), f)) > 0) {
        if (n + got + 1 > cap) text = xrealloc(text, cap = 2 * (n + got + 1));
        memcpy(text + n, buf, got);
        n += got;
    }
    fclose(f);
    if (!text) text = xcalloc(1, 1);
    text[n] = '\0';
    *len = n;
    return text;
}

static int load_state(const char *dir, CheckpointState *st, char *err, int err_size) {
    char *path = xasprintf("%s/state.json", dir);
    size_t len;
    char *text = read_text(path, &len);
    int rc = -1;
    if (!text) {
        rc = fail_at(err, err_size, path, "cannot read");
    } else {
        char jerr[256];
        JsonValue *v = json_parse(text, len, jerr, sizeof(jerr));
        const JsonValue *format = v ? json_get(v, "format") : NULL, *step = v ? json_get(v, "step") : NULL;
        const JsonValue *ostep = v ? json_get(v, "optimizer_step") : NULL, *seed = v ? json_get(v, "seed") : NULL;
        if (!v)
            rc = fail_at(err, err_size, path, "%s", jerr);
        else if (!format || format->type != JSON_STRING || strcmp(format->u.string.data, CHECKPOINT_FORMAT))
            rc = fail_at(err, err_size, path, "not a %s state file", CHECKPOINT_FORMAT);
        else if (!step || step->type != JSON_INT || step->u.integer < 0 || !ostep || ostep->type != JSON_INT ||
                 ostep->u.integer < 0 || !seed || seed->type != JSON_INT)
            rc = fail_at(err, err_size, path, "step, optimizer_step or seed missing or not a non-negative integer");
        // a run counts steps in an int (--steps) and takes at most one AdamW update per step
        else if (step->u.integer > INT_MAX)
            rc = fail_at(err, err_size, path, "step %lld is beyond any run (at most %d steps)",
                         (long long)step->u.integer, INT_MAX);
        else if (ostep->u.integer > step->u.integer)
            rc = fail_at(err, err_size, path, "optimizer_step %lld exceeds step %lld (one update per step at most)",
                         (long long)ostep->u.integer, (long long)step->u.integer);
        else if (seed->u.integer < 0 || seed->u.integer > INT_MAX)
            rc = fail_at(err, err_size, path, "seed %lld is not in [0, %d]", (long long)seed->u.integer, INT_MAX);
        else {
            st->step = (long)step->u.integer;
            st->optimizer_step = (long)ostep->u.integer;
            st->seed = (uint64_t)seed->u.integer;
            const JsonValue *batch = json_get(v, "batch"); // absent from older checkpoints
            rc = 0;
            if (batch && (batch->type != JSON_INT || batch->u.integer < 1 || batch->u.integer > BATCH_MAX))
                rc = fail_at(err, err_size, path, "batch is not an integer in [1, %d] (--batch's range)", BATCH_MAX);
            else
                st->batch = batch ? (int)batch->u.integer : 0;
        }
        json_free(v);
    }
    free(text);
    free(path);
    return rc;
}

// AdamW divides by sqrt(v): a non-finite moment or a negative v would poison every later update.
static int check_moments(const char *path, const float *m, const float *v, size_t n, char *err, int err_size) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(m[i])) return fail_at(err, err_size, path, "adam.m holds a non-finite value at element %zu", i);
        if (!isfinite(v[i])) return fail_at(err, err_size, path, "adam.v holds a non-finite value at element %zu", i);
        if (v[i] < 0) return fail_at(err, err_size, path, "adam.v holds a negative value at element %zu", i);
    }
    return 0;
}

static int load_moments(const char *dir, LoadedCheckpoint *c, char *err, int err_size) {
    char *path = xasprintf("%s/optimizer.safetensors", dir);
    StFile *f = st_open(path, err, err_size);
    int rc = -1;
    size_t n = c->table.total - c->table.trainable_begin;
    if (f) {
        const StTensor *m = st_find(f, "adam.m"), *v = st_find(f, "adam.v");
        if (!m || !v || m->ndim != 1 || v->ndim != 1 || (size_t)m->shape[0] != n || (size_t)v->shape[0] != n)
            rc = fail_at(err, err_size, path,
                         "want 1-D tensors adam.m and adam.v of %zu elements (the model's "
                         "trainable parameters)",
                         n);
        else {
            c->adam_m = xmalloc(n * sizeof(float));
            c->adam_v = xmalloc(n * sizeof(float));
            rc = st_read_f32(f, m, c->adam_m, err, err_size) || st_read_f32(f, v, c->adam_v, err, err_size) ? -1 : 0;
            if (!rc) rc = check_moments(path, c->adam_m, c->adam_v, n, err, err_size);
        }
        st_close(f);
    }
    free(path);
    return rc;
}

// The count a checkpoint file's metadata records under key ("step", "adam_step"); -1 with err
// set when the file has none or it disagrees with want, the count state.json records.
static int require_meta_count(const char *path, const char *key, long want, const char *state_key, char *err,
                              int err_size) {
    StFile *f = st_open(path, err, err_size);
    if (!f) return -1;
    const char *text = st_meta(f, key);
    long got;
    int rc = 0;
    if (!text || parse_long(text, &got))
        rc = fail_at(err, err_size, path, "metadata %s missing or not an integer", key);
    else if (got != want)
        rc = fail_at(err, err_size, path, "metadata %s %ld disagrees with state.json's %s %ld", key, got, state_key,
                     want);
    st_close(f);
    return rc;
}

// state.json against the files written with it: both weights record its step, the moments its
// update count, so that a state edited or copied from another checkpoint does not resume.
static int check_state_matches_files(const char *dir, const CheckpointState *st, char *err, int err_size) {
    char *model = xasprintf("%s/model.safetensors", dir), *ema = xasprintf("%s/ema.safetensors", dir),
         *moments = xasprintf("%s/optimizer.safetensors", dir);
    int rc = require_meta_count(model, "step", st->step, "step", err, err_size);
    if (!rc) rc = require_meta_count(ema, "step", st->step, "step", err, err_size);
    if (!rc) rc = require_meta_count(moments, "adam_step", st->optimizer_step, "optimizer_step", err, err_size);
    free(model), free(ema), free(moments);
    return rc;
}

int checkpoint_load(const char *path, LoadedCheckpoint *c, char *err, int err_size) {
    memset(c, 0, sizeof(*c));
    char *dir = checkpoint_resolve(path);
    if (!dir)
        return fail_at(err, err_size, path,
                       "neither a checkpoint (no state.json) nor a run directory with "
                       "checkpoints/latest");
    char *model = xasprintf("%s/model.safetensors", dir), *ema = xasprintf("%s/ema.safetensors", dir);
    TensorTable ema_table;
    DitConfig ema_cfg;
    int rc = load_state(dir, &c->state, err, err_size);
    if (!rc) rc = weights_load_file(model, NULL, &c->cfg, &c->table, &c->params, err, err_size);
    if (!rc) {
        rc = weights_load_file(ema, NULL, &ema_cfg, &ema_table, &c->ema, err, err_size);
        if (!rc) {
            if (ema_table.total != c->table.total) rc = fail_at(err, err_size, ema, "does not match model.safetensors");
            tensor_table_free(&ema_table);
        }
    }
    if (!rc) rc = load_moments(dir, c, err, err_size);
    if (!rc) rc = check_state_matches_files(dir, &c->state, err, err_size);
    free(model);
    free(ema);
    free(dir);
    if (rc) checkpoint_loaded_free(c);
    return rc;
}

void checkpoint_loaded_free(LoadedCheckpoint *c) {
    if (c->table.tensors) tensor_table_free(&c->table);
    free(c->params);
    free(c->ema);
    free(c->adam_m);
    free(c->adam_v);
    memset(c, 0, sizeof(*c));
}
