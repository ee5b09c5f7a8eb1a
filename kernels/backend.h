// kernels/backend.h: the backend a run computes on, chosen at run time by name (the --device and
// --precision options of every command):
//   cpu          the fp32 reference (OpenMP + OpenBLAS);
//   cpu-guarded  the same arithmetic with backend memory closed to the host outside the ops: a
//                checking device, slow, for proving host code never touches device buffers;
//   cuda, cuda:N the CUDA backend on GPU N (plain cuda: the process's local rank modulo the GPUs);
//   auto         cuda when this build has the CUDA backend and a GPU is present, else cpu.
// Precision (CUDA only): bf16 (the default on a GPU) rounds the inputs of dense products to bf16
// with fp32 accumulation; fp32 computes everything in fp32. The CPU backends compute in fp32 only.
#pragma once
#include "kernels/ops.h"

typedef struct {
    const Ops *ops;
    char name[32];         // "cpu", "cpu-guarded", "cuda:1": the device in use
    const char *precision; // "fp32" or "bf16"
    int host_memory;       // 1: buffers are plain host memory the host may address directly (cpu)
    int cuda_device;       // the GPU in use, or -1
} Backend;

// The CPU reference backend, opened.
extern const Backend backend_cpu;

// Opens `device` at `precision` (NULL: the device's default). local_rank: this process's rank
// among the job's processes on its machine (0 for a single process). Exits with a one-line error
// for an unknown name, a precision the device lacks, a build without CUDA asked for cuda, or a
// machine without a GPU.
Backend backend_open(const char *device, const char *precision, int local_rank);

// The GPU a process takes among the `visible` ones it sees: `requested` (cuda:N) when >= 0, else
// its local rank's when it sees one per local rank, modulo the count otherwise (a launcher that
// gives each process one GPU, as Slurm's --gpus-per-task=1 does through CUDA_VISIBLE_DEVICES, makes
// every process see only its own, index 0). Whether two processes then share a physical GPU is
// for the job to check (train/gpu_sharing.h). -1 with a reason in why when there is none to take.
int cuda_device_for_rank(int requested, int local_rank, int visible, char *why, int why_size);
