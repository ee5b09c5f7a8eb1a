// common/util.h: process-wide helpers every layer may use: fatal errors, checked allocation,
// monotonic time, small string utilities.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

// Prints "error: <message>" on one line to stderr and exits with status 1.
_Noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
// For tests of code that dies on bad input (the config fuzz target): die() hands its message to
// handler instead of printing it; the handler may longjmp away, and die() exits if it returns.
void die_set_handler(void (*handler)(const char *message));
// Prints "warning: <message>" on one line to stderr.
void warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Checked size arithmetic for counts read from the command line or a file: 0 with *out = a * b
// (or a + b), or -1 when the exact result of these non-negative numbers does not fit in int64_t.
int mul_i64(int64_t a, int64_t b, int64_t *out);
int add_i64(int64_t a, int64_t b, int64_t *out);

// Index of the first of n records of `size` floats each that holds a NaN or an infinity, or -1.
int64_t first_nonfinite_record(const float *x, int64_t n, size_t size);

void *xmalloc(size_t bytes);
// xmalloc of count * size bytes; dies when the product does not fit in size_t.
void *xmalloc_array(size_t count, size_t size);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *ptr, size_t bytes);
char *xstrdup(const char *s);
// printf into a freshly allocated string.
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

// Seconds on a monotonic clock.
double now_seconds(void);

int starts_with(const char *s, const char *prefix);
int ends_with(const char *s, const char *suffix);
// Parses a whole string as a number; returns 0 on success, -1 when it is not one.
int parse_long(const char *s, long *out);
int parse_double(const char *s, double *out);

// 1 when path names an existing directory.
int dir_exists(const char *path);
// mkdir -p: creates path and its missing parents; 0, or -1 when that fails.
int make_dirs(const char *path);
// make_dirs of the directory part of a file path (nothing for a bare file name).
int make_parent_dirs(const char *file_path);

// Writes "PATH: message" into err (err_size bytes) and returns -1, so that functions reporting
// errors through a buffer can `return fail_at(err, err_size, path, ...)`.
int fail_at(char *err, int err_size, const char *path, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
