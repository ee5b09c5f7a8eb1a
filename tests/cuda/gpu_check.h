// tests/cuda/gpu_check.h: what the GPU tests share: binding the device, host arrays to and from
// the CUDA backend, and the name of the dense-product precision a check ran under.
#pragma once
#include <math.h>
#include <string.h>

#include "common/util.h"
#include "kernels/cuda/cuda_ops.h"
#include "tests/fd.h"

// Binds device 0, or ends the program with the backend's one-line reason.
static void gpu_init(void) {
    char err[512];
    if (cuda_init(0, err, sizeof(err))) die("%s", err);
}

static const char *precision_name(CudaPrecision p) { return p == CUDA_PRECISION_FP32 ? "fp32" : "bf16"; }

// A new device buffer holding a copy of host (bytes).
static __attribute__((unused)) void *gpu_from_host(const void *host, size_t bytes) {
    void *dev = ops_cuda.alloc(bytes);
    ops_cuda.upload(dev, host, bytes);
    return dev;
}

// A new host array holding a copy of the device buffer dev (bytes).
static __attribute__((unused)) void *host_from_gpu(const void *dev, size_t bytes) {
    void *host = xmalloc(bytes ? bytes : 1);
    ops_cuda.download(host, dev, bytes);
    return host;
}

// ||gpu - cpu|| / ||cpu|| of a device array against its host twin (n floats).
static __attribute__((unused)) double gpu_rel_error(const float *dev, const float *cpu, size_t n) {
    float *got = host_from_gpu(dev, n * sizeof(float));
    double err = rel_error(got, cpu, n);
    free(got);
    return err;
}

// max |gpu - cpu| over n elements, relative to the root mean square of cpu. A norm-wise relative
// error averages one corrupted row of thousands away (at bf16's 2e-2, one row in 8192 hides); this
// does not: a wrong row errs by the order of the data itself.
static __attribute__((unused)) double worst_element_error(const float *gpu, const float *cpu, size_t n) {
    double worst = 0, sq = 0;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs((double)gpu[i] - cpu[i]));
        sq += (double)cpu[i] * cpu[i];
    }
    double rms = sqrt(sq / (double)(n ? n : 1));
    return worst / fmax(rms, 1e-30);
}

// The worst-element bound that goes with a norm-wise tolerance: rounding leaves single elements a
// few times the norm-wise level (on the emulated device at most 8.1x, attention's bf16
// probabilities; 6.2x Adam's first moment after a bf16 step; the rest below 4x), a corrupted
// element or row errs by the order of the data.
#define WORST_ELEMENT_FACTOR 25

// Elements whose bit patterns differ, and the first of them in *first (n when none).
static __attribute__((unused)) size_t bit_mismatches(const float *a, const float *b, size_t n, size_t *first) {
    size_t count = 0;
    *first = n;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&a[i], &b[i], sizeof(float))) {
            if (!count) *first = i;
            count++;
        }
    return count;
}

// A new host array holding n floats of backend memory (either backend).
static __attribute__((unused)) float *host_copy(const Ops *o, const float *src, size_t n) {
    float *host = xmalloc((n ? n : 1) * sizeof(float));
    o->download(host, src, n * sizeof(float));
    return host;
}
