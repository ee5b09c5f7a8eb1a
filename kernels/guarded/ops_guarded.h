// kernels/guarded/ops_guarded.h: the guarded CPU backend (a checking device, not a fast one).
#pragma once
#include "kernels/ops.h"

// ops_cpu's arithmetic on buffers the host cannot touch outside the ops (ops_guarded.c).
extern const Ops ops_cpu_guarded;
