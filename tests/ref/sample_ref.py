"""An independent reference of DiT sampling (docs/algorithm.md 2.4-2.7) on the float64 reference model: timestep
respacing, classifier-free guidance on the combined batch, ancestral DDPM and DDIM. It replays the
initial latents and per-step noise that `dydit sample --trace` recorded and compares its final
latents with the ones `dydit sample --latents` wrote.

    python3 sample_ref.py --weights W --trace T --latents L --sampler ddpm|ddim --spacing 10
                          [--eta 0] [--cfg-scale 1.5] [--cfg-all-channels] [--clip] [--tol 1e-5] [--case NAME]
"""
import argparse
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_ref  # noqa: E402
import safetensors_np  # noqa: E402


def space_timesteps(total, spec):
    """Kept steps of a `total`-step schedule: "N" or "N1,N2,..." sections strided with Python's
    round (half to even), or "ddimN" (the smallest integer stride giving N steps)."""
    if spec.startswith("ddim"):
        wanted = int(spec[4:])
        for stride in range(1, total):
            if len(range(0, total, stride)) == wanted:
                return sorted(range(0, total, stride))
        raise ValueError(spec)
    counts = [int(c) for c in spec.split(",")]
    size, extra = divmod(total, len(counts))
    kept, start = set(), 0
    for i, count in enumerate(counts):
        section = size + (1 if i < extra else 0)
        stride = (section - 1) / (count - 1) if count > 1 else 1
        position = 0.0
        for _ in range(count):
            kept.add(start + round(position))
            position += stride
        start += section
    return sorted(kept)


class Respaced:
    """The float64 tables of the schedule restricted to the kept steps (docs/algorithm.md 2.4)."""

    def __init__(self, spec):
        base = dit_ref.Diffusion()
        self.timesteps = space_timesteps(1000, spec)
        abar, last, betas = base.alphas_cumprod, 1.0, []
        for t in self.timesteps:
            betas.append(1.0 - abar[t] / last)
            last = abar[t]
        betas = np.array(betas, dtype=np.float64)
        alphas = 1.0 - betas
        self.abar = np.cumprod(alphas)
        self.abar_prev = np.concatenate([[1.0], self.abar[:-1]])
        post_var = betas * (1.0 - self.abar_prev) / (1.0 - self.abar)
        self.log_betas = np.log(betas)
        self.post_log_var_clipped = np.log(np.concatenate([post_var[1:2], post_var[1:]]))
        self.c1 = betas * np.sqrt(self.abar_prev) / (1.0 - self.abar)
        self.c2 = (1.0 - self.abar_prev) * np.sqrt(alphas) / (1.0 - self.abar)
        self.sqrt_recip = np.sqrt(1.0 / self.abar)
        self.sqrt_recipm1 = np.sqrt(1.0 / self.abar - 1.0)

    def at(self, table, k):
        """The per-sample value the model code uses: gathered, then cast to float32."""
        return float(np.float32(table[k]))


def guided_output(model, x, t, y, scale, guided, num_classes):
    """The model on [x; x] with labels [y; null], channels below `guided` combined (forward_with_cfg)."""
    n = x.shape[0]
    if scale <= 1.0:
        return model.forward(x, torch.full((n,), t), y)
    both = torch.cat([x, x])
    labels = torch.cat([y, torch.full((n,), num_classes, dtype=torch.long)])
    out = model.forward(both, torch.full((2 * n,), t), labels)
    eps, rest = out[:, :guided], out[:, guided:]
    cond, uncond = eps[:n], eps[n:]
    half = uncond + scale * (cond - uncond)
    return torch.cat([torch.cat([half, half]), rest], dim=1)[:n]


def sample(model, sched, x, noise, y, args):
    cfg = model.cfg
    C = cfg.in_channels
    guided = C if args.cfg_all_channels else min(3, cfg.out_channels)
    S = len(sched.timesteps)
    for k in range(S - 1, -1, -1):
        out = guided_output(model, x, sched.timesteps[k], y, args.cfg_scale, guided, cfg.num_classes)
        eps = out[:, :C]
        x0 = sched.at(sched.sqrt_recip, k) * x - sched.at(sched.sqrt_recipm1, k) * eps
        if args.clip:
            x0 = x0.clamp(-1, 1)
        z = noise[S - 1 - k]
        if args.sampler == "ddpm":
            mean = sched.at(sched.c1, k) * x0 + sched.at(sched.c2, k) * x
            if cfg.learn_sigma:
                frac = (out[:, C:] + 1) / 2
                log_var = frac * sched.at(sched.log_betas, k) + (1 - frac) * sched.at(sched.post_log_var_clipped, k)
            else:  # DiT's fixed large variance: beta_k, and beta~_1 at the first step
                log_var = torch.full_like(x, sched.at(sched.post_log_var_clipped if k == 0 else sched.log_betas, k))
            x = mean + (torch.exp(0.5 * log_var) * z if k > 0 else 0)
        else:
            abar, abar_prev = sched.at(sched.abar, k), sched.at(sched.abar_prev, k)
            e = (sched.at(sched.sqrt_recip, k) * x - x0) / sched.at(sched.sqrt_recipm1, k)
            sigma = args.eta * np.sqrt((1 - abar_prev) / (1 - abar)) * np.sqrt(1 - abar / abar_prev)
            x = x0 * np.sqrt(abar_prev) + np.sqrt(1 - abar_prev - sigma ** 2) * e + (sigma * z if k > 0 else 0)
    return x


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--weights", required=True)
    p.add_argument("--trace", required=True)
    p.add_argument("--latents", required=True)
    p.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddpm")
    p.add_argument("--spacing", required=True)
    p.add_argument("--eta", type=float, default=0.0)
    p.add_argument("--cfg-scale", type=float, default=1.5)
    p.add_argument("--cfg-all-channels", action="store_true")
    p.add_argument("--clip", action="store_true", help="clamp the x0 prediction to [-1, 1]")
    p.add_argument("--tol", type=float, default=1e-5)
    p.add_argument("--case", default="sample")
    args = p.parse_args()

    model = dit_ref.load_model(args.weights)
    trace, _ = safetensors_np.load(args.trace)
    got, _ = safetensors_np.load(args.latents)
    x = torch.from_numpy(trace["x_T"].astype(np.float64))
    noise = torch.from_numpy(trace["noise"].astype(np.float64))
    y = torch.from_numpy(got["labels"].astype(np.int64))
    sched = Respaced(args.spacing)
    ok = noise.shape[0] == len(sched.timesteps)
    print(f"{'PASS' if ok else 'FAIL'} sample.{args.case}.steps ({len(sched.timesteps)} steps, trace {noise.shape[0]})")
    with torch.no_grad():
        want = sample(model, sched, x, noise, y, args).numpy()
    have = got["latents"].astype(np.float64)
    rel = np.linalg.norm(have - want) / np.linalg.norm(want)
    ok = rel < args.tol and ok
    print(f"{'PASS' if rel < args.tol else 'FAIL'} sample.{args.case}.final_latents (rel {rel:.2e}, tol {args.tol:g})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
