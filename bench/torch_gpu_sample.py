"""DDPM sampling with classifier-free guidance in PyTorch on the same GPU as bench/gpu_sample_speed.c:
the static DiT (reference model of tests/ref/dit_ref.py with scaled_dot_product_attention, bf16
autocast) and the reference sampler of tests/ref/sample_ref.py, batch n -> 2n rows. One two-step
warm-up run, then one CUDA-synchronised timed run. Prints one JSON line.

    python3 bench/torch_gpu_sample.py [--device cuda] [--peak-tflops X] MODEL INPUT_SIZE BATCH STEPS
"""
import argparse
import contextlib
import json
import os
import sys
import time

import torch

import torch_gpu_models as tgm

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import sample_ref  # noqa: E402


def run(model, steps, batch, device):
    cfg = model.cfg
    sched = sample_ref.Respaced(str(steps))
    shape = (batch, cfg.in_channels, cfg.input_size, cfg.input_size)
    x = torch.randn(shape, device=device)
    noise = torch.randn((len(sched.timesteps),) + shape, device=device)
    y = torch.arange(batch, device=device) % cfg.num_classes
    opts = argparse.Namespace(sampler="ddpm", cfg_scale=1.5, cfg_all_channels=False, clip=False, eta=0.0)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    tgm.synchronize(device)
    start = time.perf_counter()
    with torch.no_grad(), autocast:
        sample_ref.sample(model, sched, x, noise, y, opts)
    tgm.synchronize(device)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("input_size", type=int)
    ap.add_argument("batch", type=int)
    ap.add_argument("steps", type=int)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="MFU denominator (0: no MFU)")
    args = ap.parse_args()
    device = tgm.use_device(args.device)
    cfg = tgm.config(args.model, args.input_size)
    model = tgm.build_model(cfg, device)
    for p in model.params.values():
        p.requires_grad_(False)
    run(model, 2, args.batch, device)
    seconds = run(model, args.steps, args.batch, device)
    macs = tgm.forward_macs(cfg)
    tflops = 2 * macs * 2 * args.batch * args.steps / seconds / 1e12
    print(json.dumps({"bench": "sample", "impl": "pytorch " + torch.__version__, "device": device.type,
                      "model": args.model, "input_size": cfg.input_size, "batch": args.batch,
                      "guidance_rows": 2 * args.batch, "steps": args.steps, "sampler": "ddpm", "cfg_scale": 1.5,
                      "engine": "static", "seconds": round(seconds, 3),
                      "images_per_s": float(f"{args.batch / seconds:.4g}"),
                      "gmacs_per_image_forward": round(macs / 1e9, 3), "tflops": float(f"{tflops:.4g}"),
                      "mfu": round(tflops / args.peak_tflops, 4) if args.peak_tflops > 0 else None}))


if __name__ == "__main__":
    main()
