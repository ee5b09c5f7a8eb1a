"""Writes one parity case: random weights, forward/grad inputs and their float64 references.

    python3 make_case.py --out DIR [--depth 2 --hidden 48 --heads 3 ...] [--no-metadata] [--no-pos-embed]
                         [--dydit [--router-input timestep|condition] [--gumbel] [--y-complete]]
                         [--forward-flags=FLAGS] [--grad-flags=FLAGS]

DIR receives weights.safetensors, forward_in.safetensors, grad_in.safetensors and the references
forward_ref.safetensors / grad_ref.safetensors, named like the outputs of `dydit forward` and
`dydit grad`. The weights are deliberately not DiT's initialisation: zero adaLN and final layers
would make every block an identity and hide most of the network from the comparison.

DyDiT cases (--dydit) add router weights whose biases are calibrated on the case's own inputs so
that every kind of mask is mixed (some heads, groups and tokens on, some off), optional logistic
router noise for grad (--gumbel: gumbel_attn, gumbel_mlp, gumbel_token) and labels y_complete for
the stage-1 complete path that differ from y in every sample (--y-complete). FLAGS are the extra
options of the command (e.g. --grad-flags="--stage 1 --target 0.4"), parsed by dit_ref's command
line; the caller passes the same words to ./dydit. One summary line reports the mask fractions.

Every case is finally checked for conditioning (check_conditioning): float32 rounding alone must
not move any reference tensor by more than FLOAT32_BUDGET, else the case cannot separate a correct
float32 implementation from a wrong one and make_case fails, asking for another seed.
"""
import argparse
import dataclasses
import math
import os
import shlex
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
import dit_ref  # noqa: E402
import safetensors_np  # noqa: E402

BIAS_STD = 0.1
LABEL_STD = 0.7
ADALN_GAIN = 0.7  # keeps shift/scale/gate around 0.1-1 for O(1) conditioning
TOKEN_HIDDEN_BIAS = 0.5  # token router's first bias: keeps most of its few ReLU units alive
ROUTER_MARGIN = 1e-3  # minimum |logit + noise| of a router decision, relative to the logits' RMS
MIN_FLOPS_GAP = 0.05  # |mean_b F - target| of a grad case: keeps flops_loss well conditioned
FLOAT32_BUDGET = 2e-6  # float32 rounding may move a case's outputs this much at most (1/5 of the tolerance)


def random_weights(cfg, rng):
    """name -> float32 array for every parameter; activations stay O(1) through the network.

    Weights are N(0, gain^2 / fan_in) so each linear layer roughly preserves scale; biases are small
    but non-zero so that a bias read from the wrong place changes the result. A DyDiT's router
    biases are only a starting point: calibrate_routers sets them from the case's inputs.
    """
    weights = {}
    for name, shape in dit_ref.param_shapes(cfg).items():
        if name == "pos_embed":
            value = dit_ref.sincos_pos_embed(cfg.hidden, cfg.grid)[None]
        elif name.endswith(".bias"):
            value = BIAS_STD * rng.standard_normal(shape)
            if name.endswith("token_selection.mlp_head.0.bias"):
                value += TOKEN_HIDDEN_BIAS
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
    offsets = decoder_offsets(model.cfg, grad_in, rng)
    if offsets is not None:
        apply_decoder_offsets(model.cfg, lambda x_t, t, y: model.forward(x_t, t, y), grad_in, offsets)


def decoder_offsets(cfg, grad_in, rng):
    """The offsets d of settle_decoder_noise, (Z, C, H, W) for the Z samples with t = 0, or None."""
    zero = np.flatnonzero(grad_in["t"] == 0)
    if not cfg.learn_sigma or zero.size == 0:
        return None
    offset = np.clip(0.7 * rng.standard_normal(grad_in["noise"][zero].shape), -1.5, 1.5)  # (Z, C, H, W)
    for d, b in zip(offset, zero):
        interior = np.flatnonzero(np.abs(grad_in["x0"][b]) < 0.999)
        d.flat[rng.choice(interior, size=2, replace=False)] = [12.0, -12.0]
    return offset


