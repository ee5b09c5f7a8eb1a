// kernels/cuda/emu/check.cc: the access checks of kernels/cuda/emu/check.h, as the entry points of
// GCC's ThreadSanitizer instrumentation. Outside a kernel (the .cu files' host code) they return at
// once.
#include "kernels/cuda/emu/check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include "kernels/cuda/emu/block.h"
#include "kernels/cuda/emu/device_memory.h"
#include "kernels/cuda/emu/fiber.h"
#include "kernels/cuda/emu/include/cuda_runtime.h"
#include "kernels/cuda/emu/runtime.h"

// The block's shared memory: every static __shared__ array and the dynamic area lie in the
// emu_shared section, whose bounds the linker provides.
extern "C" char __start_emu_shared[], __stop_emu_shared[];
__attribute__((section("emu_shared"), aligned(16))) char emu_dynamic_shared[EMU_MAX_SHARED];

enum { WORD = 4, NOBODY = 0xffff, SEVERAL = 0xfffe };

// Per word of shared memory: its last writer and reader in this block, and the barrier epoch and
// warp-sync count at that access.
typedef struct {
    uint32_t block;          // block generation of the accesses below; other: never accessed
    uint16_t writer, reader; // thread index, NOBODY or (readers) SEVERAL
    uint32_t write_barrier, read_barrier;
    uint32_t write_sync, read_sync;
} Shadow;

static std::vector<Shadow> shadow;
static uint32_t block_generation, barrier_epoch;
// The running launch (counted from 1) and block (linear index + 1), for the global-memory check.
static uint32_t launch_generation, block_tag;
// Warp syncs of the block so far, and the last one each thread took part in: two threads of a warp
// are ordered when both took part in the same __syncwarp after the earlier access.
static uint32_t sync_count, last_sync[EMU_MAX_THREADS_PER_BLOCK];
static bool in_kernel;
static const char *closure_begin, *closure_end;

void emu_check_kernel_start(const void *closure, size_t closure_bytes) {
    if (shadow.empty()) shadow.resize((size_t)(__stop_emu_shared - __start_emu_shared) / WORD + 1);
    closure_begin = (const char *)closure, closure_end = closure_begin + closure_bytes;
    launch_generation++;
    in_kernel = true;
}

void emu_check_kernel_end(void) { in_kernel = false; }

void emu_race_block_start(void) {
    block_generation++;
    block_tag = 1 + blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    barrier_epoch = 0;
    sync_count = 0;
    memset(last_sync, 0, sizeof last_sync);
}

void emu_race_barrier(void) { barrier_epoch++; }

void emu_race_warp_synced(int first_thread, unsigned mask) {
    sync_count++;
    for (int lane = 0; lane < 32; lane++)
        if (mask >> lane & 1) last_sync[first_thread + lane] = sync_count;
}

static int thread_index(void) { return (int)(threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z)); }

// Whether an earlier access by `other` at (barrier, sync) is ordered before this thread's.
static bool ordered(int self, int other, uint32_t barrier, uint32_t sync) {
    if (other == self || other == NOBODY || barrier != barrier_epoch) return true;
    return other != SEVERAL && last_sync[self] == last_sync[other] && last_sync[self] > sync;
}

static void check_shared(const char *p, size_t bytes, bool write) {
    int self = thread_index();
    size_t first = (size_t)(p - __start_emu_shared) / WORD, last = (size_t)(p + bytes - 1 - __start_emu_shared) / WORD;
    for (size_t w = first; w <= last; w++) {
        Shadow *s = &shadow[w];
        size_t offset = w * WORD;
        if (s->block != block_generation) {
            if (!write) emu_device_fault("reads shared memory at offset %zu that no thread of the block wrote", offset);
            *s = Shadow{block_generation, NOBODY, NOBODY, 0, 0, 0, 0};
        }
        if (!ordered(self, s->writer, s->write_barrier, s->write_sync))
            emu_device_fault("shared memory race: %s offset %zu, which thread %d wrote since the last barrier",
                             write ? "writes" : "reads", offset, s->writer);
        if (write && !ordered(self, s->reader, s->read_barrier, s->read_sync))
            emu_device_fault("shared memory race: writes offset %zu, which %s read since the last barrier", offset,
                             s->reader == SEVERAL ? "other threads" : "another thread");
        if (write) {
            s->writer = (uint16_t)self, s->write_barrier = barrier_epoch, s->write_sync = sync_count;
        } else {
            bool fresh = s->reader == NOBODY || s->read_barrier != barrier_epoch || s->reader == self;
            s->reader = fresh ? (uint16_t)self : (uint16_t)SEVERAL;
            s->read_barrier = barrier_epoch, s->read_sync = sync_count;
        }
    }
}

