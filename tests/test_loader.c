// tests/test_loader.c: the shard loader: the seeded epoch order (every sample once per epoch),
// 2 and 3 ranks together equal to one rank, exact resume after a seek, prefetching equal to
// synchronous reads, posterior sampling (exact values, flip frequency, noise statistics), and
// errors from bad data. Usage: test_loader WORKDIR
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/epoch_order.h"
#include "data/loader.h"
#include "kernels/philox.h"
#include "tests/check.h"
#include "tests/shard_fixture.h"
#include "tests/workdir.h"

static char err[1024];

// Sample i of the sample-storage set: element e holds i * 1000 + e (exact in F32).
enum { N = 61, C = 2, H = 3, W = 5, NUMEL = C * H * W, CLASSES = 7, G = 12 };
static float ramp(int64_t i, int flip, int64_t e) { return (float)(i * 1000 + e); }

static char *sample_dir, *posterior_dir;

static Loader *open_loader(const char *dir, int rank, int world, int prefetch, uint64_t seed) {
    LoaderConfig cfg = {.global_batch = G, .rank = rank, .world = world, .seed = seed, .prefetch = prefetch};
    Loader *l = loader_open(dir, &cfg, err, sizeof(err));
    if (!l) printf("FAIL loader_open: %s\n", err);
    return l;
}

// Reads `steps` batches of this rank into x (steps, B, NUMEL) and y (steps, B); 0 on success.
static int read_steps(Loader *l, int steps, float *x, int32_t *y) {
    int B = loader_info(l).local_batch;
    for (int s = 0; s < steps; s++)
        if (loader_next(l, x + (size_t)s * B * NUMEL, y + (size_t)s * B, err, sizeof(err))) return -1;
    return 0;
}

// The dataset index a sample came from, checking the rest of its contents and its label.
static int64_t identify(const float *x, int32_t label, int *intact) {
    int64_t i = (int64_t)(x[0] / 1000);
    for (int e = 0; e < NUMEL; e++) *intact &= x[e] == ramp(i, 0, e);
    *intact &= label == i % CLASSES;
    return i;
}

static void test_order_and_ranks(void) {
    enum { STEPS = 16 }; // 192 global samples: three full epochs of 61 and a part of the fourth
    float *x = xmalloc(sizeof(float) * STEPS * G * NUMEL);
    int32_t *y = xmalloc(sizeof(int32_t) * STEPS * G);
    int64_t single[STEPS * G];
    Loader *l = open_loader(sample_dir, 0, 1, 0, 42);
    if (!l || read_steps(l, STEPS, x, y)) {
        check(0, "loader_single_rank", "%s", err);
        return;
    }
    int intact = 1;
    for (int g = 0; g < STEPS * G; g++) single[g] = identify(x + (size_t)g * NUMEL, y[g], &intact);
    check_true(intact, "loader_sample_contents_and_labels");
    check_true(loader_cursor(l) == STEPS, "loader_cursor_counts_steps");
    loader_close(l);

    // the documented order: global sample g is element g mod N of epoch g / N's permutation
    EpochOrder order;
    epoch_order_init(&order, N, 42);
    int same_order = 1, once = 1, shuffled = 0;
    for (int g = 0; g < STEPS * G; g++) same_order &= single[g] == epoch_order_index(&order, (uint64_t)g);
    epoch_order_free(&order);
    for (int e = 0; e < 3; e++) {
        int seen[N] = {0};
        for (int p = 0; p < N; p++) seen[single[e * N + p]]++;
        for (int i = 0; i < N; i++) once &= seen[i] == 1;
        for (int p = 0; p < N && e > 0; p++) shuffled |= single[e * N + p] != single[p];
    }
    check_true(same_order, "loader_follows_epoch_order");
    check(once && shuffled, "loader_every_sample_once_per_epoch", "3 epochs of %d, each epoch reshuffled", N);

    for (int world = 2; world <= 3; world++) {
        int B = G / world, equal = 1, seen_once = 1;
        for (int r = 0; r < world; r++) {
            Loader *lr = open_loader(sample_dir, r, world, 0, 42);
            if (!lr || read_steps(lr, STEPS, x, y)) {
                equal = 0;
                loader_close(lr);
                break;
            }
            for (int s = 0; s < STEPS; s++)
                for (int j = 0; j < B; j++) {
                    int ok = 1;
                    equal &= identify(x + ((size_t)s * B + j) * NUMEL, y[s * B + j], &ok) == single[s * G + r * B + j];
                    equal &= ok;
                }
            loader_close(lr);
        }
        // the ranks' slices partition each step, so each epoch's union is the whole set, once
        seen_once = equal && once;
        char name[64];
        snprintf(name, sizeof(name), "loader_%d_ranks_equal_one_rank", world);
        check(equal && seen_once, name, "union of %d slices of %d per step", world, B);
    }
    free(x);
    free(y);
}