def apply_decoder_offsets(cfg, eps_fn, grad_in, offset):
    """noise[t = 0] = eps_hat + offset by fixed-point passes; eps_fn(x_t, t, y) -> model output."""
    zero = np.flatnonzero(grad_in["t"] == 0)
    diffusion = dit_ref.Diffusion()
    t, y = torch.from_numpy(grad_in["t"]), torch.from_numpy(grad_in["y"])
    x0 = torch.from_numpy(grad_in["x0"]).double()
    for _ in range(3):
        with torch.no_grad():
            x_t = diffusion.q_sample(x0, torch.from_numpy(grad_in["noise"]).double(), t)
            eps = eps_fn(x_t, t, y)[:, : cfg.in_channels].numpy()
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


# ----------------------------------------------------------------------------------------------
# DyDiT cases: mixed masks and decision margins
#
# A router decision is a hard threshold, 1[z + g > 0]. If z + g lies within float32 rounding of 0,
# the C program (float32) and this reference (float64) may decide differently, and the whole
# comparison downstream of that decision becomes meaningless. So every decision of a case is kept
# at least ROUTER_MARGIN * RMS(z) away from 0 (RMS over all logits of that router and block in the
# case), far above the ~1e-6 relative float32 error of z:
#   * decisions without noise (every forward decision, grad without --gumbel) by shifting the
#     router bias (a per-column shift of the width routers' biases, one shift of the token router's
#     last bias), the smallest shift that clears every such logit of the case at once;
#   * decisions with noise by moving the given noise g of the offending entry to the same side, to
#     |z + g| = 1.5 * margin (the decision keeps its value, so nothing downstream changes).
# The token router's ReLU has a kink at 0 that flips a gradient term the same way, so its inputs are
# kept clear of 0 by shifting its first bias per unit. Blocks are treated in order, because a
# decision of block l changes the logits of every later block.


ROUTER_BIAS = {  # decision kind -> the bias that shifts its logits, per block
    "attn": "attn_rate.router.bias",
    "mlp": "mlp_rate.router.bias",
    "token_hidden": "token_selection.mlp_head.0.bias",
    "token": "token_selection.mlp_head.2.bias",
}


@dataclasses.dataclass
class Stream:
    """One set of decisions the case makes: a run of the dynamic path on given inputs."""
    name: str
    x: torch.Tensor
    t: torch.Tensor
    y: torch.Tensor
    noise: dict  # run()'s noise dict (numpy-backed tensors, adjusted in place) or None
    apply: bool  # False: forward --complete (routers run on the complete stream)


def decision_streams(forward_in, grad_in, forward_args, gumbel):
    """The streams whose decisions the case's references depend on."""
    diffusion = dit_ref.Diffusion()
    x_t = diffusion.q_sample(torch.from_numpy(grad_in["x0"]).double(), torch.from_numpy(grad_in["noise"]).double(),
                             torch.from_numpy(grad_in["t"]))
    noise = None if gumbel is None else {k: torch.from_numpy(v) for k, v in gumbel.items()}
    return [
        Stream("forward", torch.from_numpy(forward_in["x"]), torch.from_numpy(forward_in["t"]),
               torch.from_numpy(forward_in["y"]), None, not forward_args.complete),
        Stream("grad", x_t, torch.from_numpy(grad_in["t"]), torch.from_numpy(grad_in["y"]), noise, True),
    ]


def trace_logits(cfg, weights, streams, hook=None):
    """[{(kind, block): (z, g)}] per stream: the noiseless logits (and the noise) of every decision."""
    model = dit_ref.DyDiT(cfg, weights)
    traces = []
    for stream in streams:
        seen = {}

        def record(kind, block, z, g, seen=seen, stream=stream):
            if hook is not None and kind != "token_hidden":
                g = hook(stream, kind, block, z, g)
            seen[(kind, block)] = (z.detach().numpy().copy(), None if g is None else g.numpy().copy())
            return g

        with torch.no_grad():
            model.run(stream.x, stream.t, stream.y, noise=stream.noise, apply=stream.apply, hook=record)
        traces.append(seen)
    return traces


def margin_of(traces, kind, block):
    """ROUTER_MARGIN times the RMS of a router's noiseless logits over every stream of the case."""
    z = np.concatenate([tr[(kind, block)][0].ravel() for tr in traces])
    return ROUTER_MARGIN * max(float(np.sqrt(np.mean(z ** 2))), 1e-6)


def bias_columns(traces, kind, block, noiseless_only):
    """Per bias entry, the logits it shifts: (K, values) for width routers (column k), (1, values)
    for the token router, (R, values) for the ReLU inputs (unit r)."""
    z = [tr[(kind, block)][0] for tr in traces if not (noiseless_only and tr[(kind, block)][1] is not None)]
    if not z:
        return None
    z = np.concatenate([v.reshape(-1, v.shape[-1]) if kind != "token" else v.reshape(-1, 1) for v in z])
    return z.T  # (entries, values)


