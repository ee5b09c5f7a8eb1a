#include "eval/sym_eigen.h"

#include <math.h>
#include <string.h>

#include "common/util.h"

enum { MAX_SWEEPS = 100 };

static double off_diagonal_squares(const double *a, int n) {
    double s = 0;
    for (int p = 0; p < n; p++)
        for (int q = p + 1; q < n; q++) s += a[(size_t)p * n + q] * a[(size_t)p * n + q];
    return s;
}

// a <- J^T a J and vectors <- vectors J for the rotation J in the (p, q) plane that zeroes a[p][q]:
// J_pp = J_qq = c, J_pq = s, J_qp = -s with t = s / c the smaller root of t^2 + 2 theta t - 1 = 0,
// theta = (a_qq - a_pp) / (2 a_pq).
static void rotate(double *a, double *vectors, int n, int p, int q) {
    double apq = a[(size_t)p * n + q];
    double theta = (a[(size_t)q * n + q] - a[(size_t)p * n + p]) / (2 * apq);
    double t = fabs(theta) > 1e150 ? 0.5 / theta : copysign(1.0, theta) / (fabs(theta) + sqrt(theta * theta + 1));
    double c = 1 / sqrt(t * t + 1), s = t * c;
    for (int k = 0; k < n; k++) { // columns p and q
        double *row = a + (size_t)k * n, kp = row[p], kq = row[q];
        row[p] = c * kp - s * kq;
        row[q] = s * kp + c * kq;
    }
    double *rp = a + (size_t)p * n, *rq = a + (size_t)q * n;
    for (int k = 0; k < n; k++) { // rows p and q
        double pk = rp[k], qk = rq[k];
        rp[k] = c * pk - s * qk;
        rq[k] = s * pk + c * qk;
    }
    rp[q] = rq[p] = 0; // exactly zero in exact arithmetic
    for (int k = 0; k < n; k++) {
        double *row = vectors + (size_t)k * n, kp = row[p], kq = row[q];
        row[p] = c * kp - s * kq;
        row[q] = s * kp + c * kq;
    }
}

int sym_eigen(double *a, int n, double *values, double *vectors) {
    memset(vectors, 0, sizeof(double) * (size_t)n * n);
    for (int i = 0; i < n; i++) vectors[(size_t)i * n + i] = 1;
    double total = 0;
    for (size_t i = 0; i < (size_t)n * n; i++) total += a[i] * a[i];
    int sweeps = 0;
    while (off_diagonal_squares(a, n) > 1e-30 * total) {
        if (sweeps++ == MAX_SWEEPS) return -1;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++)
                if (a[(size_t)p * n + q] != 0) rotate(a, vectors, n, p, q);
    }
    for (int i = 0; i < n; i++) values[i] = a[(size_t)i * n + i];
    return sweeps;
}

void sym_sqrt_psd(const double *a, int n, double *out) {
    size_t nn = (size_t)n * n;
    double *work = xmalloc(sizeof(double) * nn), *v = xmalloc(sizeof(double) * nn),
           *values = xmalloc(sizeof(double) * n);
    memcpy(work, a, sizeof(double) * nn);
    if (sym_eigen(work, n, values, v) < 0) die("symmetric eigendecomposition of a %dx%d matrix did not converge", n, n);
    for (int k = 0; k < n; k++) values[k] = sqrt(fmax(values[k], 0));
    for (int i = 0; i < n; i++)
        for (int j = i; j < n; j++) {
            double s = 0;
            for (int k = 0; k < n; k++) s += v[(size_t)i * n + k] * values[k] * v[(size_t)j * n + k];
            out[(size_t)i * n + j] = out[(size_t)j * n + i] = s;
        }
    free(work);
    free(v);
    free(values);
}