static void test_resume_and_prefetch(void) {
    enum { STEPS = 14, FROM = 5 };
    size_t xs = sizeof(float) * STEPS * G * NUMEL, ys = sizeof(int32_t) * STEPS * G;
    float *x = xmalloc(xs), *x2 = xmalloc(xs);
    int32_t *y = xmalloc(ys), *y2 = xmalloc(ys);
    Loader *a = open_loader(sample_dir, 1, 3, 0, 7);
    int ok = a && read_steps(a, STEPS, x, y) == 0;
    loader_close(a);
    int B = G / 3;
    // a new process resuming at step FROM
    Loader *b = open_loader(sample_dir, 1, 3, 0, 7);
    loader_seek(b, FROM);
    int resumed = ok && b && loader_cursor(b) == FROM && read_steps(b, STEPS - FROM, x2, y2) == 0 &&
                  !memcmp(x2, x + (size_t)FROM * B * NUMEL, sizeof(float) * (STEPS - FROM) * B * NUMEL) &&
                  !memcmp(y2, y + (size_t)FROM * B, sizeof(int32_t) * (STEPS - FROM) * B);
    loader_close(b);
    check_true(resumed, "loader_resume_after_seek_is_exact");

    for (int depth = 1; depth <= 4; depth += 3) {
        Loader *p = open_loader(sample_dir, 1, 3, depth, 7);
        int same = ok && p && read_steps(p, STEPS, x2, y2) == 0 && !memcmp(x2, x, sizeof(float) * STEPS * B * NUMEL) &&
                   !memcmp(y2, y, sizeof(int32_t) * STEPS * B);
        // seek backwards and forwards while batches are prepared ahead
        loader_seek(p, 2);
        same = same && read_steps(p, 3, x2, y2) == 0 &&
               !memcmp(x2, x + (size_t)2 * B * NUMEL, sizeof(float) * 3 * B * NUMEL);
        loader_seek(p, 9);
        same = same && read_steps(p, 1, x2, y2) == 0 &&
               !memcmp(x2, x + (size_t)9 * B * NUMEL, sizeof(float) * B * NUMEL) && loader_cursor(p) == 10;
        loader_close(p);
        char name[64];
        snprintf(name, sizeof(name), "loader_prefetch_%d_equals_synchronous", depth);
        check(same, name, "%d steps, then seeks to 2 and 9", STEPS);
    }
    // closing a loader whose thread is blocked on a full ring
    Loader *p = open_loader(sample_dir, 0, 1, 2, 7);
    int first = p && read_steps(p, 1, x2, y2) == 0;
    loader_close(p);
    check_true(first, "loader_close_with_prefetched_batches");
    free(x);
    free(x2);
    free(y);
    free(y2);
}

/* ---------------------------------------------------------------------------------------------
 * Posterior storage
 * ------------------------------------------------------------------------------------------- */

// Sample i: the unflipped mean is +8 + e/4 + i/8, the mirrored one -8 - e/4 - i/8, so the sign of
// a draw tells the flip; std 0.25 + e/16 for both. All on the half grid (the set is F16).
enum { PN = 40, PNUMEL = 16 };
static const float PSCALE = 0.5f;
static float post_mean(int64_t i, int flip, int64_t e) { return (flip ? -1.0f : 1.0f) * (8.0f + e / 4.0f + i / 8.0f); }
static float post_std(int64_t i, int flip, int64_t e) { return 0.25f + e / 16.0f; }

