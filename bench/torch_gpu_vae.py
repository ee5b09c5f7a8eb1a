"""SD VAE encoder images/s in PyTorch on the same GPU as bench/gpu_vae.c: the reference encoder of
tests/ref/vae_ref.py with random weights (the speed does not depend on the values), float32 and
bf16 autocast. Best of REPEATS synchronised runs after one warm-up; one JSON line per precision.

    python3 bench/torch_gpu_vae.py [--device cuda] BATCH SIZE REPEATS
"""
import argparse
import contextlib
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import vae_case  # noqa: E402
import vae_ref  # noqa: E402


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("batch", type=int)
    ap.add_argument("size", type=int)
    ap.add_argument("repeats", type=int)
    ap.add_argument("--device", default="cuda")
    args = ap.parse_args()
    device = torch.device(args.device)
    cfg = vae_ref.SD_VAE
    params = {k: torch.from_numpy(v).to(device)
              for k, v in vae_case.random_params(cfg, np.random.default_rng(0)).items()}
    images = torch.rand(args.batch, cfg.image_channels, args.size, args.size, device=device) * 2 - 1
    precisions = {"fp32": contextlib.nullcontext}
    if device.type == "cuda":
        precisions["bf16 autocast"] = lambda: torch.autocast("cuda", dtype=torch.bfloat16)
    for name, context in precisions.items():
        best = float("inf")
        for r in range(-1, args.repeats):  # r = -1: warm-up
            synchronize(device)
            start = time.perf_counter()
            with torch.no_grad(), context():
                vae_ref.encode(params, cfg, images)
            synchronize(device)
            if r >= 0:
                best = min(best, time.perf_counter() - start)
        print(json.dumps({"bench": "vae_encode", "impl": "pytorch " + torch.__version__, "device": device.type,
                          "precision": name, "batch": args.batch, "size": args.size, "repeats": args.repeats,
                          "seconds": round(best, 4), "images_per_s": float(f"{args.batch / best:.4g}")}))


if __name__ == "__main__":
    main()
