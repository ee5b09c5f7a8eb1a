#include "eval/frechet.h"

#include <math.h>

#include "common/util.h"
#include "eval/sym_eigen.h"

GaussianStats gaussian_stats_fit(const float *features, int64_t count, int dim) {
    if (count < 2) die("a covariance needs at least 2 feature vectors (got %lld)", (long long)count);
    GaussianStats s = {dim, count, xcalloc((size_t)dim, sizeof(double)), xcalloc((size_t)dim * dim, sizeof(double))};
    for (int64_t i = 0; i < count; i++)
        for (int d = 0; d < dim; d++) s.mean[d] += features[(size_t)i * dim + d];
    for (int d = 0; d < dim; d++) s.mean[d] /= (double)count;
    double *centered = xmalloc(sizeof(double) * (size_t)dim);
    for (int64_t i = 0; i < count; i++) {
        for (int d = 0; d < dim; d++) centered[d] = features[(size_t)i * dim + d] - s.mean[d];
        for (int r = 0; r < dim; r++) {
            double *row = s.cov + (size_t)r * dim, cr = centered[r];
            for (int c = r; c < dim; c++) row[c] += cr * centered[c];
        }
    }
    for (int r = 0; r < dim; r++)
        for (int c = r; c < dim; c++) {
            double v = s.cov[(size_t)r * dim + c] / (double)(count - 1);
            s.cov[(size_t)r * dim + c] = s.cov[(size_t)c * dim + r] = v;
        }
    free(centered);
    return s;
}

void gaussian_stats_free(GaussianStats *s) {
    free(s->mean);
    free(s->cov);
    s->mean = s->cov = NULL;
}

double frechet_distance(const GaussianStats *a, const GaussianStats *b) {
    if (a->dim != b->dim) die("Frechet distance between features of %d and %d dimensions", a->dim, b->dim);
    int n = a->dim;
    size_t nn = (size_t)n * n;
    double mean_term = 0, trace_a = 0, trace_b = 0;
    for (int d = 0; d < n; d++) {
        double diff = a->mean[d] - b->mean[d];
        mean_term += diff * diff;
        trace_a += a->cov[(size_t)d * n + d];
        trace_b += b->cov[(size_t)d * n + d];
    }
    // m = S_a^(1/2) S_b S_a^(1/2), symmetrised against round-off
    double *root = xmalloc(sizeof(double) * nn), *tmp = xcalloc(nn, sizeof(double)), *m = xcalloc(nn, sizeof(double));
    sym_sqrt_psd(a->cov, n, root);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double r = root[(size_t)i * n + k];
            for (int j = 0; j < n; j++) tmp[(size_t)i * n + j] += r * b->cov[(size_t)k * n + j];
        }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < n; k++) {
            double t = tmp[(size_t)i * n + k];
            for (int j = 0; j < n; j++) m[(size_t)i * n + j] += t * root[(size_t)k * n + j];
        }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            double v = 0.5 * (m[(size_t)i * n + j] + m[(size_t)j * n + i]);
            m[(size_t)i * n + j] = m[(size_t)j * n + i] = v;
        }
    double *values = xmalloc(sizeof(double) * n);
    if (sym_eigen(m, n, values, tmp) < 0) die("symmetric eigendecomposition of a %dx%d matrix did not converge", n, n);
    double trace_root = 0;
    for (int k = 0; k < n; k++) trace_root += sqrt(fmax(values[k], 0));
    free(root);
    free(tmp);
    free(m);
    free(values);
    return mean_term + trace_a + trace_b - 2 * trace_root;
}