def clearing_shift(values, margin):
    """The smallest |d| with |v + d| >= margin for every v (0 when they already clear it)."""
    if np.all(np.abs(values) >= margin):
        return 0.0
    candidates = np.concatenate([[0.0], -values + 1.5 * margin, -values - 1.5 * margin])
    for d in candidates[np.argsort(np.abs(candidates), kind="stable")]:
        if np.all(np.abs(values + d) >= 1.25 * margin):
            return float(d)
    raise RuntimeError("no bias shift clears the decision margins")


def shift_bias(weights, cfg, streams, block, kind, mix_rng=None):
    """Shifts one router bias of one block; returns how many entries changed.

    mix_rng: first put each entry's logits at a random quantile (so the masks are mixed), then
    clear the margins. The shift is applied to the float32 bias; the margin is verified on the
    logits the rounded bias gives.
    """
    traces = trace_logits(cfg, weights, streams)
    margin = margin_of(traces, kind, block)
    name = f"blocks.{block}.{ROUTER_BIAS[kind]}"
    bias = weights[name].astype(np.float64)
    new = bias.copy()
    if mix_rng is not None and kind != "token_hidden":
        everything = bias_columns(traces, kind, block, noiseless_only=False)
        q = mix_rng.uniform(0.25, 0.75, size=bias.shape)
        new = new - np.array([np.quantile(v, qk) for v, qk in zip(everything, q)])
    decided = bias_columns(traces, kind, block, noiseless_only=kind != "token_hidden")
    if decided is None:
        return 0
    for k, v in enumerate(decided):
        new[k] += clearing_shift(v - bias[k] + new[k], margin)
    new = new.astype(np.float32)
    for k, v in enumerate(decided):
        if np.min(np.abs(v - bias[k] + np.float64(new[k]))) < margin:
            raise RuntimeError(f"{name}[{k}]: the float32 bias does not clear the margin")
    changed = int(np.sum(new != weights[name]))
    weights[name] = new
    return changed


def clear_noise(cfg, weights, streams):
    """Moves noise entries with |z + g| < margin to |z + g| = 1.5 margin, same side (in place)."""
    traces = trace_logits(cfg, weights, streams)
    margins = {key: margin_of(traces, *key) for key in traces[0] if key[0] != "token_hidden"}
    changed = [0]

    def hook(stream, kind, block, z, g):
        if g is None:
            return g
        z = z.numpy()
        zg = z + g.numpy()
        margin = margins[(kind, block)]
        bad = np.abs(zg) < margin
        if np.any(bad):
            side = np.where(zg >= 0, 1.0, -1.0)
            moved = (side * 1.5 * margin - z).astype(np.float32)
            stream.noise[kind][:, block][torch.from_numpy(bad)] = torch.from_numpy(moved[bad])  # the input array
            if np.any(np.abs(z[bad] + moved[bad].astype(np.float64)) < margin):
                raise RuntimeError("a float32 noise value does not clear the margin")
            changed[0] += int(bad.sum())
            return stream.noise[kind][:, block].to(torch.float64)
        return g

    trace_logits(cfg, weights, streams, hook)
    return changed[0]


def calibrate_routers(cfg, weights, make_streams, mix_rng=None):
    """Router biases (and noise) for mixed masks and clear decision margins; returns the number of
    values changed. Each bias is set after everything its logits depend on."""
    changed = 0
    for block in range(cfg.depth):
        for kind in ("attn", "mlp", "token_hidden", "token"):  # the ReLU inputs depend on the head mask
            changed += shift_bias(weights, cfg, make_streams(), block, kind, mix_rng)
    return changed + clear_noise(cfg, weights, make_streams())


