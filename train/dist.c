#include "train/dist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "train/dist_backend.h"

// ---- the single process: every collective is the identity ----

static void single_allreduce_f32(Dist *d, float *x, size_t n, size_t bucket) {}
static void single_allreduce_f64(Dist *d, double *x, size_t n) {}
static void single_reduce_scatter(Dist *d, const float *full, float *shard, size_t n) {
    if (shard != full) memmove(shard, full, n * sizeof(float));
}
static void single_allgather(Dist *d, float *full, size_t n) {}
static void single_gather(Dist *d, const float *shard, float *full, size_t n, int root) {
    if (shard != full) memmove(full, shard, n * sizeof(float));
}
static void single_broadcast(Dist *d, void *buf, size_t bytes, int root) {}
static void single_barrier(Dist *d) {}
static void single_abort(Dist *d) { exit(1); }
static void single_close(Dist *d) {}

static const DistBackend single_backend = {
    .allreduce_sum_f32 = single_allreduce_f32,
    .allreduce_sum_f64 = single_allreduce_f64,
    .reduce_scatter_sum_f32 = single_reduce_scatter,
    .allgather_f32 = single_allgather,
    .gather_f32 = single_gather,
    .broadcast = single_broadcast,
    .barrier = single_barrier,
    .abort = single_abort,
    .close = single_close,
};

Dist *dist_single(void) {
    static Dist single = {
        .rank = 0, .world = 1, .local_rank = 0, .local_world = 1, .host = "local", .backend = &single_backend};
    return &single;
}

// ---- opening ----

// The variables launchers give their processes: OpenMPI's mpirun, PMI (MPICH and Intel MPI's
// hydra, srun --mpi=pmi2) and PMIx (srun --mpi=pmix, prterun), which only names the rank.
typedef struct {
    int launched; // a launcher started this process
    int rank;     // its rank, or -1 when unknown
    int world;    // the number of processes, or -1 when unknown
} Launch;

static int env_int(const char *name) {
    const char *v = getenv(name);
    long x;
    return v && !parse_long(v, &x) && x >= 0 && x < 1 << 30 ? (int)x : -1;
}

static Launch launch_from_environment(void) {
    Launch l = {0, -1, -1};
    static const char *worlds[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    static const char *ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    for (int i = 0; i < 2; i++)
        if (env_int(worlds[i]) >= 0) l.world = env_int(worlds[i]);
    for (int i = 0; i < 3; i++)
        if (env_int(ranks[i]) >= 0) l.rank = env_int(ranks[i]);
    l.launched = l.world >= 0 || l.rank >= 0;
    return l;
}

Dist *dist_open(double timeout_s) {
    Launch l = launch_from_environment();
    if (!l.launched) return dist_single();
#ifdef DYDIT_MPI
    return dist_mpi_open(timeout_s);
#else
    // A rank above 0 proves several processes even where the launcher does not say how many.
    if (l.world > 1 || l.rank > 0) {
        char of[32] = "";
        if (l.world > 1) snprintf(of, sizeof(of), " of %d", l.world);
        die("rank %d%s: a launcher started several processes, but this dydit was built without MPI; install MPI "
            "(libopenmpi-dev) and rebuild, or run one process",
            l.rank, of);
    }
    return dist_single();
#endif
}

void dist_close(Dist *d) { d->backend->close(d); }

void dist_abort(Dist *d, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (d->world > 1)
        fprintf(stderr, "error: rank %d of %d (%s): ", d->rank, d->world, d->host);
    else
        fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    d->backend->abort(d);
    exit(1); // the backend's abort does not return; this only keeps the promise of noreturn
}

// ---- collectives ----

DistShard dist_shard(size_t n, int world, int rank) {
    size_t per = (n + (size_t)world - 1) / (size_t)world, offset = per * (size_t)rank;
    if (offset > n) offset = n;
    DistShard s = {offset, n - offset < per ? n - offset : per};
    return s;
}

void dist_allreduce_sum_f32(Dist *d, float *x, size_t n, size_t bucket) {
    if (bucket == 0) die("internal: all-reduce bucket of 0 elements");
    d->backend->allreduce_sum_f32(d, x, n, bucket);
}
void dist_allreduce_sum_f64(Dist *d, double *x, size_t n) { d->backend->allreduce_sum_f64(d, x, n); }
void dist_reduce_scatter_sum_f32(Dist *d, const float *full, float *shard, size_t n) {
    d->backend->reduce_scatter_sum_f32(d, full, shard, n);
}
void dist_allgather_f32(Dist *d, float *full, size_t n) { d->backend->allgather_f32(d, full, n); }
void dist_gather_f32(Dist *d, const float *shard, float *full, size_t n, int root) {
    d->backend->gather_f32(d, shard, full, n, root);
}
void dist_broadcast(Dist *d, void *buf, size_t bytes, int root) { d->backend->broadcast(d, buf, bytes, root); }
void dist_barrier(Dist *d) { d->backend->barrier(d); }

// ---- test hook ----

int dist_test_fault(Dist *d, long step) {
    const char *spec = getenv("DYDIT_TEST_FAULT");
    if (!spec) return 0;
    char kind[8];
    int rank;
    long at;
    if (sscanf(spec, "%7[a-z]:%d:%ld", kind, &rank, &at) != 3 ||
        (strcmp(kind, "die") && strcmp(kind, "hang") && strcmp(kind, "nan")))
        die("DYDIT_TEST_FAULT must be die:RANK:STEP, hang:RANK:STEP or nan:RANK:STEP (got '%s')", spec);
    if (rank != d->rank || step != at) return 0;
    if (!strcmp(kind, "nan")) return 1;
    if (!strcmp(kind, "die")) die("test fault: rank %d stops at step %ld", rank, step);
    fprintf(stderr, "test fault: rank %d hangs at step %ld\n", rank, step);
    for (;;) pause();
}
