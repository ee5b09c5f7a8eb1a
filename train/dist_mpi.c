// train/dist_mpi.c: the communicator over MPI. The job's ranks share a duplicate of
// MPI_COMM_WORLD whose errors return to the caller, so that every failed call ends the job with
// the rank and MPI's reason instead of MPI's default handler or a hang.
//
// Three ways a job could hang are closed:
//  - an MPI call fails: checked, one line, MPI_Abort;
//  - a rank exits early (die() anywhere, a bad input on one node): an atexit hook calls MPI_Abort
//    while the rank is between MPI_Init and MPI_Finalize; a rank killed outright is noticed by
//    the launcher, which ends the job itself;
//  - a rank stops responding: every blocking collective runs under an interval timer whose signal
//    handler writes one line and exits the waiting rank, which the launcher then turns into the end
//    of the job. Only async-signal-safe calls run there (no MPI_Abort from a signal handler).
#include <limits.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/util.h"
#include "train/dist_backend.h"

typedef struct {
    MPI_Comm comm;
    double timeout; // seconds a blocking collective may wait; 0: forever
} MpiState;

static Dist mpi_dist;
static MpiState mpi_state;
static int mpi_active; // between MPI_Init and MPI_Finalize: leaving now must abort the job

static MPI_Comm comm_of(Dist *d) { return ((MpiState *)d->state)->comm; }

static void check(Dist *d, int rc, const char *what) {
    if (rc == MPI_SUCCESS) return;
    char reason[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, reason, &len) != MPI_SUCCESS) snprintf(reason, sizeof(reason), "MPI error %d", rc);
    dist_abort(d, "%s failed: %s", what, reason);
}

static int mpi_count(Dist *d, size_t n, const char *what) {
    if (n > INT_MAX) dist_abort(d, "%s of %zu elements exceeds MPI's int counts", what, n);
    return (int)n;
}

// ---- the watchdog ----

static char alarm_text[320];
static size_t alarm_len;

static void on_alarm(int sig) {
    ssize_t written = write(STDERR_FILENO, alarm_text, alarm_len);
    (void)written;
    _exit(1);
}

// Arms the timer for a blocking wait in `what`; the message is formatted now, since the handler
// may only write it.
static void watch_begin(Dist *d, const char *what) {
    double t = ((MpiState *)d->state)->timeout;
    if (t <= 0) return;
    int n = snprintf(alarm_text, sizeof(alarm_text),
                     "error: rank %d of %d (%s): %s waited more than %g s for the other ranks; aborting the job\n",
                     d->rank, d->world, d->host, what, t);
    alarm_len = n > 0 && (size_t)n < sizeof(alarm_text) ? (size_t)n : strlen(alarm_text);
    struct itimerval timer = {
        .it_value = {.tv_sec = (time_t)t, .tv_usec = (suseconds_t)((t - (double)(time_t)t) * 1e6)}};
    setitimer(ITIMER_REAL, &timer, NULL);
}

static void watch_end(Dist *d) {
    if (((MpiState *)d->state)->timeout <= 0) return;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
}

static void abort_on_exit(void) {
    if (!mpi_active) return;
    mpi_active = 0;
    fprintf(stderr, "error: rank %d of %d (%s) stopped before the end of the run; aborting the job\n", mpi_dist.rank,
            mpi_dist.world, mpi_dist.host);
    MPI_Abort(MPI_COMM_WORLD, 1);
}

// ---- collectives ----

// Buckets one after another with the blocking call: nothing runs beside them on the CPU, and
// OpenMPI's non-blocking all-reduce (libnbc) took 1.5-2x as long as its blocking one on 130 MB.
static void mpi_allreduce_f32(Dist *d, float *x, size_t n, size_t bucket) {
    size_t count = (n + bucket - 1) / bucket;
    for (size_t i = 0; i < count; i++) {
        size_t len = n - i * bucket < bucket ? n - i * bucket : bucket;
        char what[96];
        snprintf(what, sizeof(what), "the gradient all-reduce (bucket %zu of %zu)", i + 1, count);
        watch_begin(d, what);
        check(d,
              MPI_Allreduce(MPI_IN_PLACE, x + i * bucket, mpi_count(d, len, "an all-reduce bucket"), MPI_FLOAT, MPI_SUM,
                            comm_of(d)),
              "MPI_Allreduce of the gradients");
        watch_end(d);
    }
}

static void mpi_allreduce_f64(Dist *d, double *x, size_t n) {
    watch_begin(d, "an all-reduce");
    check(d, MPI_Allreduce(MPI_IN_PLACE, x, mpi_count(d, n, "an all-reduce"), MPI_DOUBLE, MPI_SUM, comm_of(d)),
          "MPI_Allreduce");
    watch_end(d);
}

// Counts and displacements of the ranks' shards of n elements.
static void shard_layout(Dist *d, size_t n, int *counts, int *displs) {
    mpi_count(d, n, "a sharded buffer");
    for (int r = 0; r < d->world; r++) {
        DistShard s = dist_shard(n, d->world, r);
        counts[r] = (int)s.count;
        displs[r] = (int)s.offset;
    }
}

