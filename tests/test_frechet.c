// tests/test_frechet.c: the Jacobi eigensolver and the Frechet distance against closed forms:
// eigen-residuals and orthogonality, a 2x2 matrix's eigenvalues, the square root of a matrix
// built from known eigenpairs, and the distance between Gaussians whose covariances share their
// eigenvectors, d^2 = ||mu_1 - mu_2||^2 + sum_k (sqrt(a_k) - sqrt(b_k))^2. numpy's comparison on
// sampled features is tests/frechet_parity.sh.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/frechet.h"
#include "eval/sym_eigen.h"
#include "kernels/philox.h"
#include "tests/check.h"

static double normal(uint32_t stream, uint64_t i) { return rng_normal(99, RNG_DATA, 0, stream, i); }

// q (n, n): a random orthogonal matrix, the Gram-Schmidt orthonormalisation of normal columns.
static void random_orthogonal(double *q, int n, uint32_t stream) {
    for (int k = 0; k < n; k++) {
        for (int i = 0; i < n; i++) q[i * n + k] = normal(stream, (uint64_t)i * n + k);
        for (int pass = 0; pass < 2; pass++) // twice is enough against cancellation
            for (int j = 0; j < k; j++) {
                double d = 0;
                for (int i = 0; i < n; i++) d += q[i * n + j] * q[i * n + k];
                for (int i = 0; i < n; i++) q[i * n + k] -= d * q[i * n + j];
            }
        double norm = 0;
        for (int i = 0; i < n; i++) norm += q[i * n + k] * q[i * n + k];
        for (int i = 0; i < n; i++) q[i * n + k] /= sqrt(norm);
    }
}

// out (n, n) = q diag(values) q^T
static void compose(double *out, const double *q, const double *values, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += q[i * n + k] * values[k] * q[j * n + k];
            out[i * n + j] = s;
        }
}

static void test_eigen_residual(int n) {
    double *a = malloc(sizeof(double) * n * n), *work = malloc(sizeof(double) * n * n),
           *v = malloc(sizeof(double) * n * n), *values = malloc(sizeof(double) * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = normal(1, (uint64_t)i * n + j);
    memcpy(work, a, sizeof(double) * n * n);
    int sweeps = sym_eigen(work, n, values, v);
    double residual = 0, norm = 0, orthogonality = 0;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double av = 0, vv = 0;
            for (int j = 0; j < n; j++) {
                av += a[i * n + j] * v[j * n + k];
                vv += v[j * n + i] * v[j * n + k];
            }
            residual = fmax(residual, fabs(av - values[k] * v[i * n + k]));
            orthogonality = fmax(orthogonality, fabs(vv - (i == k)));
            norm = fmax(norm, fabs(a[i * n + k]));
        }
    char name[64];
    snprintf(name, sizeof(name), "sym_eigen.residual_%d", n);
    check(sweeps > 0 && residual < 1e-12 * norm * n && orthogonality < 1e-12 * n, name,
          "%d sweeps, max |A v - lambda v| %.2e, max |V^T V - I| %.2e", sweeps, residual, orthogonality);
    free(a), free(work), free(v), free(values);
}

static void test_eigen_2x2(void) {
    // [[2, 1], [1, 3]]: (5 -+ sqrt(5)) / 2
    double a[4] = {2, 1, 1, 3}, v[4], values[2];
    sym_eigen(a, 2, values, v);
    double lo = fmin(values[0], values[1]), hi = fmax(values[0], values[1]);
    double err = fmax(fabs(lo - (5 - sqrt(5)) / 2), fabs(hi - (5 + sqrt(5)) / 2));
    check(err < 1e-14, "sym_eigen.2x2", "error %.2e", err);
}