static void test_posterior(void) {
    enum { EPOCHS = 300, PG = 8 };
    LoaderConfig cfg = {.global_batch = PG, .rank = 0, .world = 1, .seed = 5, .prefetch = 2};
    Loader *l = loader_open(posterior_dir, &cfg, err, sizeof(err));
    if (!l) {
        check(0, "loader_posterior_open", "%s", err);
        return;
    }
    float x[PG * PNUMEL];
    int32_t y[PG];
    EpochOrder order;
    epoch_order_init(&order, PN, 5);
    long flips = 0, draws = 0;
    double z_sum[PNUMEL] = {0}, z_sq[PNUMEL] = {0}, worst = 0;
    int exact = 1, steps = EPOCHS * PN / PG;
    for (int s = 0; s < steps && exact; s++) {
        if (loader_next(l, x, y, err, sizeof(err))) {
            exact = 0;
            break;
        }
        for (int j = 0; j < PG; j++) {
            uint64_t g = (uint64_t)s * PG + (uint64_t)j;
            int64_t i = epoch_order_index(&order, g);
            uint32_t epoch = (uint32_t)(g / PN);
            int flip = (int)(rng_u32(5, RNG_FLIP, epoch, (uint32_t)i, 0) >> 31);
            const float *v = x + j * PNUMEL;
            int seen_flip = v[0] < 0;
            exact &= seen_flip == flip && y[j] == i % CLASSES;
            flips += seen_flip;
            draws++;
            for (int e = 0; e < PNUMEL; e++) {
                float eps = rng_normal(5, RNG_POSTERIOR, epoch, (uint32_t)i, (uint64_t)e);
                double want = PSCALE * (post_mean(i, flip, e) + post_std(i, flip, e) * eps);
                double d = fabs(v[e] - want) / fabs(want);
                if (d > worst) worst = d;
                double z = (v[e] / PSCALE - post_mean(i, seen_flip, e)) / post_std(i, seen_flip, e);
                z_sum[e] += z;
                z_sq[e] += z * z;
            }
        }
    }
    epoch_order_free(&order);
    loader_close(l);
    check(exact && worst < 1e-6, "loader_posterior_draws_documented_numbers", "%ld draws, max relative error %.2g",
          draws, worst);
    double p = (double)flips / (double)draws, sigma = sqrt(0.25 / (double)draws);
    check(fabs(p - 0.5) < 4 * sigma, "loader_posterior_flips_half_the_time",
          "%.4f flipped over %ld draws (4 sigma %.4f)", p, draws, 4 * sigma);
    double worst_mean = 0, worst_std = 0;
    for (int e = 0; e < PNUMEL; e++) {
        double m = z_sum[e] / (double)draws, sd = sqrt(z_sq[e] / (double)draws - m * m);
        if (fabs(m) > worst_mean) worst_mean = fabs(m);
        if (fabs(sd - 1) > worst_std) worst_std = fabs(sd - 1);
    }
    // per element, z = (draw / scale - mean) / std over all draws: its mean within 4 standard errors
    // of 0 (4 / sqrt(12000) = 0.037), its standard deviation within 4 of its standard errors
    // (1 / sqrt(2 * 12000)) of 1
    check(worst_mean < 4 / sqrt((double)draws) && worst_std < 4 / sqrt(2.0 * (double)draws),
          "loader_posterior_noise_statistics", "worst |mean| %.4f, worst |std - 1| %.4f over %ld draws", worst_mean,
          worst_std, draws);
}

static float poisoned(int64_t i, int flip, int64_t e) { return i == 3 && e == 2 ? NAN : 1.0f; }

static void test_bad_values(void) {
    char *dir = path_in("nan");
    ShardLayout lay = fixture_layout(1, 2, 2, 3, SHARD_SAMPLE, ST_F16, 1.0);
    int64_t counts[1] = {5};
    int rc = fixture_write_set(dir, &lay, counts, 1, poisoned, NULL, err, sizeof(err));
    for (int prefetch = 0; prefetch <= 2 && rc == 0; prefetch += 2) {
        LoaderConfig cfg = {.global_batch = 5, .rank = 0, .world = 1, .seed = 1, .prefetch = prefetch};
        Loader *l = loader_open(dir, &cfg, err, sizeof(err));
        float x[5 * 4];
        int32_t y[5];
        int first = l ? loader_next(l, x, y, err, sizeof(err)) : 0;
        int again = l ? loader_next(l, x, y, err, sizeof(err)) : 0;
        check(l && first != 0 && again != 0 && contains(err, "shard-00000.safetensors: sample 3 holds a non-finite"),
              prefetch ? "loader_non_finite_error_prefetch" : "loader_non_finite_error", "%s", l ? err : "open failed");
        loader_close(l);
    }
    free(dir);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
        return 2;
    }
    workdir_init(argv[1], "loader");
    sample_dir = path_in("sample");
    posterior_dir = path_in("posterior");
    ShardLayout sample = fixture_layout(C, H, W, CLASSES, SHARD_SAMPLE, ST_F32, 1.0);
    ShardLayout post = fixture_layout(1, 4, 4, CLASSES, SHARD_POSTERIOR, ST_F16, PSCALE);
    int64_t counts[4] = {25, 0, 20, 16}, post_counts[3] = {13, 13, 14};
    if (fixture_write_set(sample_dir, &sample, counts, 4, ramp, NULL, err, sizeof(err)) ||
        fixture_write_set(posterior_dir, &post, post_counts, 3, post_mean, post_std, err, sizeof(err))) {
        printf("FAIL loader_fixtures: %s\n", err);
        return 1;
    }
    test_order_and_ranks();
    test_resume_and_prefetch();
    test_posterior();
    test_bad_values();
    return check_exit();
}
