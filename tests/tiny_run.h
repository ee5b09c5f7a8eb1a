// tests/tiny_run.h: the small training run the training tests share: a 2-block DiT of width 64 on
// 8x8x4 latents with 4 classes, batch 16, lr 1e-3, seed 3, quiet, no log.
#pragma once
#include "train/trainer.h"

static inline TrainConfig tiny_run(const LatentSet *data, long steps) {
    TrainConfig tc = {0};
    tc.model = dit_config_default();
    tc.model.depth = 2;
    tc.model.hidden = 64;
    tc.model.heads = 4;
    tc.model.patch = 2;
    tc.model.input_size = 8;
    tc.model.num_classes = 4;
    tc.data = data;
    tc.steps = steps;
    tc.batch = 16;
    tc.optim = optim_config_default();
    tc.optim.lr = 1e-3;
    tc.seed = 3;
    tc.log_every = 1000000;
    tc.log_path = "/dev/null";
    tc.keep_checkpoints = 2;
    tc.quiet = 1;
    return tc;
}