// The square root of q diag(lambda) q^T is q diag(sqrt(lambda)) q^T; a slightly negative
// eigenvalue (round-off of a PSD matrix) counts as zero.
static void test_sqrt(void) {
    enum { N = 40 };
    static double q[N * N], a[N * N], want[N * N], got[N * N];
    double values[N], roots[N];
    random_orthogonal(q, N, 2);
    for (int k = 0; k < N; k++) {
        values[k] = k == 0 ? -1e-14 : exp(normal(3, k));
        roots[k] = k == 0 ? 0 : sqrt(values[k]);
    }
    compose(a, q, values, N);
    compose(want, q, roots, N);
    sym_sqrt_psd(a, N, got);
    double err = 0, scale = 0;
    for (int i = 0; i < N * N; i++) {
        err = fmax(err, fabs(got[i] - want[i]));
        scale = fmax(scale, fabs(want[i]));
    }
    check(err < 1e-12 * scale, "sym_sqrt_psd.known_eigenpairs", "max error %.2e of %.3g", err, scale);
}

static GaussianStats stats_of(const double *mean, const double *cov, int n) {
    GaussianStats s = {n, 0, malloc(sizeof(double) * n), malloc(sizeof(double) * n * n)};
    memcpy(s.mean, mean, sizeof(double) * n);
    memcpy(s.cov, cov, sizeof(double) * n * n);
    return s;
}

// Covariances with common eigenvectors q: the distance has the closed form above; with q = I
// they are diagonal. A zero eigenvalue of S_a^(1/2) S_b S_a^(1/2) comes out as round-off of about
// 1e-16 of the largest, whose square root adds ~1e-8 relative: the tolerance is 1e-7.
static void test_distance_closed_form(int n, int rotate, const char *name) {
    double *q = calloc((size_t)n * n, sizeof(double)), *ca = malloc(sizeof(double) * n * n),
           *cb = malloc(sizeof(double) * n * n), *a = malloc(sizeof(double) * n), *b = malloc(sizeof(double) * n),
           *ma = malloc(sizeof(double) * n), *mb = malloc(sizeof(double) * n);
    if (rotate)
        random_orthogonal(q, n, 4);
    else
        for (int i = 0; i < n; i++) q[i * n + i] = 1;
    double want = 0;
    for (int k = 0; k < n; k++) {
        a[k] = exp(normal(5, k));
        b[k] = k % 7 == 0 ? 0 : exp(normal(6, k)); // some zero variances: a singular covariance
        ma[k] = normal(7, k);
        mb[k] = normal(8, k);
        want += (ma[k] - mb[k]) * (ma[k] - mb[k]) + (sqrt(a[k]) - sqrt(b[k])) * (sqrt(a[k]) - sqrt(b[k]));
    }
    compose(ca, q, a, n);
    compose(cb, q, b, n);
    GaussianStats sa = stats_of(ma, ca, n), sb = stats_of(mb, cb, n);
    double got = frechet_distance(&sa, &sb), back = frechet_distance(&sb, &sa), self = frechet_distance(&sa, &sa);
    double err = fmax(fabs(got - want), fabs(back - want)) / want;
    check(err < 1e-7 && fabs(self) < 1e-7 * want, name, "d^2 %.12g, closed form %.12g, rel %.2e, d^2(a, a) %.2e", got,
          want, err, self);
    gaussian_stats_free(&sa);
    gaussian_stats_free(&sb);
    free(q), free(ca), free(cb), free(a), free(b), free(ma), free(mb);
}

// Mean and unbiased covariance of a few vectors, against sums written out.
static void test_fit(void) {
    float x[3 * 2] = {1, 2, 3, 5, 8, 11};
    GaussianStats s = gaussian_stats_fit(x, 3, 2);
    // means 4 and 6; deviations (-3, -4), (-1, -1), (4, 5)
    double want[4] = {(9 + 1 + 16) / 2.0, (12 + 1 + 20) / 2.0, (12 + 1 + 20) / 2.0, (16 + 1 + 25) / 2.0};
    double err = fabs(s.mean[0] - 4) + fabs(s.mean[1] - 6);
    for (int i = 0; i < 4; i++) err += fabs(s.cov[i] - want[i]);
    check(err < 1e-12, "gaussian_stats_fit.small", "error %.2e", err);
    gaussian_stats_free(&s);
}

int main(void) {
    test_eigen_2x2();
    test_eigen_residual(17);
    test_eigen_residual(128);
    test_sqrt();
    test_fit();
    test_distance_closed_form(64, 0, "frechet.diagonal_closed_form");
    test_distance_closed_form(128, 1, "frechet.shared_eigenvectors_closed_form");
    return check_exit();
}
