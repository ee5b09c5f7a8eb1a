// tests/parity_frechet.c: prints the squared Frechet distance between Gaussians fitted to the
// feature sets `a` (N1, D) and `b` (N2, D) of a safetensors file, for tests/ref/frechet_ref.py to
// compare with numpy. Usage: parity_frechet IN.safetensors
#include <stdio.h>
#include <stdlib.h>

#include "common/util.h"
#include "data/safetensors.h"
#include "eval/frechet.h"

static GaussianStats fit(const StFile *f, const char *name) {
    const StTensor *t = st_find(f, name);
    if (!t || t->ndim != 2) die("%s: want a 2-D tensor '%s'", st_path(f), name);
    float *x = xmalloc(sizeof(float) * (size_t)st_numel(t));
    char err[512];
    if (st_read_f32(f, t, x, err, sizeof(err))) die("%s", err);
    GaussianStats s = gaussian_stats_fit(x, t->shape[0], (int)t->shape[1]);
    free(x);
    return s;
}

int main(int argc, char **argv) {
    if (argc != 2) die("usage: parity_frechet IN.safetensors");
    char err[512];
    StFile *f = st_open(argv[1], err, sizeof(err));
    if (!f) die("%s", err);
    GaussianStats a = fit(f, "a"), b = fit(f, "b");
    printf("%.17g\n", frechet_distance(&a, &b));
    gaussian_stats_free(&a);
    gaussian_stats_free(&b);
    st_close(f);
    return 0;
}