def mask_summary(cfg, weights, streams, target):
    """One line: routed-entry fractions on per stream, F, and failure when a mask kind is not mixed."""
    model = dit_ref.DyDiT(cfg, weights)
    parts, problems = [], []
    for stream in streams:
        with torch.no_grad():
            res = model.run(stream.x, stream.t, stream.y, noise=stream.noise, apply=stream.apply)
        ratio = model.flops_ratio(res).mean().item()
        routed = {"heads": res.head[:, :, 1:], "groups": res.chan[:, :, 1:], "tokens": res.token}
        fracs = ", ".join(f"{k} {v.mean().item():.2f}" for k, v in routed.items())
        label = stream.name + ("(complete)" if not stream.apply else "") + ("(noise)" if stream.noise else "")
        parts.append(f"{label}: on {fracs}; F {ratio:.3f}")
        for k, v in routed.items():
            if v.min().item() != 0.0 or v.max().item() != 1.0:
                problems.append(f"{stream.name} {k} not mixed")
        if stream.name == "grad" and abs(ratio - target) < MIN_FLOPS_GAP:
            problems.append(f"grad F {ratio:.3f} too close to the target {target:g}")
    return "; ".join(parts), problems


def make_dydit_case(cfg, weights, forward_in, grad_in, args, forward_args, grad_args, rng):
    """Adds the DyDiT inputs to the case and calibrates its routers (in place); returns the summary."""
    B, L, H, N = args.batch, cfg.depth, cfg.heads, cfg.tokens
    gumbel = None
    if args.gumbel:
        gumbel = {kind: rng.logistic(size=shape).astype(np.float32)
                  for kind, shape in (("attn", (B, L, H - 1)), ("mlp", (B, L, H - 1)), ("token", (B, L, N)))}
        for kind, value in gumbel.items():
            grad_in["gumbel_" + kind] = value  # the same arrays: noise adjustments land in the inputs
    if args.y_complete:
        grad_in["y_complete"] = ((grad_in["y"] + rng.integers(1, cfg.label_rows, size=B)) % cfg.label_rows)

    def make_streams():
        return decision_streams(forward_in, grad_in, forward_args, gumbel)

    calibrate_routers(cfg, weights, make_streams, mix_rng=rng)
    offsets = decoder_offsets(cfg, grad_in, rng)
    noise = None if gumbel is None else {k: torch.from_numpy(v) for k, v in gumbel.items()}
    y_complete = torch.from_numpy(grad_in.get("y_complete", grad_in["y"]))

    def eps_hat(model, x_t, t, y):
        """The dynamic path's output; in stage 1 the midpoint of it and the complete path's, which
        reads the same t = 0 noise: both decoder terms then stay within a few sigma."""
        out = model.run(x_t, t, y, noise=noise).out
        return out if grad_args.stage == 2 else 0.5 * (out + model.forward(x_t, t, y_complete))

    for _ in range(8):
        if offsets is not None:
            model = dit_ref.DyDiT(cfg, weights)
            apply_decoder_offsets(cfg, lambda x_t, t, y: eps_hat(model, x_t, t, y), grad_in, offsets)
        if calibrate_routers(cfg, weights, make_streams) == 0:  # settled noise and margins agree
            break
    else:
        raise RuntimeError("decision margins and the decoder noise do not settle")
    summary, problems = mask_summary(cfg, weights, make_streams(), grad_args.target)
    if problems:
        raise RuntimeError("; ".join(problems) + f" ({summary}); try another seed or target")
    return summary


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
    ap.add_argument("--no-metadata", action="store_true", help="omit __metadata__ (DiT: load with --heads)")
    ap.add_argument("--no-pos-embed", action="store_true", help="omit pos_embed (the loader must compute it)")
    ap.add_argument("--float-timesteps", action="store_true", help="write forward's t as float32, not int64")
    dy = ap.add_argument_group("DyDiT")
    dy.add_argument("--dydit", action="store_true", help="add routers: a DyDiT case")
    dy.add_argument("--router-input", choices=dit_ref.ROUTER_INPUTS,
                    help="write router_input into the metadata (default: not written, meaning timestep)")
    dy.add_argument("--gumbel", action="store_true", help="grad inputs gumbel_attn/_mlp/_token (logistic noise)")
    dy.add_argument("--y-complete", action="store_true", help="grad input y_complete, != y in every sample")
    ap.add_argument("--forward-flags", default="", help="extra options of forward, e.g. --forward-flags=--complete")
    ap.add_argument("--grad-flags", default="", help='extra options of grad, e.g. --grad-flags="--stage 1 --tau 3"')
    args = ap.parse_args(argv)
    if (args.router_input or args.gumbel or args.y_complete) and not args.dydit:
        ap.error("--router-input, --gumbel and --y-complete need --dydit")
    return args


def command_args(command, flags):
    """The reference's parsed command line for one command with the case's extra flags."""
    return dit_ref.command_parser().parse_args([command, "--weights", "-", "--inputs", "-", "--out", "-"]
                                               + shlex.split(flags))


