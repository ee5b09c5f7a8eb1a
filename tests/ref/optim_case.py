"""Writes an AdamW + EMA reference: two torch.optim.AdamW steps in float32 and the parameter EMA.

    python3 optim_case.py --out DIR [--size 1000] [--seed 0]

DIR/optim_in.safetensors:  param (initial), grad1, grad2; hyper-parameters in the metadata
                           (lr, beta1, beta2, eps, weight_decay, ema_decay, steps).
DIR/optim_ref.safetensors: param, exp_avg, exp_avg_sq after both steps, and ema, updated after
                           each step as ema = decay * ema + (1 - decay) * param from a copy of the
                           initial param (the DiT training loop's update).
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

HYPER = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.03, "ema_decay": 0.9999}


def gradient(size, rng):
    """Gradients spanning many magnitudes, zeros included, so eps and the bias corrections matter."""
    g = rng.standard_normal(size) * 10.0 ** rng.uniform(-9, 1, size)
    g[rng.choice(size, size // 50, replace=False)] = 0.0
    return g.astype(np.float32)


def reference_steps(param, grads, hyper):
    """float32 state after one AdamW step per gradient, with the EMA updated after every step."""
    p = torch.nn.Parameter(torch.from_numpy(param.copy()))
    ema = p.detach().clone()
    opt = torch.optim.AdamW([p], lr=hyper["lr"], betas=(hyper["beta1"], hyper["beta2"]), eps=hyper["eps"],
                            weight_decay=hyper["weight_decay"], foreach=False)
    for g in grads:
        p.grad = torch.from_numpy(g.copy())
        opt.step()
        with torch.no_grad():
            ema.mul_(hyper["ema_decay"]).add_(p, alpha=1 - hyper["ema_decay"])
    state = opt.state[p]
    return {
        "param": p.detach().numpy().copy(),
        "exp_avg": state["exp_avg"].numpy().copy(),
        "exp_avg_sq": state["exp_avg_sq"].numpy().copy(),
        "ema": ema.numpy().copy(),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    param = rng.standard_normal(args.size).astype(np.float32)
    grads = [gradient(args.size, rng), gradient(args.size, rng)]

    os.makedirs(args.out, exist_ok=True)
    metadata = {k: repr(v) for k, v in HYPER.items()}
    metadata["steps"] = str(len(grads))
    safetensors_np.save(os.path.join(args.out, "optim_in.safetensors"),
                        {"param": param, "grad1": grads[0], "grad2": grads[1]}, metadata)
    safetensors_np.save(os.path.join(args.out, "optim_ref.safetensors"), reference_steps(param, grads, HYPER))


if __name__ == "__main__":
    main()
