"""The training step of bench/gpu_train_step.c in PyTorch on the same GPU: the reference DiT of
tests/ref/dit_ref.py with scaled_dot_product_attention, bf16 autocast, fused AdamW, the global
grad norm and a foreach EMA; loss MSE + VB with learned sigma on random latents. --dynamic: a DyDiT
stage-1 step (logistic router noise, dynamic path + complete path + FLOPs loss towards --lambda)
with routers starting from the same keep pattern as dydit's. Median step time after a warm-up,
CUDA-synchronised. Prints one JSON line with the same fields as gpu_train_step.

    python3 bench/torch_gpu_train.py [--device cuda] [--dynamic] [--lambda 0.5] [--peak-tflops X]
                                     MODEL INPUT_SIZE BATCH STEPS [WARMUP]
"""
import argparse
import contextlib
import json
import statistics
import time

import torch

import torch_gpu_models as tgm


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("input_size", type=int)
    ap.add_argument("batch", type=int)
    ap.add_argument("steps", type=int)
    ap.add_argument("warmup", type=int, nargs="?", default=3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dynamic", action="store_true", help="DyDiT stage-1 step")
    ap.add_argument("--lambda", dest="target", type=float, default=0.5, help="FLOPs-ratio target")
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="MFU denominator (0: no MFU)")
    return ap.parse_args()


def autocast(device):
    """bf16 autocast on a GPU; the CPU check runs in float32 (its bf16 kernels are only slow)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_optimizer(params, device):
    """AdamW as dydit's defaults (lr 1e-4, betas 0.9/0.999, eps 1e-8, no weight decay), fused when
    this PyTorch has it."""
    if device.type == "cuda":
        try:
            return torch.optim.AdamW(params, lr=1e-4, weight_decay=0, fused=True)
        except (TypeError, RuntimeError):
            pass
    return torch.optim.AdamW(params, lr=1e-4, weight_decay=0)


def logistic(shape, device):
    u = torch.rand(shape, device=device).clamp_(1e-7, 1 - 1e-7)
    return u.log() - (-u).log1p()


def main():
    args = parse_args()
    device = tgm.use_device(args.device)
    cfg = tgm.config(args.model, args.input_size, args.dynamic)
    name = ("Dy" if args.dynamic else "") + args.model
    B = args.batch
    try:
        model = tgm.build_model(cfg, device)
        if args.dynamic:
            tgm.set_keep_pattern(model, 0.5, 1.0, 0.5)
        params = list(model.trainable().values())
        everything = list(model.params.values())
        ema = [p.detach().clone() for p in everything]
        opt = make_optimizer(params, device)
        diffusion = tgm.DeviceDiffusion(device)
        x0 = torch.randn(B, cfg.in_channels, cfg.input_size, cfg.input_size, device=device)
        L, H, N = cfg.depth, cfg.heads, cfg.tokens
        times, ratios = [], []
        for step in range(-args.warmup, args.steps):
            tgm.synchronize(device)
            start = time.perf_counter()
            t = torch.randint(0, 1000, (B,), device=device)
            y = torch.randint(0, cfg.num_classes, (B,), device=device)
            noise = torch.randn_like(x0)
            opt.zero_grad(set_to_none=True)
            with autocast(device):
                if args.dynamic:
                    gumbel = {"attn": logistic((B, L, H - 1), device), "mlp": logistic((B, L, H - 1), device),
                              "token": logistic((B, L, N), device)}
                    losses = diffusion.dydit_losses(model, x0, noise, t, y, gumbel, stage=1, target=args.target)
                else:
                    losses = diffusion.training_losses(model, x0, noise, t, y)
            losses["loss"].backward()
            torch.nn.utils.clip_grad_norm_(params, float("inf"))  # the global norm, as dydit computes it
            opt.step()
            with torch.no_grad():
                torch._foreach_mul_(ema, 0.9999)
                torch._foreach_add_(ema, everything, alpha=1 - 0.9999)
            tgm.synchronize(device)
            if step >= 0:
                times.append(time.perf_counter() - start)
                if args.dynamic:
                    ratios.append(losses["flops_ratio"].detach())
    except torch.cuda.OutOfMemoryError as e:
        print(json.dumps({"bench": "train", "impl": "pytorch " + torch.__version__, "model": name, "batch": B,
                          "skipped": "out of memory: " + str(e).split("\n")[0][:120]}))
        return
    median = statistics.median(times)
    images_per_s = B / median
    macs = tgm.forward_macs(cfg)
    out = {"bench": "train", "impl": "pytorch " + torch.__version__, "device": device.type, "model": name,
           "input_size": cfg.input_size, "batch": B, "steps": args.steps, "warmup": args.warmup,
           "median_step_s": round(median, 5), "images_per_s": round(images_per_s, 3),
           "gmacs_forward": round(macs / 1e9, 2)}
    if args.dynamic:
        ratio = float(torch.stack(ratios).float().mean())
        realised = tgm.realised_macs(cfg, ratio)
        executed = 2 * macs + tgm.router_macs(cfg)  # stage 1: masked dynamic path + complete path
        out.update(stage=1, **{"lambda": args.target}, flops_ratio=round(ratio, 4),
                   gmacs_forward_realised=round(realised / 1e9, 2))
    if args.peak_tflops > 0:
        out["peak_tflops"] = args.peak_tflops
    out["mfu_static"] = tgm.mfu(images_per_s, 6 * macs, args.peak_tflops)
    if args.dynamic:
        out["mfu_realised"] = tgm.mfu(images_per_s, 6 * realised, args.peak_tflops)
        out["mfu_executed"] = tgm.mfu(images_per_s, 6 * executed, args.peak_tflops)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
