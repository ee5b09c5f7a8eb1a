// train/gpu_sharing.h: one GPU per rank, checked by what the GPUs are rather than by how they are
// numbered. A launcher may show every process all GPUs of its machine (each then takes its local
// rank's) or one each (Slurm's --gpus-per-task=1: every process sees its own as device 0), so the
// indices say nothing about sharing; the GPUs' UUIDs do.
#pragma once

typedef struct {
    char host[64];
    unsigned char uuid[16]; // the GPU's UUID (cudaDeviceProp.uuid)
} RankGpu;

// The first two ranks (a < b) of `world` that use the same GPU of the same machine: 1 and a, b;
// 0 when every rank has its own.
int rank_gpus_shared(const RankGpu *ranks, int world, int *a, int *b);
