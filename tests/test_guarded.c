// tests/test_guarded.c: the guarded CPU backend (--device cpu-guarded): its buffers round-trip
// through upload/download, its ops compute bitwise what the CPU ops compute, and each misuse it
// exists to catch ends the process: a host read of a buffer outside an op and a write past a
// buffer's end (SIGSEGV), and a host pointer handed to an op (exit status 1 with one line).
// Each misuse runs in a child process.
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernels/backend.h"
#include "kernels/guarded/ops_guarded.h"
#include "tests/check.h"
#ifdef DYDIT_CUDA
#include "kernels/cuda/cuda_ops.h"
#endif

static const Ops *g = &ops_cpu_guarded;

// How a child running fn ended: the signal that killed it, or 1000 + its exit status.
static int child_outcome(void (*fn)(void)) {
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        fn();
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFSIGNALED(st) ? WTERMSIG(st) : 1000 + WEXITSTATUS(st);
}

static void read_outside_op(void) {
    float *x = g->alloc(64 * sizeof(float));
    volatile float v = x[3];
    (void)v;
}

static void write_past_end(void) {
    float *x = g->alloc(100 * sizeof(float)); // 400 bytes: the mapping's last 16-byte slot ends at the guard page
    float host[101] = {0};
    g->upload(x, host, sizeof(host));
}

static void host_pointer_to_op(void) {
    float *x = g->alloc(16 * sizeof(float)), host[16] = {0};
    g->add(x, x, host, 16);
}

static void release_twice(void) {
    float *x = g->alloc(16 * sizeof(float));
    g->release(x);
    g->release(x);
}

int main(void) {
    enum { N = 1000 };
    float a[N], b[N], want[N], got[N];
    for (int i = 0; i < N; i++) a[i] = (float)i / 7.0f - 30.0f, b[i] = 1.0f / (float)(i + 1);
    float *da = g->alloc(N * sizeof(float)), *db = g->alloc(N * sizeof(float)), *dz = g->alloc(N * sizeof(float));
    g->download(got, dz, sizeof(got));
    int zero = 1;
    for (int i = 0; i < N; i++) zero &= got[i] == 0.0f;
    check_true(zero, "guarded.alloc_zero_filled");
    g->upload(da, a, sizeof(a));
    g->upload(db, b, sizeof(b));
    g->download(got, da, sizeof(got));
    check_true(!memcmp(got, a, sizeof(a)), "guarded.upload_download");

    // ops_cpu on host arrays is the reference
    ops_cpu.gelu_forward(want, a, N);
    ops_cpu.add(want, want, b, N);
    g->gelu_forward(dz, da, N);
    g->add(dz, dz, db, N);
    g->download(got, dz, sizeof(got));
    check_true(!memcmp(got, want, sizeof(want)), "guarded.ops_match_cpu");
    double sq_cpu, sq_guarded;
    ops_cpu.sum_squares(&sq_cpu, a, N);
    g->sum_squares(&sq_guarded, da, N); // the result is a host double
    check(sq_cpu == sq_guarded, "guarded.sum_squares_host_result", "%.17g vs %.17g", sq_guarded, sq_cpu);
    g->copy(dz, da + 10, 100 * sizeof(float)); // an interior pointer is backend memory too
    g->download(got, dz, 100 * sizeof(float));
    check_true(!memcmp(got, a + 10, 100 * sizeof(float)), "guarded.copy_interior_pointer");
    g->release(da);
    g->release(db);
    g->release(dz);

    int o = child_outcome(read_outside_op);
    check(o == SIGSEGV, "guarded.host_read_faults", "outcome %d", o);
    o = child_outcome(write_past_end);
    check(o == SIGSEGV, "guarded.overrun_faults", "outcome %d", o);
    o = child_outcome(host_pointer_to_op);
    check(o == 1001, "guarded.host_pointer_refused", "outcome %d", o);
    o = child_outcome(release_twice);
    check(o == 1001, "guarded.double_release_refused", "outcome %d", o);

#ifdef DYDIT_CUDA
    int gpus = cuda_device_count();
#else
    int gpus = 0;
#endif
    Backend chosen = backend_open("auto", "fp32", 0), guarded = backend_open("cpu-guarded", NULL, 3);
    if (gpus)
        check(!strcmp(chosen.name, "cuda:0") && !strcmp(chosen.precision, "fp32"), "backend.auto_takes_the_gpu", "%s",
              chosen.name);
    else
        check(chosen.ops == &ops_cpu && chosen.host_memory, "backend.auto_is_cpu_without_a_gpu", "%s", chosen.name);
    check(guarded.ops == g && !guarded.host_memory && !strcmp(guarded.precision, "fp32"), "backend.open_guarded", "%s",
          guarded.name);
    return check_exit();
}
