// kernels/cuda/memory.cu: the CUDA backend's state (device, stream, cuBLAS/cuBLASLt handles,
// workspace, scratch, precision) and its memory ops. Every transfer and kernel goes on one
// non-blocking stream, so ops run in call order; upload and download wait for their copy, so the
// host buffer may be reused as soon as they return.
#include <stdio.h>

#include "kernels/cuda/cuda_common.cuh"

static cudaStream_t stream;
static cublasHandle_t cublas;
static cublasLtHandle_t cublaslt;
static void *lt_workspace;
static void *scratch;
static size_t scratch_bytes;
static CudaPrecision precision = CUDA_PRECISION_BF16;

cudaStream_t cuda_stream(void) { return stream; }
cublasHandle_t cuda_cublas(void) { return cublas; }
cublasLtHandle_t cuda_cublaslt(void) { return cublaslt; }
void *cuda_lt_workspace(void) { return lt_workspace; }

void cuda_set_precision(CudaPrecision p) { precision = p; }
CudaPrecision cuda_get_precision(void) { return precision; }

int cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the error so that later calls do not report it
        return 0;
    }
    return n;
}

// Never launched: asking for its attributes tells whether this build has code the device runs.
__global__ void arch_probe_kernel(void) {}

int cuda_init(int device, char *err, int err_size) {
    cudaError_t e;
    if ((e = cudaSetDevice(device)) != cudaSuccess) {
        snprintf(err, err_size, "CUDA device %d: %s", device, cudaGetErrorString(e));
        cudaGetLastError();
        return -1;
    }
    cudaFuncAttributes attr;
    if ((e = cudaFuncGetAttributes(&attr, arch_probe_kernel)) != cudaSuccess) {
        cudaDeviceProp prop;
        int major = 0, minor = 0;
        if (cudaGetDeviceProperties(&prop, device) == cudaSuccess) major = prop.major, minor = prop.minor;
        snprintf(err, err_size,
                 "CUDA device %d (sm_%d%d) cannot run this build's kernels (rebuild with CUDA_ARCH=sm_%d%d): %s",
                 device, major, minor, major, minor, cudaGetErrorString(e));
        cudaGetLastError();
        return -1;
    }
    if ((e = cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)) != cudaSuccess ||
        (e = cudaMalloc(&lt_workspace, CUDA_LT_WORKSPACE)) != cudaSuccess) {
        snprintf(err, err_size, "CUDA device %d: %s", device, cudaGetErrorString(e));
        cudaGetLastError();
        return -1;
    }
    cublasStatus_t s;
    // cuBLAS shares the cuBLASLt workspace: both only use it from kernels on the one stream.
    if ((s = cublasCreate(&cublas)) != CUBLAS_STATUS_SUCCESS || (s = cublasSetStream(cublas, stream)) ||
        (s = cublasSetWorkspace(cublas, lt_workspace, CUDA_LT_WORKSPACE)) ||
        (s = cublasSetMathMode(cublas, CUBLAS_DEFAULT_MATH)) || (s = cublasLtCreate(&cublaslt))) {
        snprintf(err, err_size, "cuBLAS on CUDA device %d: %s", device, cublasGetStatusString(s));
        return -1;
    }
    return 0;
}

void *cuda_alloc(size_t bytes) {
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, bytes ? bytes : 1);
    if (e != cudaSuccess) die("CUDA: cannot allocate %zu bytes of device memory: %s", bytes, cudaGetErrorString(e));
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, stream));
    return p;
}

// Queued work that still uses ptr finishes first.
void cuda_release(void *ptr) {
    if (!ptr) return;
    CUDA_CHECK(cudaStreamSynchronize(stream));
    CUDA_CHECK(cudaFree(ptr));
}

void cuda_upload(void *dst, const void *host_src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, host_src, bytes, cudaMemcpyHostToDevice, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
}

void cuda_download(void *host_dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream));
    CUDA_CHECK(cudaStreamSynchronize(stream));
}

// Like memmove: overlapping ranges (which cudaMemcpy does not allow) go through the scratch buffer.
void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return;
    const char *d = (const char *)dst, *s = (const char *)src;
    if (d < s + bytes && s < d + bytes) {
        void *tmp = cuda_scratch(bytes);
        CUDA_CHECK(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, stream));
        src = tmp;
    }
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
}

void cuda_zero(void *dst, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemsetAsync(dst, 0, bytes, stream));
}

void cuda_synchronize(void) { CUDA_CHECK(cudaStreamSynchronize(stream)); }

// Grows by at least a quarter so that slowly growing requests do not reallocate every time.
void *cuda_scratch(size_t bytes) {
    if (bytes <= scratch_bytes) return scratch;
    size_t grown = scratch_bytes + scratch_bytes / 4;
    size_t want = bytes > grown ? bytes : grown;
    CUDA_CHECK(cudaStreamSynchronize(stream)); // queued work may still use the old buffer
    if (scratch) CUDA_CHECK(cudaFree(scratch));
    scratch = NULL, scratch_bytes = 0;
    cudaError_t e = cudaMalloc(&scratch, want);
    if (e != cudaSuccess) die("CUDA: cannot allocate %zu bytes of scratch memory: %s", want, cudaGetErrorString(e));
    scratch_bytes = want;
    return scratch;
}
