#include "common/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void (*die_handler)(const char *message);

void die_set_handler(void (*handler)(const char *message)) { die_handler = handler; }

void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (die_handler) {
        char message[1024];
        vsnprintf(message, sizeof(message), fmt, ap);
        va_end(ap);
        die_handler(message);
        exit(1);
    }
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("warning: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int mul_i64(int64_t a, int64_t b, int64_t *out) { return a < 0 || b < 0 || __builtin_mul_overflow(a, b, out) ? -1 : 0; }

int add_i64(int64_t a, int64_t b, int64_t *out) { return a < 0 || b < 0 || __builtin_add_overflow(a, b, out) ? -1 : 0; }

int64_t first_nonfinite_record(const float *x, int64_t n, size_t size) {
    for (int64_t r = 0; r < n; r++)
        for (size_t i = 0; i < size; i++)
            if (!isfinite(x[(size_t)r * size + i])) return r;
    return -1;
}

void *xmalloc_array(size_t count, size_t size) {
    size_t bytes;
    if (__builtin_mul_overflow(count, size, &bytes)) die("out of memory: %zu x %zu bytes overflow", count, size);
    return xmalloc(bytes);
}

void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    if (!p) die("out of memory allocating %zu bytes", bytes);
    return p;
}

void *xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) die("out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *xrealloc(void *ptr, size_t bytes) {
    void *p = realloc(ptr, bytes ? bytes : 1);
    if (!p) die("out of memory reallocating %zu bytes", bytes);
    return p;
}

char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = xmalloc(n);
    memcpy(p, s, n);
    return p;
}

char *xasprintf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int starts_with(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int parse_long(const char *s, long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int parse_double(const char *s, double *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int make_dirs(const char *path) {
    char *p = xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(p, 0777) && errno != EEXIST) break;
        *s = '/';
    }
    int ok = (mkdir(p, 0777) == 0 || errno == EEXIST) && dir_exists(p);
    free(p);
    return ok ? 0 : -1;
}

int make_parent_dirs(const char *file_path) {
    const char *slash = strrchr(file_path, '/');
    if (!slash || slash == file_path) return 0;
    char *dir = xstrdup(file_path);
    dir[slash - file_path] = '\0';
    int rc = make_dirs(dir);
    free(dir);
    return rc;
}

int fail_at(char *err, int err_size, const char *path, const char *fmt, ...) {
    int n = snprintf(err, (size_t)err_size, "%s: ", path);
    if (n >= 0 && n < err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err + n, (size_t)(err_size - n), fmt, ap);
        va_end(ap);
    }
    return -1;
}
