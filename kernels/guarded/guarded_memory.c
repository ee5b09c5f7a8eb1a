// kernels/guarded/guarded_memory.c: one mapping per buffer, protected between ops; a SIGSEGV
// handler names a fault inside a buffer before the default action ends the process.
#include "kernels/guarded/guarded_memory.h"

#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/util.h"

typedef struct {
    char *base;       // the mapping: the buffer's pages, then one page that is never accessible
    size_t body;      // bytes of the buffer's pages (the mapping is body + one page)
    const char *data; // the buffer, ending at base + body (16-byte aligned)
    size_t bytes;
    int open;
} Region;

static Region *regions;
static int region_count, region_capacity;
static size_t page_size;

static void protect(Region *r, int prot) {
    if (mprotect(r->base, r->body, prot)) die("cpu-guarded: mprotect failed on a buffer of %zu bytes", r->bytes);
}

static const char fault_text[] = "error: cpu-guarded: the host touched backend memory outside a backend op, or an op "
                                 "ran past the end of a buffer (the core dump or debugger shows where)\n";

// Names faults inside a mapping; any fault then takes the default action at the same instruction.
static void on_fault(int sig, siginfo_t *info, void *context) {
    const char *addr = info->si_addr;
    for (int i = 0; i < region_count; i++)
        if (addr >= regions[i].base && addr < regions[i].base + regions[i].body + page_size) {
            ssize_t written = write(STDERR_FILENO, fault_text, sizeof(fault_text) - 1);
            (void)written;
            break;
        }
    signal(SIGSEGV, SIG_DFL);
}

static void install_fault_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
}

void *guarded_alloc(size_t bytes) {
    if (!page_size) {
        page_size = (size_t)sysconf(_SC_PAGESIZE);
        install_fault_handler();
    }
    size_t padded = ((bytes ? bytes : 1) + 15) & ~(size_t)15;
    size_t body = (padded + page_size - 1) / page_size * page_size;
    char *base = mmap(NULL, body + page_size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) die("cpu-guarded: cannot map %zu bytes", bytes);
    if (region_count == region_capacity) {
        region_capacity = region_capacity ? 2 * region_capacity : 64;
        regions = xrealloc(regions, (size_t)region_capacity * sizeof(Region));
    }
    Region *r = &regions[region_count++];
    *r = (Region){.base = base, .body = body, .data = base + body - padded, .bytes = bytes};
    return (void *)r->data;
}

static Region *find(const void *ptr) {
    const char *p = ptr;
    for (int i = 0; i < region_count; i++)
        if (p >= regions[i].data && p <= regions[i].data + regions[i].bytes) return &regions[i];
    return NULL;
}

void guarded_release(void *ptr) {
    if (!ptr) return;
    Region *r = find(ptr);
    if (!r || r->data != ptr) die("cpu-guarded: release of a pointer that is not a backend buffer");
    munmap(r->base, r->body + page_size);
    *r = regions[--region_count];
}

const void *guarded_open(const void *ptr, const char *op) {
    if (!ptr) return ptr;
    Region *r = find(ptr);
    if (!r) die("cpu-guarded: %s was given a pointer that is not backend memory (a host buffer?)", op);
    if (!r->open) protect(r, PROT_READ | PROT_WRITE);
    r->open = 1;
    return ptr;
}

void guarded_close_all(void) {
    for (int i = 0; i < region_count; i++)
        if (regions[i].open) {
            protect(&regions[i], PROT_NONE);
            regions[i].open = 0;
        }
}
