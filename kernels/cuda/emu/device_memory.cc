// kernels/cuda/emu/device_memory.cc: kernels/cuda/emu/device_memory.h over a sorted table.
#include "kernels/cuda/emu/device_memory.h"

#include <stdlib.h>
#include <string.h>

#include <map>

enum { ALIGNMENT = 256, RED_ZONE = 256 };

static std::map<const char *, DeviceAllocation> allocations; // by base address
static DeviceAllocation *last_found;                         // most lookups hit the same buffer again

void *device_memory_alloc(size_t bytes) {
    void *p = NULL;
    size_t rounded = (bytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
    if (posix_memalign(&p, ALIGNMENT, rounded + RED_ZONE)) return NULL;
    memset(p, 0xa5, rounded + RED_ZONE); // like fresh device memory: not zero, not meaningful
    allocations[(const char *)p] = DeviceAllocation{(char *)p, bytes, NULL};
    return p;
}

int device_memory_free(void *ptr) {
    auto it = allocations.find((const char *)ptr);
    if (it == allocations.end()) return -1;
    if (last_found == &it->second) last_found = NULL;
    free(it->second.writers);
    allocations.erase(it);
    free(ptr);
    return 0;
}

static bool inside(const DeviceAllocation *a, const char *p) { return p >= a->base && p < a->base + a->bytes; }

DeviceAllocation *device_memory_find(const void *addr) {
    const char *p = (const char *)addr;
    if (last_found && inside(last_found, p)) return last_found;
    auto it = allocations.upper_bound(p);
    if (it == allocations.begin()) return NULL;
    --it;
    if (!inside(&it->second, p)) return NULL;
    return last_found = &it->second;
}

bool device_memory_holds(const void *addr, size_t bytes) {
    const DeviceAllocation *a = device_memory_find(addr);
    return a && (const char *)addr + bytes <= a->base + a->bytes;
}
