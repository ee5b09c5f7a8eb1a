// kernels/cuda/emu/nccl.cc: NCCL on the emulated device (kernels/cuda/emu/include/nccl.h). A
// communicator is the MPI ranks that created it with the same unique id (MPI_Comm_split of the
// world); its collectives are MPI's, on device buffers (host memory here), checked to be device
// memory of the right length as NCCL's kernels would need them. Built only with MPI.
#ifdef DYDIT_MPI
#define OMPI_SKIP_MPICXX 1 // the C interface only
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <vector>

#include "kernels/cuda/emu/device_memory.h"
#include "kernels/cuda/emu/include/nccl.h"

struct EmuNcclComm {
    MPI_Comm mpi;
    int rank, size;
    char last_error[256];
};

static const char ID_TAG[] = "emulated-nccl";

extern "C" {

ncclResult_t ncclGetVersion(int *version) {
    *version = 22700;
    return ncclSuccess;
}

// A fresh id: the tag, then the creating process's id and the time, so that two communicators
// created one after another are told apart.
ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    static uint64_t serial;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "%s %d %lld.%09ld %llu", ID_TAG, (int)getpid(), (long long)ts.tv_sec,
             ts.tv_nsec, (unsigned long long)++serial);
    return ncclSuccess;
}

static int id_color(const ncclUniqueId *id) {
    uint32_t h = 2166136261u; // FNV-1a
    for (size_t i = 0; i < sizeof id->internal; i++) h = (h ^ (unsigned char)id->internal[i]) * 16777619u;
    return (int)(h & 0x3fffffff);
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (!initialized || strncmp(id.internal, ID_TAG, sizeof ID_TAG - 1)) return ncclInvalidArgument;
    if (nranks < 1 || rank < 0 || rank >= nranks) return ncclInvalidArgument;
    int world_rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    EmuNcclComm *c = new EmuNcclComm();
    MPI_Comm_split(MPI_COMM_WORLD, id_color(&id), rank, &c->mpi);
    MPI_Comm_rank(c->mpi, &c->rank);
    MPI_Comm_size(c->mpi, &c->size);
    if (c->size != nranks || c->rank != rank) {
        MPI_Comm_free(&c->mpi);
        delete c;
        return ncclInvalidUsage;
    }
    *comm = c;
    return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) { return comm ? ncclSuccess : ncclInvalidArgument; }

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
    if (!comm) return ncclInvalidArgument;
    MPI_Comm_free(&comm->mpi);
    delete comm;
    return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
    if (comm) MPI_Abort(comm->mpi, 1);
    return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *async_error) {
    *async_error = ncclSuccess;
    return comm ? ncclSuccess : ncclInvalidArgument;
}

const char *ncclGetErrorString(ncclResult_t result) {
    switch (result) {
    case ncclSuccess:
        return "no error";
    case ncclUnhandledCudaError:
        return "unhandled cuda error";
    case ncclSystemError:
        return "unhandled system error";
    case ncclInternalError:
        return "internal error";
    case ncclInvalidArgument:
        return "invalid argument";
    case ncclInvalidUsage:
        return "invalid usage";
    case ncclRemoteError:
        return "remote process exited or there was a network error";
    case ncclInProgress:
        return "NCCL operation in progress";
    }
    return "unknown result code";
}

const char *ncclGetLastError(ncclComm_t comm) { return comm ? comm->last_error : ""; }

} // extern "C"

// ncclSuccess when the call's buffers are device memory of the lengths it moves.
static ncclResult_t check_buffers(ncclComm_t comm, const void *send, size_t send_floats, const void *recv,
                                  size_t recv_floats, ncclDataType_t type, const char *what) {
    if (!comm) return ncclInvalidArgument;
    if (type != ncclFloat32) {
        snprintf(comm->last_error, sizeof comm->last_error, "%s: only float32 is emulated", what);
        return ncclInvalidArgument;
    }
    if ((send_floats && !device_memory_holds(send, send_floats * 4)) ||
        (recv_floats && !device_memory_holds(recv, recv_floats * 4))) {
        snprintf(comm->last_error, sizeof comm->last_error, "%s: a buffer is not device memory of %zu and %zu floats",
                 what, send_floats, recv_floats);
        return ncclInvalidArgument;
    }
    return ncclSuccess;
}

static bool overlap(const void *a, size_t a_bytes, const void *b, size_t b_bytes) {
    const char *x = (const char *)a, *y = (const char *)b;
    return x < y + b_bytes && y < x + a_bytes;
}

extern "C" {

ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t type, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
    (void)stream;
    ncclResult_t r = check_buffers(comm, send, count, recv, count, type, "ncclAllReduce");
    if (r != ncclSuccess || op != ncclSum) return r != ncclSuccess ? r : ncclInvalidArgument;
    MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)count, MPI_FLOAT, MPI_SUM, comm->mpi);
    return ncclSuccess;
}

ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t recv_count, ncclDataType_t type, ncclRedOp_t op,
                               ncclComm_t comm, cudaStream_t stream) {
    (void)stream;
    size_t total = recv_count * (size_t)(comm ? comm->size : 1);
    ncclResult_t r = check_buffers(comm, send, total, recv, recv_count, type, "ncclReduceScatter");
    if (r != ncclSuccess || op != ncclSum) return r != ncclSuccess ? r : ncclInvalidArgument;
    std::vector<float> copy; // NCCL allows recv inside send (its own piece); MPI does not
    if (overlap(send, total * 4, recv, recv_count * 4)) {
        copy.assign((const float *)send, (const float *)send + total);
        send = copy.data();
    }
    MPI_Reduce_scatter_block(send, recv, (int)recv_count, MPI_FLOAT, MPI_SUM, comm->mpi);
    return ncclSuccess;
}

ncclResult_t ncclAllGather(const void *send, void *recv, size_t send_count, ncclDataType_t type, ncclComm_t comm,
                           cudaStream_t stream) {
    (void)stream;
    size_t total = send_count * (size_t)(comm ? comm->size : 1);
    ncclResult_t r = check_buffers(comm, send, send_count, recv, total, type, "ncclAllGather");
    if (r != ncclSuccess) return r;
    bool in_place = send == (const float *)recv + (size_t)comm->rank * send_count;
    MPI_Allgather(in_place ? MPI_IN_PLACE : send, (int)send_count, MPI_FLOAT, recv, (int)send_count, MPI_FLOAT,
                  comm->mpi);
    return ncclSuccess;
}

} // extern "C"
#endif
