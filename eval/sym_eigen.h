// eval/sym_eigen.h: eigendecomposition of a real symmetric matrix by cyclic Jacobi rotations, and
// the square root of a positive semi-definite one. Sized for the Frechet distance's feature
// covariances (a few hundred rows at most): each sweep costs O(n^3) and about ten sweeps reach
// double-precision round-off. Dependencies stay at BLAS; no LAPACK is needed.
#pragma once

// a (n, n) symmetric, row-major, is overwritten. values (n) receives the eigenvalues in no
// particular order, vectors (n, n) the orthonormal eigenvectors as columns, so that
// a = vectors diag(values) vectors^T. Returns the number of sweeps taken, or -1 when the
// off-diagonal mass did not vanish within the sweep limit (never seen for symmetric input).
int sym_eigen(double *a, int n, double *values, double *vectors);

// out (n, n) = the symmetric square root of a (n, n): V diag(sqrt(max(lambda, 0))) V^T. Small
// negative eigenvalues (round-off of a PSD matrix) count as 0. a is left unchanged.
void sym_sqrt_psd(const double *a, int n, double *out);
