// kernels/cuda/emu/runtime.cc: the CUDA runtime API of the emulated device: a machine of
// EMU_DEVICES H100s, so that every rank of a local mpirun job has its own (each process emulates
// the one it binds). CUDA_VISIBLE_DEVICES narrows what a process sees as the real runtime does
// (a list of the machine's indices; the first visible one is device 0), as a launcher that gives
// each process its own GPU sets it; the UUID tells the machine's devices apart.
// Streams and events exist to be checked: work runs when it is queued. Pointer arguments are
// checked against the device allocations as the real runtime checks them, so that host code which
// hands the runtime a host pointer for a device one fails here as it would on a GPU.
#include "kernels/cuda/emu/runtime.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <map>
#include <set>

#include "kernels/cuda/emu/device_memory.h"

struct EmuStream {
    unsigned flags;
};
struct EmuEvent {
    double seconds; // when it was recorded; < 0 before
};

static cudaError_t last_error = cudaSuccess;
static int device_chosen = 0;
static std::set<cudaStream_t> streams;
static std::set<cudaEvent_t> events;
static std::map<const void *, int> max_dynamic_shared; // kernel -> opted-in bytes

cudaError_t emu_set_error(cudaError_t e) {
    if (e != cudaSuccess && last_error == cudaSuccess) last_error = e;
    return e;
}

extern "C" {

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
    case cudaSuccess:
        return "cudaSuccess";
    case cudaErrorInvalidValue:
        return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation:
        return "cudaErrorMemoryAllocation";
    case cudaErrorInvalidConfiguration:
        return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidDeviceFunction:
        return "cudaErrorInvalidDeviceFunction";
    case cudaErrorNoDevice:
        return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice:
        return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle:
        return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady:
        return "cudaErrorNotReady";
    case cudaErrorIllegalAddress:
        return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources:
        return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchFailure:
        return "cudaErrorLaunchFailure";
    }
    return "unrecognized error code";
}

// The real runtime's wording for the errors the emulation raises.
const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess:
        return "no error";
    case cudaErrorInvalidValue:
        return "invalid argument";
    case cudaErrorMemoryAllocation:
        return "out of memory";
    case cudaErrorInvalidConfiguration:
        return "invalid configuration argument";
    case cudaErrorInvalidDeviceFunction:
        return "invalid device function";
    case cudaErrorNoDevice:
        return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice:
        return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle:
        return "invalid resource handle";
    case cudaErrorNotReady:
        return "device not ready";
    case cudaErrorIllegalAddress:
        return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources:
        return "too many resources requested for launch";
    case cudaErrorLaunchFailure:
        return "unspecified launch failure";
    }
    return "unrecognized error code";
}

cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return last_error; }

// The machine's index of each device this process sees (CUDA_VISIBLE_DEVICES, read once);
// returns their count.
static int visible_devices(const int **machine_index) {
    static int index[EMU_DEVICES], count = -1;
    if (count < 0) {
        const char *list = getenv("CUDA_VISIBLE_DEVICES");
        count = 0;
        if (!list) {
            for (; count < EMU_DEVICES; count++) index[count] = count;
        } else {
            // as the runtime does: indices up to the first one that is not a device of the machine
            for (const char *p = list; *p && count < EMU_DEVICES;) {
                char *end;
                long i = strtol(p, &end, 10);
                if (end == p || i < 0 || i >= EMU_DEVICES) break;
                index[count++] = (int)i;
                p = *end == ',' ? end + 1 : end;
                if (*end != ',') break;
            }
        }
    }
    *machine_index = index;
    return count;
}

cudaError_t cudaGetDeviceCount(int *count) {
    const int *index;
    *count = visible_devices(&index);
    return cudaSuccess;
}

static int device_visible(int device) {
    const int *index;
    return device >= 0 && device < visible_devices(&index);
}

cudaError_t cudaSetDevice(int device) {
    if (!device_visible(device)) return emu_set_error(cudaErrorInvalidDevice);
    device_chosen = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    *device = device_chosen;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp *prop, int device) {
    if (!device_visible(device)) return emu_set_error(cudaErrorInvalidDevice);
    const int *index;
    visible_devices(&index);
    memset(prop, 0, sizeof *prop);
    memcpy(prop->uuid.bytes, "emulated-H100-", 14);
    prop->uuid.bytes[15] = (char)index[device]; // the machine's device, whatever this process calls it
    strcpy(prop->name, "NVIDIA H100 80GB HBM3 (emulated)");
    prop->totalGlobalMem = (size_t)80 << 30;
    prop->sharedMemPerBlock = EMU_DEFAULT_SHARED;
    prop->sharedMemPerBlockOptin = EMU_MAX_SHARED;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->maxThreadsPerBlock = EMU_MAX_THREADS_PER_BLOCK;
    prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024, prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 0x7fffffff, prop->maxGridSize[1] = prop->maxGridSize[2] = EMU_MAX_GRID_YZ;
    prop->major = 9, prop->minor = 0;
    prop->multiProcessorCount = 132;
    prop->maxThreadsPerMultiProcessor = 2048;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    *ptr = device_memory_alloc(bytes);
    return *ptr ? cudaSuccess : emu_set_error(cudaErrorMemoryAllocation);
}

cudaError_t cudaFree(void *ptr) {
    if (!ptr) return cudaSuccess;
    return device_memory_free(ptr) ? emu_set_error(cudaErrorInvalidValue) : cudaSuccess;
}

