// tests/cuda/op_case.h: the harness of the GPU op tests. A case is one op call on host inputs; it
// runs on the CPU, then twice on the GPU from the same uploaded state, under a given dense-product
// precision (cuda_set_precision). Outputs start as the same non-zero contents on both backends:
// garbage where the op overwrites, random values where it accumulates (+=), so a kernel that adds
// where it should overwrite, or the reverse, fails. Checks:
//  - "cuda.<case>.<output>.<precision>": ||gpu - cpu|| / ||cpu|| within the output's tolerance and
//    every element within WORST_ELEMENT_FACTOR times it of the RMS (so one wrong row fails), or
//    equal bit for bit where the tolerance is 0 (data movement, Philox random numbers);
//  - "cuda.<case>.deterministic.<precision>": the two GPU runs agree bit for bit (no float atomics).
#pragma once
#include "tests/cuda/gpu_check.h"

// Relative norm-wise tolerance per precision; 0 means bitwise equality.
typedef struct {
    double fp32, bf16;
} Tol;

// Data movement and Philox streams: bit for bit.
static const Tol EXACT = {0, 0};
// Element-wise arithmetic in fp32 either way; only the rounding of a different but equivalent
// expression (fused multiply-adds) may differ.
static const Tol ELEMENTWISE = {1e-6, 1e-6};
// Element-wise functions through expf/tanhf, whose CUDA and glibc versions differ by an ulp or two
// and may come from fast intrinsics; the backend's fp32 goal is 1e-5.
static const Tol ACTIVATION = {1e-5, 1e-5};
// Reductions in fp32 (row statistics, sums over tokens), summed in a different order.
static const Tol REDUCTION = {1e-5, 1e-5};
// Dense products: fp32 GEMMs summed in another order; in bf16 the inputs are rounded to 8
// mantissa bits (2^-9 relative each), which leaves ~3e-3 relative on random data: 1e-2 bounds it.
static const Tol GEMM = {1e-5, 1e-2};
// Convolutions: a library may pick Winograd or FFT algorithms, whose transforms round more than
// direct sums: 5e-5 in fp32; bf16 as GEMMs.
static const Tol CONV = {5e-5, 1e-2};
// Attention: bf16 q, k enter the exponentials of the softmax and bf16 probabilities meet bf16 v, a
// product of two roundings: 2e-2. Its backward chains three bf16 products (dprobs, then dq, dk):
// 3e-2; in fp32 it subtracts each row's mean of dprobs weighted by probs (cancellation): 2e-5.
static const Tol ATTENTION_FWD = {1e-5, 2e-2};
static const Tol ATTENTION_BWD = {2e-5, 3e-2};
// Transcendental functions of large arguments or differences of near-equal logs: cosf(t f) with t
// up to 999, where one ulp of f moves the argument by ~6e-5; the variational bound's KL of two
// nearly equal Gaussians and its discretized-Gaussian log-likelihood.
static const Tol TRANSCENDENTAL = {1e-4, 1e-4};

enum { MAX_BUFS = 10 };

typedef struct Case Case;
typedef void (*RunFn)(const Ops *o, const Case *c);

typedef struct {
    const char *name;
    size_t bytes; // 0: the op gets NULL
    void *init;   // host contents before the op
    int compared; // an output
    Tol tol;
} Buf;

struct Case {
    const char *name;
    RunFn run;
    int nbuf;
    Buf buf[MAX_BUFS];
    void *p[MAX_BUFS]; // the running backend's pointers, in buf order
    // the op's shape and scalars; each run function reads the ones it needs
    int B, T, D, M, K, N, H, C, G, S, L, R, k, p1, p2, p3, p4, flag;
    int stride, stride2, off;
    size_t n, member; // member: offsetof(Ops, op) for ops sharing a signature
    float f1, f2;
    double d1, d2, d3, d4, d5;
    uint64_t seed;
    uint32_t u1, u2, u3;
    long step;
};

#define F(i) ((float *)c->p[i])
#define I(i) ((const int32_t *)c->p[i])
#define MEMBER(type) (*(type *)((const char *)o + c->member))

static __attribute__((unused)) Case *new_case(const char *name, RunFn run) {
    Case *c = xcalloc(1, sizeof(Case));
    c->name = name;
    c->run = run;
    return c;
}

static __attribute__((unused)) void add_buf(Case *c, const char *name, void *init, size_t bytes, int compared,
                                            Tol tol) {
    if (c->nbuf == MAX_BUFS) die("internal: case %s has too many buffers", c->name);
    c->buf[c->nbuf++] = (Buf){name, bytes, init, compared, tol};
}

// An input, an output (compared), a buffer the op may scribble on (scratch), and NULL.
static __attribute__((unused)) void in_f(Case *c, const char *name, float *x, size_t n) {
    add_buf(c, name, x, n * sizeof(float), 0, EXACT);
}
static __attribute__((unused)) void in_i(Case *c, const char *name, int32_t *x, size_t n) {
    add_buf(c, name, x, n * sizeof(int32_t), 0, EXACT);
}
static __attribute__((unused)) void out_f(Case *c, const char *name, float *init, size_t n, Tol tol) {
    add_buf(c, name, init, n * sizeof(float), 1, tol);
}
static __attribute__((unused)) void null_buf(Case *c, const char *name) { add_buf(c, name, NULL, 0, 0, EXACT); }

