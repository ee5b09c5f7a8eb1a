// tests/test_train.c: short training runs of a tiny DiT on the synthetic set: the loss falls,
// a run is bitwise reproducible, and the thread count does not change the result.
#include <omp.h>
#include <string.h>

#include "tests/check.h"
#include "tests/tiny_run.h"

int main(void) {
    LatentSet data;
    latent_set_synthetic(&data, 256, 4, 8, 4, 3);

    TrainConfig tc = tiny_run(&data, 400);
    TrainSummary s = train_run(&tc);
    // a model that outputs zeros has mse 1 (the noise variance); the synthetic set is learnable, so
    // a working step halves the loss well within 400 steps
    check(s.mean_first > 0.4 && s.mean_last < 0.5 * s.mean_first, "train.loss_falls",
          "mean loss of the first 10%% %.4f, of the last 10%% %.4f", s.mean_first, s.mean_last);
    check(s.skipped == 0, "train.no_skipped_updates", "%ld skipped", s.skipped);

    TrainConfig shortc = tiny_run(&data, 20);
    omp_set_num_threads(2);
    TrainSummary a = train_run(&shortc);
    TrainSummary b = train_run(&shortc);
    check(memcmp(&a.last_loss, &b.last_loss, sizeof(double)) == 0, "train.bitwise_reproducible", "%.17g vs %.17g",
          a.last_loss, b.last_loss);
    omp_set_num_threads(1);
    TrainSummary c = train_run(&shortc);
    check(memcmp(&a.last_loss, &c.last_loss, sizeof(double)) == 0, "train.thread_count_independent",
          "2 threads %.17g, 1 thread %.17g", a.last_loss, c.last_loss);
    shortc.seed = 4;
    TrainSummary d = train_run(&shortc);
    check(d.last_loss != a.last_loss, "train.seed_changes_the_run", "%.6g vs %.6g", d.last_loss, a.last_loss);
    latent_set_free(&data);
    return check_exit();
}