// Blocks run in no fixed order: within one launch, a word one block wrote must not be read or written
// by another (4-byte words: blocks writing neighbouring bytes of one word would be reported too).
static void check_across_blocks(DeviceAllocation *a, const char *p, size_t bytes, bool write) {
    if (!a->writers) a->writers = (WordWriter *)calloc(a->bytes / 4 + 1, sizeof(WordWriter));
    size_t first = (size_t)(p - a->base) / 4, last = (size_t)(p + bytes - 1 - a->base) / 4;
    for (size_t w = first; w <= last; w++) {
        WordWriter *ww = &a->writers[w];
        if (ww->launch == launch_generation && ww->block != block_tag)
            emu_device_fault("%s offset %zu of a device allocation of %zu bytes, which block %u wrote in the same "
                             "launch (blocks run in no fixed order)",
                             write ? "writes" : "reads", 4 * w, a->bytes, ww->block - 1);
        if (write) *ww = WordWriter{launch_generation, block_tag};
    }
}

static void check_global(const char *p, size_t bytes, bool write) {
    DeviceAllocation *a = device_memory_find(p);
    if (a && p + bytes <= a->base + a->bytes) return check_across_blocks(a, p, bytes, write);
    if (a)
        emu_device_fault("%s %zu bytes at offset %zu of a device allocation of %zu bytes", write ? "writes" : "reads",
                         bytes, (size_t)(p - a->base), a->bytes);
    const DeviceAllocation *before = device_memory_find(p - 256);
    if (before)
        emu_device_fault("%s %zu bytes at offset %zu of a device allocation of %zu bytes, past its end",
                         write ? "writes" : "reads", bytes, (size_t)(p - before->base), before->bytes);
    emu_device_fault("%s %zu bytes at %p, which is not device memory", write ? "writes" : "reads", bytes,
                     (const void *)p);
}

// The kernel's coordinates (threadIdx, ...), read through the instrumented code.
static bool is_coordinate(const char *p) {
    const void *vars[] = {&emu_thread_idx, &emu_block_idx, &emu_block_dim, &emu_grid_dim};
    for (const void *v : vars)
        if (p >= (const char *)v && p < (const char *)v + sizeof(dim3)) return true;
    return false;
}

static void check_access(const void *addr, size_t bytes, bool write) {
    const char *p = (const char *)addr;
    if (!in_kernel || !bytes || fibers_own(p) || (p >= closure_begin && p < closure_end) || is_coordinate(p)) return;
    if (p >= __start_emu_shared && p < __stop_emu_shared)
        check_shared(p, bytes, write);
    else
        check_global(p, bytes, write);
}

// The instrumentation's entry points (the ThreadSanitizer ABI GCC emits calls to).
#define ACCESS_HOOKS(N)                                                                                                \
    void __tsan_read##N(void *p) { check_access(p, N, false); }                                                        \
    void __tsan_write##N(void *p) { check_access(p, N, true); }                                                        \
    void __tsan_unaligned_read##N(void *p) { check_access(p, N, false); }                                              \
    void __tsan_unaligned_write##N(void *p) { check_access(p, N, true); }                                              \
    void __tsan_volatile_read##N(void *p) { check_access(p, N, false); }                                               \
    void __tsan_volatile_write##N(void *p) { check_access(p, N, true); }

extern "C" {
ACCESS_HOOKS(1)
ACCESS_HOOKS(2)
ACCESS_HOOKS(4)
ACCESS_HOOKS(8)
ACCESS_HOOKS(16)
void __tsan_read_range(void *p, size_t n) { check_access(p, n, false); }
void __tsan_write_range(void *p, size_t n) { check_access(p, n, true); }
void __tsan_init(void) {}
void __tsan_func_entry(void *caller) { (void)caller; }
void __tsan_func_exit(void) {}
void __tsan_vptr_update(void **p, void *v) { (void)p, (void)v; }
void __tsan_vptr_read(void **p) { (void)p; }
}
