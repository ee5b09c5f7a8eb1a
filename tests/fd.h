// tests/fd.h: finite-difference checks of hand-written backwards.
//
// For a scalar loss L(x) = <R, f(x)> (R random, accumulated in double) the check compares the
// analytic directional derivative <dL/dx, v> along a random unit-variance direction v with central
// differences D(h) = (L(x + h v) - L(x - h v)) / (2 h), Richardson-extrapolated as
// (4 D(h/2) - D(h)) / 3 to cancel the O(h^2) curvature term (without it, whole-model checks at
// h = 1e-2 show ~5e-3 errors that shrink as h^2: truncation, not bugs). The kernels are fp32: each
// L evaluation carries rounding of about 1e-7 relative per output, which the differences amplify
// by about 1/h, so with h = 1e-2 the check resolves about 1e-5 relative. A tolerance of 1e-3
// separates that from real errors, which show up as O(1) mismatches.
#pragma once
#include <stddef.h>

#include "kernels/philox.h"
#include "tests/check.h"

typedef double (*LossFn)(void *ctx);

static void __attribute__((unused)) fill_normal(float *x, size_t n, float stddev, uint32_t stream) {
    for (size_t i = 0; i < n; i++) x[i] = stddev * rng_normal(1234, RNG_DATA, 0, stream, i);
}

static double __attribute__((unused)) dot_f64(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// Checks <grad, v> against central differences of loss() when x (n floats, read by loss through
// ctx) moves along v, judging |fd - analytic| relative to max(|analytic|, abs_floor). Restores x.
// Returns the relative error.
static double __attribute__((unused))
fd_directional_floor(const char *name, float *x, size_t n, const float *grad, LossFn loss, void *ctx, double eps,
                     double tol, uint32_t stream, double abs_floor) {
    float *saved = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) saved[i] = x[i];
    fill_normal(v, n, 1.0f, stream);
    double central[2];
    for (int k = 0; k < 2; k++) {
        double h = k ? eps / 2 : eps;
        for (size_t i = 0; i < n; i++) x[i] = saved[i] + (float)h * v[i];
        double lp = loss(ctx);
        for (size_t i = 0; i < n; i++) x[i] = saved[i] - (float)h * v[i];
        double lm = loss(ctx);
        central[k] = (lp - lm) / (2 * h);
    }
    for (size_t i = 0; i < n; i++) x[i] = saved[i];
    double fd = (4 * central[1] - central[0]) / 3, an = dot_f64(grad, v, n);
    double err = fabs(fd - an) / fmax(fabs(an), abs_floor);
    check(err < tol, name, "fd %.8g analytic %.8g rel %.2e", fd, an, err);
    free(saved);
    free(v);
    return err;
}

// fd_directional_floor with a floor that only guards against a zero derivative.
static double __attribute__((unused)) fd_directional(const char *name, float *x, size_t n, const float *grad,
                                                     LossFn loss, void *ctx, double eps, double tol, uint32_t stream) {
    return fd_directional_floor(name, x, n, grad, loss, ctx, eps, tol, stream, 1e-6 * sqrt((double)n));
}
