// kernels/backend.c: opening a backend by name (kernels/backend.h).
#include "kernels/backend.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "kernels/guarded/ops_guarded.h"
#ifdef DYDIT_CUDA
#include "kernels/cuda/cuda_ops.h"
#endif

const Backend backend_cpu = {.ops = &ops_cpu, .name = "cpu", .precision = "fp32", .host_memory = 1, .cuda_device = -1};

static int gpus_present(void) {
#ifdef DYDIT_CUDA
    return cuda_device_count() > 0;
#else
    return 0;
#endif
}

static Backend open_cpu(const char *device, const char *precision) {
    if (precision && strcmp(precision, "fp32"))
        die("--precision %s needs a CUDA device: the %s backend computes in fp32 only", precision, device);
    if (!strcmp(device, "cpu")) return backend_cpu;
    Backend b = {.ops = &ops_cpu_guarded, .name = "cpu-guarded", .precision = "fp32", .cuda_device = -1};
    return b;
}

int cuda_device_for_rank(int requested, int local_rank, int visible, char *why, int why_size) {
    if (visible < 1) {
        snprintf(why, (size_t)why_size, "no CUDA device found");
        return -1;
    }
    if (requested >= visible) {
        snprintf(why, (size_t)why_size, "--device cuda:%d: this process sees %d CUDA device%s", requested, visible,
                 visible > 1 ? "s" : "");
        return -1;
    }
    return requested >= 0 ? requested : local_rank % visible;
}

// index: the GPU asked for, or -1 for the local rank's.
static Backend open_cuda(int index, const char *precision, int local_rank) {
#ifdef DYDIT_CUDA
    char err[512];
    int device = cuda_device_for_rank(index, local_rank, cuda_device_count(), err, sizeof(err));
    if (device < 0) die("%s", err);
    if (cuda_init(device, err, sizeof(err))) die("%s", err);
    int fp32 = precision && !strcmp(precision, "fp32");
    cuda_set_precision(fp32 ? CUDA_PRECISION_FP32 : CUDA_PRECISION_BF16);
    Backend b = {.ops = &ops_cuda, .precision = fp32 ? "fp32" : "bf16", .host_memory = 0, .cuda_device = device};
    snprintf(b.name, sizeof(b.name), "cuda:%d", device);
    return b;
#else
    (void)index, (void)precision, (void)local_rank;
    die("this build has no CUDA backend (nvcc was not found at build time)");
#endif
}

Backend backend_open(const char *device, const char *precision, int local_rank) {
    if (precision && strcmp(precision, "bf16") && strcmp(precision, "fp32"))
        die("--precision must be bf16 or fp32 (got '%s')", precision);
    if (!strcmp(device, "auto")) device = gpus_present() ? "cuda" : "cpu";
    if (!strcmp(device, "cpu") || !strcmp(device, "cpu-guarded")) return open_cpu(device, precision);
    if (!strcmp(device, "cuda")) return open_cuda(-1, precision, local_rank);
    // The emulated device is CUDA to the backend: only the program built for it (make
    // test-cuda-emulated: build-emu/dydit) has it.
    if (!strcmp(device, "cuda-emulated")) {
#ifdef DYDIT_CUDA_EMULATED
        return open_cuda(-1, precision, local_rank);
#else
        die("--device cuda-emulated needs the emulated build (make test-cuda-emulated builds build-emu/dydit)");
#endif
    }
    long index;
    if (starts_with(device, "cuda:") && !parse_long(device + 5, &index) && index >= 0 && index < 1 << 16)
        return open_cuda((int)index, precision, local_rank);
    die("unknown --device '%s' (auto, cpu, cpu-guarded, cuda, cuda:N or cuda-emulated)", device);
}
