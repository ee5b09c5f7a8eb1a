// kernels/cuda/emu/block.cc: running a grid on the emulated device (kernels/cuda/emu/block.h,
// launch.h). Blocks run one after another on the calling thread; the threads of a block are fibers
// scheduled round robin, each running until it exits or waits. After each round the waiting warp
// collectives and the block barrier are resolved; a round in which nothing can move is a deadlock.
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernels/cuda/emu/check.h"
#include "kernels/cuda/emu/fiber.h"
#include "kernels/cuda/emu/include/cuda_runtime.h"
#include "kernels/cuda/emu/runtime.h"

extern "C" {
uint3 emu_thread_idx, emu_block_idx;
dim3 emu_block_dim, emu_grid_dim;
}

enum { MAX_THREADS = EMU_MAX_THREADS_PER_BLOCK, WARP = 32, STACK_BYTES = 128 << 10 };

typedef enum { READY, AT_BARRIER, AT_COLLECTIVE, EXITED } State;

typedef struct {
    State state;
    uint3 idx;
    // the collective it waits at, its contribution and, once resolved, its result
    EmuCollective kind;
    unsigned mask;
    int arg, width;
    uint64_t value, result;
} Thread;

static Fiber fibers[MAX_THREADS];
static Thread threads[MAX_THREADS];
static int thread_count, current;
static void *scheduler_sp;
static emu::ThreadBody body;
static const void *closure;
static const char *kernel_name;

void emu_device_fault(const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    fflush(stdout);
    const uint3 b = emu_block_idx, t = emu_thread_idx;
    fprintf(stderr, "error: emulated CUDA device: %s (kernel %s, block (%u,%u,%u), thread (%u,%u,%u))\n", what,
            kernel_name ? kernel_name : "?", b.x, b.y, b.z, t.x, t.y, t.z);
    exit(1);
}

// A fiber runs thread `index` of every block: the body, then back to the scheduler, which resumes
// it for the next block.
static void fiber_main(void *index) {
    int i = (int)(intptr_t)index;
    for (;;) {
        body(closure);
        threads[i].state = EXITED;
        emu_fiber_switch(&fibers[i].sp, scheduler_sp);
    }
}

static void ensure_fibers(void) {
    static bool made;
    if (!made) fibers_create(fibers, MAX_THREADS, STACK_BYTES, fiber_main);
    made = true;
}

// Waits: back to the scheduler until resolved.
static void wait_as(State s) {
    threads[current].state = s;
    emu_fiber_switch(&fibers[current].sp, scheduler_sp);
}

void emu_syncthreads(void) { wait_as(AT_BARRIER); }

uint64_t emu_warp_collective(EmuCollective kind, unsigned mask, uint64_t value, int arg, int width) {
    Thread *t = &threads[current];
    t->kind = kind, t->mask = mask, t->value = value, t->arg = arg, t->width = width;
    wait_as(AT_COLLECTIVE);
    return t->result;
}

static void enter(int i) {
    current = i;
    emu_thread_idx = threads[i].idx;
    emu_fiber_switch(&scheduler_sp, fibers[i].sp);
}

static const char *collective_name(EmuCollective k) {
    static const char *names[] = {"__syncwarp",       "__shfl_sync",    "__shfl_xor_sync",
                                  "__shfl_down_sync", "__shfl_up_sync", "__ballot_sync"};
    return names[k];
}

// The source lane of a shuffle by `lane`, or -1 when the lane keeps its own value.
static int shuffle_source(const Thread *t, int lane) {
    int width = t->width, base = lane & ~(width - 1), pos = lane & (width - 1);
    switch (t->kind) {
    case EMU_SHFL_IDX:
        return base + (t->arg & (width - 1));
    case EMU_SHFL_XOR:
        return (lane ^ t->arg) < base + width ? lane ^ t->arg : -1;
    case EMU_SHFL_DOWN:
        return pos + t->arg < width ? lane + t->arg : -1;
    case EMU_SHFL_UP:
        return pos >= t->arg ? lane - t->arg : -1;
    default:
        return -1;
    }
}

