// kernels/cuda/emu/include/cuda_runtime_api.h: the runtime API alone, as in CUDA (host code in C).
#pragma once
#include "cuda_runtime.h"
