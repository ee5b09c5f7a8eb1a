// kernels/cuda/emu/fiber.cc: the fibers of kernels/cuda/emu/fiber.h (x86-64 System V).
#include "kernels/cuda/emu/fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

extern "C" void emu_fiber_start(void);

// The switch pushes the callee-saved registers and the MXCSR / x87 control words on the old stack,
// stores its pointer, and pops the same from the new one. A new fiber's stack holds such a frame
// whose return address is emu_fiber_start, which calls r12(r13).
__asm__(".text\n"
        ".globl emu_fiber_switch\n"
        ".type emu_fiber_switch,@function\n"
        "emu_fiber_switch:\n"
        "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
        "    subq $8, %rsp\n    stmxcsr (%rsp)\n    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n"
        "    movq %rsi, %rsp\n"
        "    ldmxcsr (%rsp)\n    fldcw 4(%rsp)\n    addq $8, %rsp\n"
        "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n    popq %rbp\n"
        "    ret\n"
        ".size emu_fiber_switch, .-emu_fiber_switch\n"
        ".globl emu_fiber_start\n"
        ".hidden emu_fiber_start\n"
        ".type emu_fiber_start,@function\n"
        "emu_fiber_start:\n"
        "    movq %r13, %rdi\n    callq *%r12\n    ud2\n"
        ".size emu_fiber_start, .-emu_fiber_start\n");

static char *stacks_begin, *stacks_end;

bool fibers_own(const void *addr) { return (const char *)addr >= stacks_begin && (const char *)addr < stacks_end; }

// The initial frame, lowest address first: control words, r15, r14, r13, r12, rbx, rbp, return.
static void *initial_frame(char *top, void (*entry)(void *), void *arg) {
    uint64_t *sp = (uint64_t *)((uintptr_t)top & ~(uintptr_t)15) - 10;
    uint32_t control[2] = {0x1f80, 0x037f}; // MXCSR and x87 defaults: round to nearest, no traps
    memcpy(&sp[0], control, sizeof control);
    sp[1] = sp[2] = 0;
    sp[3] = (uint64_t)(uintptr_t)arg;   // r13
    sp[4] = (uint64_t)(uintptr_t)entry; // r12
    sp[5] = sp[6] = 0;
    sp[7] = (uint64_t)(uintptr_t)emu_fiber_start;
    return sp;
}

void fibers_create(Fiber *f, int n, size_t stack_bytes, void (*entry)(void *)) {
    const size_t page = 4096, each = stack_bytes + page;
    char *m = (char *)mmap(NULL, each * n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) abort();
    for (int i = 0; i < n; i++) {
        char *guard = m + (size_t)i * each;
        mprotect(guard, page, PROT_NONE); // an overflow faults instead of running into the next stack
        f[i].sp = initial_frame(guard + each, entry, (void *)(intptr_t)i);
    }
    stacks_begin = m, stacks_end = m + each * n;
}