static uint32_t next_stream = 1;

static __attribute__((unused)) float *randn(size_t n, float sd) {
    float *x = xmalloc((n ? n : 1) * sizeof(float));
    fill_normal(x, n, sd, next_stream++);
    return x;
}

// Non-zero contents for a buffer the op overwrites: any value the op leaves in place shows.
static __attribute__((unused)) float *garbage(size_t n) {
    float *x = randn(n, 10);
    for (size_t i = 0; i < n; i++) x[i] += 50;
    return x;
}

// 0/1 values, about `on` of them 1.
static __attribute__((unused)) float *mask01(size_t n, double on) {
    float *x = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = rng_open01(rng_u32(5, RNG_DATA, 0, next_stream, i)) < on ? 1.0f : 0.0f;
    next_stream++;
    return x;
}

static __attribute__((unused)) float *uniform01(size_t n) {
    float *x = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)rng_open01(rng_u32(6, RNG_DATA, 0, next_stream, i));
    next_stream++;
    return x;
}

// N(0.7, 1.5^2): a non-zero mean exercises the centring of normalisations.
static __attribute__((unused)) float *randn_offset(size_t n) {
    float *x = randn(n, 1.5f);
    for (size_t i = 0; i < n; i++) x[i] += 0.7f;
    return x;
}

static __attribute__((unused)) int32_t *ints(const int32_t *v, size_t n) {
    int32_t *x = xmalloc(n * sizeof(int32_t));
    memcpy(x, v, n * sizeof(int32_t));
    return x;
}

static __attribute__((unused)) void *dup_bytes(const void *src, size_t bytes) {
    if (!bytes) return NULL;
    void *x = xmalloc(bytes);
    memcpy(x, src, bytes);
    return x;
}

static void compare_output(const Case *c, const Buf *b, const float *gpu, const float *cpu, CudaPrecision prec) {
    size_t n = b->bytes / sizeof(float);
    double tol = prec == CUDA_PRECISION_FP32 ? b->tol.fp32 : b->tol.bf16;
    char name[160];
    snprintf(name, sizeof(name), "cuda.%s.%s.%s", c->name, b->name, precision_name(prec));
    if (tol == 0) {
        size_t first, bad = bit_mismatches(gpu, cpu, n, &first);
        if (bad)
            check(0, name, "%zu of %zu elements differ in their bits; first [%zu] gpu %.9g cpu %.9g", bad, n, first,
                  gpu[first], cpu[first]);
        else
            check(1, name, "bitwise equal, %zu elements", n);
        return;
    }
    double err = rel_error(gpu, cpu, n), worst = worst_element_error(gpu, cpu, n);
    check(err <= tol && worst <= WORST_ELEMENT_FACTOR * tol, name,
          "rel %.2e, worst element %.2e of the RMS; tolerances %.0e and %.0e, %zu elements", err, worst, tol,
          WORST_ELEMENT_FACTOR * tol, n);
}

// Runs the case on the CPU and twice on the GPU under precision prec and checks every output.
static void run_case(Case *c, CudaPrecision prec) {
    cuda_set_precision(prec);
    void *cpu[MAX_BUFS];
    for (int i = 0; i < c->nbuf; i++) cpu[i] = dup_bytes(c->buf[i].init, c->buf[i].bytes);
    memcpy(c->p, cpu, sizeof(cpu));
    c->run(&ops_cpu, c);

    float *gpu[2][MAX_BUFS] = {{0}};
    for (int r = 0; r < 2; r++) {
        for (int i = 0; i < c->nbuf; i++)
            c->p[i] = c->buf[i].bytes ? gpu_from_host(c->buf[i].init, c->buf[i].bytes) : NULL;
        c->run(&ops_cuda, c);
        for (int i = 0; i < c->nbuf; i++) {
            if (c->buf[i].compared) gpu[r][i] = host_from_gpu(c->p[i], c->buf[i].bytes);
            if (c->p[i]) ops_cuda.release(c->p[i]);
        }
    }
    int deterministic = 1;
    for (int i = 0; i < c->nbuf; i++) {
        if (!c->buf[i].compared) continue;
        compare_output(c, &c->buf[i], gpu[0][i], cpu[i], prec);
        deterministic &= memcmp(gpu[0][i], gpu[1][i], c->buf[i].bytes) == 0;
    }
    char name[160];
    snprintf(name, sizeof(name), "cuda.%s.deterministic.%s", c->name, precision_name(prec));
    check_true(deterministic, name);
    for (int i = 0; i < c->nbuf; i++) free(cpu[i]), free(gpu[0][i]), free(gpu[1][i]);
}

enum { MAX_CASES = 160 };
static Case *cases[MAX_CASES];
static int ncases;

static void add(Case *c) {
    if (ncases == MAX_CASES) die("internal: too many cases");
    cases[ncases++] = c;
}

// Every added case in fp32, then in bf16.
static void run_cases(void) {
    CudaPrecision precisions[2] = {CUDA_PRECISION_FP32, CUDA_PRECISION_BF16};
    for (int p = 0; p < 2; p++)
        for (int i = 0; i < ncases; i++) run_case(cases[i], precisions[p]);
}
