#include "train/gpu_sharing.h"

#include <string.h>

int rank_gpus_shared(const RankGpu *ranks, int world, int *a, int *b) {
    for (int i = 0; i < world; i++)
        for (int j = i + 1; j < world; j++)
            if (!strcmp(ranks[i].host, ranks[j].host) && !memcmp(ranks[i].uuid, ranks[j].uuid, sizeof(ranks[i].uuid))) {
                *a = i, *b = j;
                return 1;
            }
    return 0;
}
