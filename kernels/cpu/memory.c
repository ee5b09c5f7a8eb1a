// kernels/cpu/memory.c: on the CPU backend, "device" memory is ordinary host memory.
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "kernels/cpu/cpu_ops.h"

void *cpu_alloc(size_t bytes) { return xcalloc(1, bytes); }
void cpu_release(void *ptr) { free(ptr); }
void cpu_upload(void *dst, const void *host_src, size_t bytes) { memcpy(dst, host_src, bytes); }
void cpu_download(void *host_dst, const void *src, size_t bytes) { memcpy(host_dst, src, bytes); }
void cpu_copy(void *dst, const void *src, size_t bytes) { memmove(dst, src, bytes); }
void cpu_zero(void *dst, size_t bytes) { memset(dst, 0, bytes); }
void cpu_synchronize(void) {}
