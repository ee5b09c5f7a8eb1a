// kernels/guarded/guarded_memory.h: the buffers of the guarded CPU backend. Each buffer is its own
// mapping, kept inaccessible (PROT_NONE) except while a backend op works on it, and it ends flush
// against a page that is never accessible. Host code that reads or writes backend memory directly
// (instead of through upload/download) faults at that instruction, as it would on a GPU, and so
// does an op that runs past the end of a buffer.
//
// Ops are called from one thread; the OpenMP threads inside a CPU op may touch its open buffers.
#pragma once
#include <stddef.h>

// A zero-filled buffer of `bytes`, inaccessible until opened.
void *guarded_alloc(size_t bytes);
void guarded_release(void *ptr);
// Makes the buffer holding ptr accessible until guarded_close_all() and returns ptr; NULL passes
// through. Exits with a one-line error when ptr lies in no live buffer of this backend: a host
// pointer handed to an op, which would fail on a device. `op` names the caller in that message.
const void *guarded_open(const void *ptr, const char *op);
// Makes every opened buffer inaccessible again.
void guarded_close_all(void);
