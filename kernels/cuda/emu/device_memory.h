// kernels/cuda/emu/device_memory.h: the emulated device's memory: host allocations, 256-byte
// aligned like cudaMalloc's, each followed by a red zone no other allocation uses, and a table of
// them for the runtime's argument checks and the kernels' bounds checks.
#pragma once
#include <stddef.h>
#include <stdint.h>

// Per 4-byte word of an allocation: the kernel launch and block that last wrote it (block + 1; 0:
// not written in that launch), for the check of accesses across blocks (kernels/cuda/emu/check.h).
typedef struct {
    uint32_t launch, block;
} WordWriter;

typedef struct {
    char *base;
    size_t bytes;
    WordWriter *writers; // made at the first check; NULL before
} DeviceAllocation;

void *device_memory_alloc(size_t bytes);
// 0, or -1 when ptr is not the start of a live allocation.
int device_memory_free(void *ptr);
// The allocation holding addr, or NULL.
DeviceAllocation *device_memory_find(const void *addr);
// True when [addr, addr + bytes) lies inside one allocation.
bool device_memory_holds(const void *addr, size_t bytes);
