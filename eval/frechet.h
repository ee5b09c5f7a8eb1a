// eval/frechet.h: Gaussians fitted to feature vectors and the Frechet distance between them,
//   d^2 = ||mu_1 - mu_2||^2 + tr(S_1) + tr(S_2) - 2 tr((S_1 S_2)^(1/2)),
// the quantity FID computes on Inception features. The trace term is evaluated on the symmetric
// matrix S_1^(1/2) S_2 S_1^(1/2), which has the same eigenvalues as S_1 S_2, so only symmetric
// eigendecompositions are needed (eval/sym_eigen.h). Everything is in double.
#pragma once
#include <stdint.h>

typedef struct {
    int dim;
    int64_t count; // feature vectors the statistics were fitted to
    double *mean;  // (dim)
    double *cov;   // (dim, dim), unbiased (divides by count - 1), like numpy.cov
} GaussianStats;

// Mean and covariance of features (count, dim); count >= 2.
GaussianStats gaussian_stats_fit(const float *features, int64_t count, int dim);
void gaussian_stats_free(GaussianStats *s);

// The squared Frechet distance between the two Gaussians (same dim); >= 0 up to round-off.
double frechet_distance(const GaussianStats *a, const GaussianStats *b);