def main(argv=None):
    args = parse_args(argv)
    forward_args, grad_args = command_args("forward", args.forward_flags), command_args("grad", args.grad_flags)
    cfg = dit_ref.DitConfig(
        depth=args.depth, hidden=args.hidden, heads=args.heads, patch=args.patch,
        in_channels=args.in_channels, input_size=args.input_size, num_classes=args.num_classes,
        learn_sigma=bool(args.learn_sigma), mlp_ratio=args.mlp_ratio, class_dropout=args.class_dropout,
        dynamic=args.dydit, router_input=args.router_input,
    ).validate()
    rng = np.random.default_rng(args.seed)
    weights = random_weights(cfg, rng)
    if args.no_pos_embed:
        del weights["pos_embed"]
    forward_in, grad_in = make_inputs(cfg, args.batch, rng, args.float_timesteps)
    summary = None
    if args.dydit:
        summary = make_dydit_case(cfg, weights, forward_in, grad_in, args, forward_args, grad_args, rng)
    else:
        settle_decoder_noise(dit_ref.DiT(cfg, weights), grad_in, rng)

    os.makedirs(args.out, exist_ok=True)

    def path(name):
        return os.path.join(args.out, name + ".safetensors")

    safetensors_np.save(path("weights"), weights, None if args.no_metadata else cfg.metadata())
    safetensors_np.save(path("forward_in"), forward_in)
    safetensors_np.save(path("grad_in"), grad_in)

    # The references are computed from the files just written, exactly as the C side will read them.
    model = dit_ref.load_model(path("weights"), heads=cfg.heads, input_size=cfg.input_size)
    refs = [dit_ref.run_command(model, forward_args, forward_in), dit_ref.run_command(model, grad_args, grad_in)]
    safetensors_np.save(path("forward_ref"), refs[0])
    safetensors_np.save(path("grad_ref"), refs[1])
    worst = check_conditioning(model.cfg, weights, forward_in, grad_in, forward_args, grad_args, refs, args.seed)
    if summary:
        print(f"case {os.path.basename(os.path.normpath(args.out))}: {summary}; float32 sensitivity {worst:.1g}")


def check_conditioning(cfg, weights, forward_in, grad_in, forward_args, grad_args, refs, seed, runs=3):
    """Fails when float32 rounding alone moves some output tensor by more than FLOAT32_BUDGET.

    The references are recomputed in float32, on the case's values and on copies of the weights
    and float inputs perturbed by up to one float32 ulp (standing in for the rounding a different
    float32 implementation makes elsewhere); every result must stay within the budget of the
    float64 reference, and take the same decisions. A case that fails cannot tell a correct
    float32 implementation from a wrong one: typically a one-element bias gradient that is a sum
    of terms cancelling by chance, or a badly conditioned t = 0 decoder term. Pick another seed.
    Returns the worst relative error seen.
    """
    rng = np.random.default_rng([seed, 0x5E45])  # own stream: the case itself does not depend on it

    def perturbed(values):
        return {k: (v * (1 + 2.0 ** -23 * rng.uniform(-1, 1, v.shape))).astype(np.float32)
                if v.dtype == np.float32 and k != "t" else v for k, v in values.items()}

    bad, worst = {}, 0.0
    for run in range(runs):
        w, f, g = (weights, forward_in, grad_in) if run == 0 else map(perturbed, (weights, forward_in, grad_in))
        model = dit_ref.make_model(cfg, w, torch.float32)
        outs = [dit_ref.run_command(model, forward_args, f), dit_ref.run_command(model, grad_args, g)]
        for out32, out64 in zip(outs, refs):
            for name, v64 in out64.items():
                if name in compare.EXACT:
                    if not np.array_equal(out32[name], v64):
                        bad[name] = np.inf  # a float32 run decides differently
                    continue
                err = compare.relative_error(out32[name], v64)
                worst = max(worst, err)
                if err > FLOAT32_BUDGET:
                    bad[name] = max(bad.get(name, 0.0), err)
    if bad:
        raise RuntimeError("ill-conditioned case, float32 rounding moves " +
                           "; ".join(f"{k} (rel {v:.2g})" for k, v in bad.items()) +
                           f" beyond {FLOAT32_BUDGET:g}: try another seed")
    return worst

if __name__ == "__main__":
    main()
