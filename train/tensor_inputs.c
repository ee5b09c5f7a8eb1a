#include "train/tensor_inputs.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

static const StTensor *need(const StFile *f, const char *name) {
    const StTensor *t = st_find(f, name);
    if (!t) die("%s: no tensor '%s'", st_path(f), name);
    return t;
}

int64_t input_batch(const StFile *f, const char *name) {
    const StTensor *t = need(f, name);
    if (t->ndim < 1 || t->shape[0] < 1) die("%s: tensor '%s' needs a batch dimension of at least 1", st_path(f), name);
    return t->shape[0];
}

float *input_floats(const StFile *f, const char *name, int ndim, const int64_t *shape) {
    const StTensor *t = need(f, name);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[128], want[128] = "[";
        st_shape_string(t, got, sizeof(got));
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%lld", i ? ", " : "", (long long)shape[i]);
        snprintf(want + strlen(want), sizeof(want) - strlen(want), "]");
        die("%s: tensor '%s' has shape %s, want %s", st_path(f), name, got, want);
    }
    float *out = xmalloc((size_t)st_numel(t) * sizeof(float));
    char err[512];
    if (st_read_f32(f, t, out, err, sizeof(err))) die("%s", err);
    for (int64_t i = 0; i < st_numel(t); i++)
        if (!isfinite(out[i]))
            die("%s: tensor '%s' holds a non-finite value at element %lld", st_path(f), name, (long long)i);
    return out;
}

static const StTensor *need_vector(const StFile *f, const char *name, int64_t B) {
    const StTensor *t = need(f, name);
    if (t->ndim != 1 || t->shape[0] != B)
        die("%s: tensor '%s' must have shape [%lld] (one per sample)", st_path(f), name, (long long)B);
    return t;
}

int32_t *input_labels(const StFile *f, const char *name, int64_t B, int64_t limit) {
    const StTensor *t = need_vector(f, name, B);
    int64_t *v = xmalloc((size_t)B * sizeof(int64_t));
    char err[512];
    if (st_read_i64(f, t, v, err, sizeof(err))) die("%s", err);
    int32_t *out = xmalloc((size_t)B * sizeof(int32_t));
    for (int64_t i = 0; i < B; i++) {
        if (v[i] < 0 || v[i] >= limit)
            die("%s: %s[%lld] = %lld is outside [0, %lld)", st_path(f), name, (long long)i, (long long)v[i],
                (long long)limit);
        out[i] = (int32_t)v[i];
    }
    free(v);
    return out;
}

float *input_timesteps(const StFile *f, const char *name, int64_t B, int integral, int64_t limit) {
    const StTensor *t = need_vector(f, name, B);
    float *out = xmalloc((size_t)B * sizeof(float));
    char err[512];
    int is_float = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 || t->dtype == ST_F64;
    if (is_float) {
        if (st_read_f32(f, t, out, err, sizeof(err))) die("%s", err);
    } else {
        int64_t *v = xmalloc((size_t)B * sizeof(int64_t));
        if (st_read_i64(f, t, v, err, sizeof(err))) die("%s", err);
        for (int64_t i = 0; i < B; i++) out[i] = (float)v[i];
        free(v);
    }
    for (int64_t i = 0; i < B; i++) {
        if (!isfinite(out[i])) die("%s: %s[%lld] is not finite", st_path(f), name, (long long)i);
        if (integral && (out[i] != floorf(out[i]) || out[i] < 0 || out[i] >= (float)limit))
            die("%s: %s[%lld] = %g is not a whole timestep in [0, %lld)", st_path(f), name, (long long)i, out[i],
                (long long)limit);
    }
    return out;
}
