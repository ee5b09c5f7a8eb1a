// kernels/cuda/emu/fiber.h: cooperative fibers for the threads of an emulated block: a stack each and
// a hand-written x86-64 context switch (callee-saved registers, SSE and x87 control words), tens of
// nanoseconds where swapcontext makes a system call.
#pragma once
#include <stddef.h>

typedef struct {
    void *sp; // saved stack pointer while the fiber is switched out
} Fiber;

// n fibers, fiber i calling entry((void *)i) when first switched to (entry never returns); their
// stacks lie in one mapping, each below a guard page. Once per program.
void fibers_create(Fiber *f, int n, size_t stack_bytes, void (*entry)(void *));
// True when addr lies in the fibers' stacks.
bool fibers_own(const void *addr);
// Saves the running context into *save_sp and continues the one saved in to_sp.
extern "C" void emu_fiber_switch(void **save_sp, void *to_sp);
