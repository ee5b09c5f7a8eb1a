"""Writes one parity case: random weights, forward/grad inputs and their float64 references.

    python3 make_case.py --out DIR [--depth 2 --hidden 48 --heads 3 ...] [--no-metadata] [--no-pos-embed]

DIR receives weights.safetensors, forward_in.safetensors, grad_in.safetensors and the references
forward_ref.safetensors / grad_ref.safetensors, named like the outputs of `dydit forward` and
`dydit grad`. The weights are deliberately not DiT's initialisation: zero adaLN and final layers
would make every block an identity and hide most of the network from the comparison.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dit_ref  # noqa: E402
import safetensors_np  # noqa: E402

BIAS_STD = 0.1
LABEL_STD = 0.7
ADALN_GAIN = 0.7  # keeps shift/scale/gate around 0.1-1 for O(1) conditioning


def random_weights(cfg, rng):
    """name -> float32 array for every parameter; activations stay O(1) through the network.

    Weights are N(0, gain^2 / fan_in) so each linear layer roughly preserves scale; biases are small
    but non-zero so that a bias read from the wrong place changes the result.
    """
    weights = {}
    for name, shape in dit_ref.param_shapes(cfg).items():
        if name == "pos_embed":
            value = dit_ref.sincos_pos_embed(cfg.hidden, cfg.grid)[None]
        elif name.endswith(".bias"):
            value = BIAS_STD * rng.standard_normal(shape)
        elif name == "y_embedder.embedding_table.weight":
            value = LABEL_STD * rng.standard_normal(shape)
        else:
            gain = ADALN_GAIN if "adaLN_modulation" in name else 1.0
            value = gain / math.sqrt(math.prod(shape[1:])) * rng.standard_normal(shape)
        weights[name] = value.astype(np.float32)
    return weights


def timesteps(batch, rng):
    """(B,) int64 containing 0 (decoder NLL), 999 (last step) and random middle steps, shuffled."""
    t = np.concatenate([[0, 999], rng.integers(1, 999, size=max(batch - 2, 0))])[:batch]
    return rng.permutation(t).astype(np.int64)


def labels(cfg, batch, rng):
    """(B,) int64 class labels; the last one is the null class when the model has that row."""
    y = rng.integers(0, cfg.num_classes, size=batch)
    if cfg.class_dropout > 0:
        y[-1] = cfg.num_classes
    return y.astype(np.int64)


def clean_latents(shape, rng):
    """x0 (B, C, H, W) hitting every decoder-NLL branch: inside (-0.999, 0.999) and beyond it,
    including values exactly +-1 and +-0.9995 (edge bins although inside [-1, 1])."""
    x0 = 1.2 * rng.standard_normal(shape)
    specials = np.array([1.0, -1.0, 0.9995, -0.9995])
    for row in x0.reshape(shape[0], -1):  # per-sample view
        picks = rng.choice(row.size, size=max(specials.size, row.size // 20), replace=False)
        row[picks] = specials[np.arange(picks.size) % specials.size]
    return x0.astype(np.float32)


def settle_decoder_noise(model, grad_in, rng):
    """Redraws the noise of t = 0 samples as eps_hat + d (in place), |d| <= 1.5 but for two elements.

    At t = 0 the decoder mean is x0 + 0.01 (noise - eps_hat) while sigma is about 0.01, so with
    unrelated noise and eps_hat many elements land several sigma from their bin, where the bin
    probability is a difference of two CDF values near 0 or 1 that float32 cannot resolve: a
    correct float32 implementation would disagree with the float64 reference by percents. Two
    interior elements per sample get d = +-12 instead: there the probability underflows in any
    precision and the 1e-12 clamp sets the value. eps_hat depends on the noise only through
    0.01 * noise, so a few fixed-point passes suffice.
    """
    zero = np.flatnonzero(grad_in["t"] == 0)
    if not model.cfg.learn_sigma or zero.size == 0:
        return
    offset = np.clip(0.7 * rng.standard_normal(grad_in["noise"][zero].shape), -1.5, 1.5)  # (Z, C, H, W)
    for d, b in zip(offset, zero):
        interior = np.flatnonzero(np.abs(grad_in["x0"][b]) < 0.999)
        d.flat[rng.choice(interior, size=2, replace=False)] = [12.0, -12.0]
    diffusion = dit_ref.Diffusion()
    t, y = torch.from_numpy(grad_in["t"]), torch.from_numpy(grad_in["y"])
    x0 = torch.from_numpy(grad_in["x0"]).double()
    for _ in range(3):
        with torch.no_grad():
            x_t = diffusion.q_sample(x0, torch.from_numpy(grad_in["noise"]).double(), t)
            eps = model.forward(x_t, t, y)[:, : model.cfg.in_channels].numpy()
        grad_in["noise"][zero] = (eps[zero] + offset).astype(np.float32)


def make_inputs(cfg, batch, rng, float_timesteps=False):
    """forward_in {x, t, y} and grad_in {x0, noise, t, y}; forward's t may be float32 instead of int64."""
    shape = (batch, cfg.in_channels, cfg.input_size, cfg.input_size)
    t_forward = timesteps(batch, rng)
    forward_in = {
        "x": rng.standard_normal(shape).astype(np.float32),
        "t": t_forward.astype(np.float32) if float_timesteps else t_forward,
        "y": labels(cfg, batch, rng),
    }
    grad_in = {
        "x0": clean_latents(shape, rng),
        "noise": rng.standard_normal(shape).astype(np.float32),
        "t": timesteps(batch, rng),
        "y": labels(cfg, batch, rng),
    }
    return forward_in, grad_in


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="directory to write the case into")
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=48)
    ap.add_argument("--heads", type=int, default=3)
    ap.add_argument("--patch", type=int, default=2)
    ap.add_argument("--in-channels", type=int, default=3)
    ap.add_argument("--input-size", type=int, default=8)
    ap.add_argument("--num-classes", type=int, default=5)
    ap.add_argument("--learn-sigma", type=int, choices=[0, 1], default=1)
    ap.add_argument("--mlp-ratio", type=float, default=4.0)
    ap.add_argument("--class-dropout", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-metadata", action="store_true", help="omit __metadata__ (load with --heads)")
    ap.add_argument("--no-pos-embed", action="store_true", help="omit pos_embed (the loader must compute it)")
    ap.add_argument("--float-timesteps", action="store_true", help="write forward's t as float32, not int64")
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = dit_ref.DitConfig(
        depth=args.depth, hidden=args.hidden, heads=args.heads, patch=args.patch,
        in_channels=args.in_channels, input_size=args.input_size, num_classes=args.num_classes,
        learn_sigma=bool(args.learn_sigma), mlp_ratio=args.mlp_ratio, class_dropout=args.class_dropout,
    ).validate()
    rng = np.random.default_rng(args.seed)
    weights = random_weights(cfg, rng)
    if args.no_pos_embed:
        del weights["pos_embed"]
    forward_in, grad_in = make_inputs(cfg, args.batch, rng, args.float_timesteps)
    settle_decoder_noise(dit_ref.DiT(cfg, weights), grad_in, rng)

    os.makedirs(args.out, exist_ok=True)

    def path(name):
        return os.path.join(args.out, name + ".safetensors")

    safetensors_np.save(path("weights"), weights, None if args.no_metadata else cfg.metadata())
    safetensors_np.save(path("forward_in"), forward_in)
    safetensors_np.save(path("grad_in"), grad_in)

    # The references are computed from the files just written, exactly as the C side will read them.
    model = dit_ref.load_model(path("weights"), heads=cfg.heads, input_size=cfg.input_size)
    safetensors_np.save(path("forward_ref"), dit_ref.run_forward(model, forward_in))
    safetensors_np.save(path("grad_ref"), dit_ref.run_grad(model, grad_in))


if __name__ == "__main__":
    main()