static void mpi_reduce_scatter(Dist *d, const float *full, float *shard, size_t n) {
    int *counts = xmalloc(2 * (size_t)d->world * sizeof(int));
    shard_layout(d, n, counts, counts + d->world);
    watch_begin(d, "the gradient reduce-scatter");
    check(d, MPI_Reduce_scatter(full, shard, counts, MPI_FLOAT, MPI_SUM, comm_of(d)), "MPI_Reduce_scatter");
    watch_end(d);
    free(counts);
}

static void mpi_allgather(Dist *d, float *full, size_t n) {
    int *counts = xmalloc(2 * (size_t)d->world * sizeof(int));
    shard_layout(d, n, counts, counts + d->world);
    watch_begin(d, "the parameter all-gather");
    check(d, MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, full, counts, counts + d->world, MPI_FLOAT, comm_of(d)),
          "MPI_Allgatherv");
    watch_end(d);
    free(counts);
}

static void mpi_gather(Dist *d, const float *shard, float *full, size_t n, int root) {
    int *counts = xmalloc(2 * (size_t)d->world * sizeof(int));
    shard_layout(d, n, counts, counts + d->world);
    watch_begin(d, "a gather");
    check(d,
          MPI_Gatherv(shard, counts[d->rank], MPI_FLOAT, full, counts, counts + d->world, MPI_FLOAT, root, comm_of(d)),
          "MPI_Gatherv");
    watch_end(d);
    free(counts);
}

static void mpi_broadcast(Dist *d, void *buf, size_t bytes, int root) {
    watch_begin(d, "a broadcast");
    for (size_t done = 0; done < bytes;) { // in pieces: MPI counts are ints
        size_t piece = bytes - done < (size_t)1 << 30 ? bytes - done : (size_t)1 << 30;
        check(d, MPI_Bcast((char *)buf + done, (int)piece, MPI_BYTE, root, comm_of(d)), "MPI_Bcast");
        done += piece;
    }
    watch_end(d);
}

static void mpi_barrier(Dist *d) {
    watch_begin(d, "a barrier");
    check(d, MPI_Barrier(comm_of(d)), "MPI_Barrier");
    watch_end(d);
}

static void mpi_abort(Dist *d) {
    mpi_active = 0;
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void mpi_close(Dist *d) {
    MpiState *s = d->state;
    check(d, MPI_Comm_free(&s->comm), "MPI_Comm_free");
    check(d, MPI_Finalize(), "MPI_Finalize");
    mpi_active = 0;
}

static const DistBackend mpi_backend = {
    .allreduce_sum_f32 = mpi_allreduce_f32,
    .allreduce_sum_f64 = mpi_allreduce_f64,
    .reduce_scatter_sum_f32 = mpi_reduce_scatter,
    .allgather_f32 = mpi_allgather,
    .gather_f32 = mpi_gather,
    .broadcast = mpi_broadcast,
    .barrier = mpi_barrier,
    .abort = mpi_abort,
    .close = mpi_close,
};

Dist *dist_mpi_open(double timeout_s) {
    if (mpi_active) die("internal: the MPI communicator is already open");
    int provided; // only the main thread calls MPI; OpenMP and the loader's thread never do
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) die("MPI_Init_thread failed");
    mpi_active = 1;
    atexit(abort_on_exit);
    // one write per line: the launcher merges the ranks' stderr, and unbuffered pieces of lines
    // from several ranks would interleave mid-line
    setvbuf(stderr, NULL, _IOLBF, 0);
    Dist *d = &mpi_dist;
    d->backend = &mpi_backend;
    d->state = &mpi_state;
    mpi_state.timeout = timeout_s;
    d->rank = 0;
    d->world = 1;
    snprintf(d->host, sizeof(d->host), "?");
    check(d, MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(d, MPI_Comm_dup(MPI_COMM_WORLD, &mpi_state.comm), "MPI_Comm_dup");
    check(d, MPI_Comm_rank(mpi_state.comm, &d->rank), "MPI_Comm_rank");
    check(d, MPI_Comm_size(mpi_state.comm, &d->world), "MPI_Comm_size");
    char name[MPI_MAX_PROCESSOR_NAME];
    int len = 0;
    check(d, MPI_Get_processor_name(name, &len), "MPI_Get_processor_name");
    snprintf(d->host, sizeof(d->host), "%.*s", len, name);
    MPI_Comm local;
    check(d, MPI_Comm_split_type(mpi_state.comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local),
          "MPI_Comm_split_type");
    check(d, MPI_Comm_rank(local, &d->local_rank), "MPI_Comm_rank");
    check(d, MPI_Comm_size(local, &d->local_world), "MPI_Comm_size");
    check(d, MPI_Comm_free(&local), "MPI_Comm_free");
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigaction(SIGALRM, &sa, NULL);
    return d;
}