static bool stream_valid(cudaStream_t s) { return !s || streams.count(s); }

// Whether [p, p + bytes) is device memory where the copy's kind says it is, host memory where it
// says host (cudaMemcpyDefault: either).
static bool side_valid(const void *p, size_t bytes, bool device, cudaMemcpyKind kind) {
    if (kind == cudaMemcpyDefault) return true;
    return device ? device_memory_holds(p, bytes) : !device_memory_find(p);
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
    if (!stream_valid(stream)) return emu_set_error(cudaErrorInvalidResourceHandle);
    if (!bytes) return cudaSuccess;
    bool src_device = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    bool dst_device = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    if (kind > cudaMemcpyDefault || !side_valid(src, bytes, src_device, kind) ||
        !side_valid(dst, bytes, dst_device, kind))
        return emu_set_error(cudaErrorInvalidValue);
    const char *s = (const char *)src, *d = (const char *)dst;
    if (d < s + bytes && s < d + bytes && d != s) return emu_set_error(cudaErrorInvalidValue); // overlap
    memcpy(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    return cudaMemcpyAsync(dst, src, bytes, kind, 0);
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t stream) {
    if (!stream_valid(stream)) return emu_set_error(cudaErrorInvalidResourceHandle);
    if (!bytes) return cudaSuccess;
    if (!device_memory_holds(dst, bytes)) return emu_set_error(cudaErrorInvalidValue);
    memset(dst, value, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemset(void *dst, int value, size_t bytes) { return cudaMemsetAsync(dst, value, bytes, 0); }

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned flags) {
    *stream = new EmuStream{flags};
    streams.insert(*stream);
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *stream) { return cudaStreamCreateWithFlags(stream, cudaStreamDefault); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    if (!stream || !streams.erase(stream)) return emu_set_error(cudaErrorInvalidResourceHandle);
    delete stream;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    return stream_valid(stream) ? cudaSuccess : emu_set_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamQuery(cudaStream_t stream) { return cudaStreamSynchronize(stream); }

static bool event_valid(cudaEvent_t e) { return events.count(e) != 0; }

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags) {
    (void)flags;
    if (!stream_valid(stream) || !event_valid(event)) return emu_set_error(cudaErrorInvalidResourceHandle);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) {
    *event = new EmuEvent{-1};
    events.insert(*event);
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    if (!events.erase(event)) return emu_set_error(cudaErrorInvalidResourceHandle);
    delete event;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    if (!event_valid(event) || !stream_valid(stream)) return emu_set_error(cudaErrorInvalidResourceHandle);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    event->seconds = ts.tv_sec + 1e-9 * ts.tv_nsec;
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    return event_valid(event) ? cudaSuccess : emu_set_error(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    if (!event_valid(start) || !event_valid(end)) return emu_set_error(cudaErrorInvalidResourceHandle);
    if (start->seconds < 0 || end->seconds < 0) return emu_set_error(cudaErrorInvalidValue);
    *ms = (float)(1e3 * (end->seconds - start->seconds));
    return cudaSuccess;
}

cudaError_t emu_func_get_attributes(cudaFuncAttributes *attr, const void *func) {
    if (!func) return emu_set_error(cudaErrorInvalidDeviceFunction);
    memset(attr, 0, sizeof *attr);
    attr->maxThreadsPerBlock = EMU_MAX_THREADS_PER_BLOCK;
    attr->ptxVersion = attr->binaryVersion = 90;
    auto it = max_dynamic_shared.find(func);
    attr->maxDynamicSharedSizeBytes = it == max_dynamic_shared.end() ? EMU_DEFAULT_SHARED : it->second;
    return cudaSuccess;
}

cudaError_t emu_func_set_attribute(const void *func, cudaFuncAttribute attr, int value) {
    if (!func) return emu_set_error(cudaErrorInvalidDeviceFunction);
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || value > EMU_MAX_SHARED) return emu_set_error(cudaErrorInvalidValue);
        max_dynamic_shared[func] = value;
    }
    return cudaSuccess;
}

} // extern "C"

// The H100's launch limits: at most 1024 threads a block (x, y <= 1024, z <= 64), grid y and z at
// most 65535, dynamic shared memory within the kernel's limit (48 KiB unless raised).
bool emu_launch_allowed(const void *kernel, const emu::LaunchConfig &cfg) {
    const dim3 &g = cfg.grid, &b = cfg.block;
    if (!stream_valid(cfg.stream)) return emu_set_error(cudaErrorInvalidResourceHandle), false;
    bool block_ok = b.x && b.y && b.z && b.x <= 1024 && b.y <= 1024 && b.z <= 64 &&
                    (size_t)b.x * b.y * b.z <= EMU_MAX_THREADS_PER_BLOCK;
    bool grid_ok = g.x && g.y && g.z && g.x <= 0x7fffffffu && g.y <= EMU_MAX_GRID_YZ && g.z <= EMU_MAX_GRID_YZ;
    if (!block_ok || !grid_ok) return emu_set_error(cudaErrorInvalidConfiguration), false;
    auto it = kernel ? max_dynamic_shared.find(kernel) : max_dynamic_shared.end();
    size_t limit = it == max_dynamic_shared.end() ? (size_t)EMU_DEFAULT_SHARED : (size_t)it->second;
    if (cfg.shared > limit) return emu_set_error(cudaErrorInvalidValue), false;
    return true;
}