// Completes the collective lane `lead` of warp `first` (its first thread) waits at when every lane
// of its mask waits there too; true when it did.
static bool resolve_collective(int first, int present, int lead) {
    const Thread *t = &threads[first + lead];
    unsigned mask = t->mask;
    if (!(mask >> lead & 1)) {
        current = first + lead;
        emu_device_fault("%s with mask 0x%08x leaves out the calling lane %d", collective_name(t->kind), mask, lead);
    }
    for (int lane = 0; lane < WARP; lane++) {
        if (!(mask >> lane & 1)) continue;
        current = first + lead;
        emu_thread_idx = t->idx;
        if (lane >= present)
            emu_device_fault("%s with mask 0x%08x names lane %d of a warp of %d threads", collective_name(t->kind),
                             mask, lane, present);
        const Thread *o = &threads[first + lane];
        if (o->state == EXITED)
            emu_device_fault("%s with mask 0x%08x names lane %d, which has exited", collective_name(t->kind), mask,
                             lane);
        if (o->state != AT_COLLECTIVE) return false;
        if (o->kind != t->kind || o->mask != mask)
            emu_device_fault("lane %d waits at %s (mask 0x%08x) while lane %d waits at %s (mask 0x%08x)", lead,
                             collective_name(t->kind), mask, lane, collective_name(o->kind), o->mask);
    }
    uint64_t ballot = 0;
    for (int lane = 0; lane < WARP; lane++)
        if (mask >> lane & 1 && threads[first + lane].value) ballot |= 1u << lane;
    for (int lane = 0; lane < WARP; lane++) {
        if (!(mask >> lane & 1)) continue;
        Thread *o = &threads[first + lane];
        int src = shuffle_source(o, lane);
        if (src >= 0 && !(mask >> src & 1)) {
            current = first + lane;
            emu_thread_idx = o->idx;
            emu_device_fault("%s reads lane %d, outside its mask 0x%08x", collective_name(o->kind), src, mask);
        }
        o->result = o->kind == EMU_BALLOT ? ballot : src >= 0 ? threads[first + src].value : o->value;
        o->state = READY;
    }
    if (t->kind == EMU_SYNCWARP) emu_race_warp_synced(first, mask);
    return true;
}

static bool resolve_collectives(void) {
    bool moved = false;
    for (int first = 0; first < thread_count; first += WARP) {
        int present = thread_count - first < WARP ? thread_count - first : WARP;
        for (int lane = 0; lane < present; lane++)
            if (threads[first + lane].state == AT_COLLECTIVE && resolve_collective(first, present, lane)) moved = true;
    }
    return moved;
}

// Opens the barrier when every live thread waits at it.
static bool resolve_barrier(void) {
    int waiting = 0;
    for (int i = 0; i < thread_count; i++) {
        if (threads[i].state == READY || threads[i].state == AT_COLLECTIVE) return false;
        waiting += threads[i].state == AT_BARRIER;
    }
    if (!waiting) return false;
    for (int i = 0; i < thread_count; i++)
        if (threads[i].state == AT_BARRIER) threads[i].state = READY;
    emu_race_barrier();
    return true;
}

[[noreturn]] static void report_deadlock(void) {
    for (int i = 0; i < thread_count; i++)
        if (threads[i].state == AT_COLLECTIVE) {
            current = i;
            emu_thread_idx = threads[i].idx;
            emu_device_fault("%s waits for lanes that wait at __syncthreads", collective_name(threads[i].kind));
        }
    emu_device_fault("threads wait at a __syncthreads that the others never reach");
}

static void run_block(const dim3 &block) {
    thread_count = (int)(block.x * block.y * block.z);
    for (int i = 0; i < thread_count; i++) {
        threads[i].state = READY;
        threads[i].idx = uint3{i % block.x, i / block.x % block.y, i / (block.x * block.y)};
    }
    emu_race_block_start();
    for (;;) {
        bool live = false;
        for (int i = 0; i < thread_count; i++)
            if (threads[i].state == READY) enter(i);
        for (int i = 0; i < thread_count && !live; i++) live = threads[i].state != EXITED;
        if (!live) return;
        if (!resolve_collectives() && !resolve_barrier()) report_deadlock();
    }
}

void emu::run_grid(const char *name, const void *kernel, const LaunchConfig &cfg, ThreadBody b, const void *c,
                   size_t closure_bytes) {
    if (!emu_launch_allowed(kernel, cfg)) return;
    const dim3 &grid = cfg.grid;
    ensure_fibers();
    body = b, closure = c, kernel_name = name;
    emu_block_dim = cfg.block, emu_grid_dim = grid;
    emu_check_kernel_start(c, closure_bytes);
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                emu_block_idx = uint3{x, y, z};
                run_block(cfg.block);
            }
    emu_check_kernel_end();
    kernel_name = NULL;
}
