// kernels/cuda/emu/check.h: the checks of kernel memory accesses on the emulated device
// (kernels/cuda/emu/check.cc). The kernel sources are built with GCC's -fsanitize=thread
// instrumentation, whose calls (__tsan_read4, __tsan_write16, ...) land here instead of in the
// ThreadSanitizer runtime: every load and store of a kernel is checked.
//  - Shared memory: a racecheck in the manner of compute-sanitizer's. A thread that reads or writes
//    a word another thread wrote, or writes a word another thread read, since the last barrier both
//    passed (__syncthreads, or a __syncwarp whose mask names both) is reported, and so is a read of
//    a word no thread of the block has written.
//  - Global memory: the access must lie inside one device allocation (cudaMalloc); one that runs
//    past an allocation's end or touches host memory is reported. Allocations are kept apart by
//    unused red zones, so running off the end never lands in a neighbour. Within one launch, a
//    word written by one block and read or written by another is reported (blocks run in no
//    fixed order on a GPU); reads before another block's write are not seen.
// A kernel's own stack, its arguments and its coordinates (threadIdx, ...) are always accessible.
#pragma once
#include <stddef.h>

// A kernel starts; the launch's arguments (closure) are readable by every thread.
void emu_check_kernel_start(const void *closure, size_t closure_bytes);
void emu_check_kernel_end(void);
void emu_race_block_start(void);
void emu_race_barrier(void);
void emu_race_warp_synced(int first_thread, unsigned mask);
