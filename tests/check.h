// tests/check.h: the harness every C test uses. A check prints "PASS <name>" or
// "FAIL <name>: <why>"; tests/run.sh counts those lines over all test programs.
#pragma once
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int check_failures = 0;

static void check(int ok, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4), unused));
static void check(int ok, const char *name, const char *fmt, ...) {
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    printf("%s %s", ok ? "PASS" : "FAIL", name);
    if (detail[0]) printf(ok ? " (%s)" : ": %s", detail);
    printf("\n");
    fflush(stdout);
    if (!ok) check_failures++;
}

// A check with nothing to report beyond pass or fail.
#define check_true(ok, name) check((ok), (name), "%s", "")

// ||a - b|| / max(||b||, tiny), accumulated in double.
static double __attribute__((unused)) rel_error(const float *a, const float *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * b[i];
    }
    return sqrt(num) / (den > 1e-300 ? sqrt(den) : 1e-150);
}

// Exit status for main(): non-zero when any check failed.
static int __attribute__((unused)) check_exit(void) { return check_failures ? 1 : 0; }
