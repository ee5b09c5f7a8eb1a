"""Wall time of the same DiT training step in PyTorch (tests/ref/dit_ref.py in float32, autograd,
torch.optim.AdamW, EMA) with a given thread count. Prints one JSON line.

    python3 bench/torch_train_step.py MODEL INPUT_SIZE BATCH STEPS [WARMUP] [THREADS]
"""
import json
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import dit_ref  # noqa: E402
import make_case  # noqa: E402

PRESETS = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


def config(model, input_size):
    size, patch = model.removeprefix("DiT-").split("/")
    depth, hidden, heads = PRESETS[size]
    return dit_ref.DitConfig(depth=depth, hidden=hidden, heads=heads, patch=int(patch), in_channels=4,
                             input_size=input_size, num_classes=1000, learn_sigma=True)


def main():
    model_name, input_size, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    warmup = int(sys.argv[5]) if len(sys.argv) > 5 else 2
    if len(sys.argv) > 6:
        torch.set_num_threads(int(sys.argv[6]))
    cfg = config(model_name, input_size)
    rng = np.random.default_rng(0)
    model = dit_ref.DiT(cfg, make_case.random_weights(cfg, rng), dtype=torch.float32)
    params = list(model.trainable().values())
    ema = {k: v.detach().clone() for k, v in model.params.items()}
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0)
    diffusion = dit_ref.Diffusion()
    x0 = torch.randn(batch, cfg.in_channels, input_size, input_size)
    times = []
    for step in range(-warmup, steps):
        start = time.perf_counter()
        t = torch.randint(0, 1000, (batch,))
        y = torch.randint(0, cfg.num_classes, (batch,))
        noise = torch.randn_like(x0)
        opt.zero_grad(set_to_none=True)
        diffusion.training_losses(model, x0, noise, t, y)["loss"].backward()
        torch.nn.utils.clip_grad_norm_(params, float("inf"))  # the global norm, as dydit logs it
        opt.step()
        with torch.no_grad():
            for k, v in model.params.items():
                ema[k].mul_(0.9999).add_(v, alpha=1 - 0.9999)
        if step >= 0:
            times.append(time.perf_counter() - start)
    median = statistics.median(times)
    print(json.dumps({"impl": "pytorch " + torch.__version__, "model": model_name, "input_size": input_size,
                      "batch": batch, "threads": torch.get_num_threads(), "steps": steps,
                      "median_step_s": round(median, 6), "images_per_s": round(batch / median, 3)}))


if __name__ == "__main__":
    main()
