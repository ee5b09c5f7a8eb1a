// tests/test_gpu_sharing.c: which GPU a rank takes and the check that no two ranks share one, with
// faked device counts and UUIDs: a launcher that shows every process all GPUs of its machine, one
// that shows each process only its own (Slurm's --gpus-per-task=1), too few GPUs, and cuda:N.
#include <string.h>

#include "kernels/backend.h"
#include "tests/check.h"
#include "train/gpu_sharing.h"

// The GPU UUID of machine device `index`, as a fake: byte 15 holds the index.
static void fake_rank(RankGpu *r, const char *host, int machine_device) {
    memset(r, 0, sizeof(*r));
    snprintf(r->host, sizeof(r->host), "%s", host);
    r->uuid[15] = (unsigned char)machine_device;
}

int main(void) {
    char why[256];
    // 4 ranks on a machine whose 4 GPUs every rank sees: each its local rank's
    int all_own = 1;
    for (int local = 0; local < 4; local++) all_own &= cuda_device_for_rank(-1, local, 4, why, sizeof(why)) == local;
    check(all_own, "gpu.all_visible_local_rank", "%s", "local ranks 0-3 take devices 0-3");
    // Slurm, --gpus-per-task=1: each rank sees one GPU, its own, as device 0
    int slurm = 1;
    for (int local = 0; local < 4; local++) slurm &= cuda_device_for_rank(-1, local, 1, why, sizeof(why)) == 0;
    check(slurm, "gpu.one_visible_each", "%s", "every local rank takes device 0 of the one it sees");
    check(cuda_device_for_rank(2, 0, 4, why, sizeof(why)) == 2, "gpu.requested_index", "%s", "cuda:2");
    check(cuda_device_for_rank(4, 0, 4, why, sizeof(why)) < 0 && strstr(why, "cuda:4") && strstr(why, "4 CUDA devices"),
          "gpu.requested_index_missing", "%s", why);
    check(cuda_device_for_rank(-1, 0, 0, why, sizeof(why)) < 0 && strstr(why, "no CUDA device"), "gpu.none_visible",
          "%s", why);

    RankGpu ranks[6];
    int a = -1, b = -1;
    // Slurm on two machines: every rank's device 0 is another GPU of its machine
    for (int r = 0; r < 4; r++) fake_rank(&ranks[r], r < 2 ? "node1" : "node2", r % 2);
    check(!rank_gpus_shared(ranks, 4, &a, &b), "gpu.own_gpus_accepted", "%s", "2 machines x 2 ranks, one GPU each");
    // the same GPU numbers on two machines are two GPUs
    fake_rank(&ranks[0], "node1", 0), fake_rank(&ranks[1], "node2", 0);
    check(!rank_gpus_shared(ranks, 2, &a, &b), "gpu.same_index_other_machine", "%s", "");
    // 6 ranks on a machine of 4 GPUs that every rank sees: local ranks 4 and 5 wrap onto devices 0 and 1
    for (int r = 0; r < 6; r++) {
        char why_r[256];
        fake_rank(&ranks[r], "node1", cuda_device_for_rank(-1, r, 4, why_r, sizeof(why_r)));
    }
    int shared = rank_gpus_shared(ranks, 6, &a, &b);
    check(shared && a == 0 && b == 4, "gpu.shared_gpu_found", "ranks %d and %d", a, b);
    return check_exit();
}
