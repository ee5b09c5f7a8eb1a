"""Test fixtures for the SD VAE (model/vae.c, `dydit decode`), from the reference in vae_ref.py.

    python3 vae_case.py case --out DIR --channels 16,32,48 [--layers 2] [--groups 8] [--names diffusers]
                             [--size 32] [--batch 2] [--seed 0]
        DIR/vae.safetensors        random weights under the chosen names ("diffusers", "legacy" or
                                   "compvis"); metadata norm_num_groups unless the groups are 32
        DIR/encoder.safetensors    the same encoder alone (with quant_conv), DIR/decoder.safetensors
                                   the decoder alone (with post_quant_conv)
        DIR/images.safetensors     images (B, 3, size, size) in [-1, 1]
        DIR/latents.safetensors    latents (B, 4, size/f, size/f) as the decoder takes them
        DIR/stored.safetensors     the same latents times 0.18215, as the sampler and encoder store them
        DIR/encode_ref.safetensors mean, logvar (float64); DIR/decode_ref.safetensors images (float64)
        DIR/broken-*.safetensors   damaged weight files, one fault each (see damaged(); broken-groups
                                   has metadata norm_num_groups 7)
    python3 vae_case.py full-size --out FILE [--names compvis] [--random SEED]
        the full SD VAE configuration with zero weights, as a sparse file (no data written), and
        prints "parameters N tensors M encoder E quant_conv Q post_quant_conv P decoder D" of its
        shapes; --random SEED writes random weights instead (for timing)
"""
import argparse
import json
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402
import vae_ref  # noqa: E402

BIAS_STD = 0.1
NORM_STD = 0.1
LOGVAR_GAIN = 30.0  # spreads the logvar so that part of it lies outside [-30, 20] and gets clamped


def random_params(cfg, rng):
    """diffusers name -> float32 array. Convolutions and Linears are N(0, 1/fan_in) so activations
    stay O(1); biases and norm affines are off their defaults so that a misplaced one shows."""
    params = {}
    for name, shape in vae_ref.param_shapes(cfg).items():
        if "norm" in name.split(".")[-2]:
            value = (1.0 if name.endswith(".weight") else 0.0) + NORM_STD * rng.standard_normal(shape)
        elif name.endswith(".bias"):
            value = BIAS_STD * rng.standard_normal(shape)
        else:
            fan_in = int(np.prod(shape[1:]))
            value = rng.standard_normal(shape) / np.sqrt(fan_in)
        params[name] = value.astype(np.float32)
    z = cfg.latent_channels
    params["quant_conv.weight"][z:] *= LOGVAR_GAIN
    return params


def torch64(params):
    return {k: torch.from_numpy(v.astype(np.float64)) for k, v in params.items()}


def select(params, prefixes):
    return {k: v for k, v in params.items() if k.startswith(prefixes)}


FAULTS = ("missing", "shape", "unexpected", "nan", "no_mid", "not_vae")


def damaged(params, fault):
    """A copy of params (diffusers names) with one fault the C loader must report."""
    p = {k: v.copy() for k, v in params.items()}
    if fault == "missing":
        del p["decoder.up_blocks.0.resnets.1.conv2.bias"]
    elif fault == "shape":
        p["encoder.conv_out.bias"] = p["encoder.conv_out.bias"][:-1]
    elif fault == "unexpected":
        p["decoder.mid_block.resnets.0.extra.weight"] = p["quant_conv.bias"]
    elif fault == "nan":
        p["decoder.conv_in.weight"].flat[5] = np.nan
    elif fault == "no_mid":
        p = {k: v for k, v in p.items() if ".mid_block." not in k}
    elif fault == "not_vae":
        p = {k: v for k, v in p.items() if not k.endswith(".conv_in.weight")}
    return p


def write_case(args):
    cfg = vae_ref.VaeConfig(channels=[int(c) for c in args.channels.split(",")], layers=args.layers,
                            groups=args.groups)
    rng = np.random.default_rng(args.seed)
    params = random_params(cfg, rng)
    os.makedirs(args.out, exist_ok=True)
    meta = {} if cfg.groups == 32 else {"norm_num_groups": cfg.groups}

    def save_weights(name, p):
        safetensors_np.save(os.path.join(args.out, name), vae_ref.renamed(p, cfg, args.names), meta)

    save_weights("vae.safetensors", params)
    save_weights("encoder.safetensors", select(params, ("encoder.", "quant_conv.")))
    save_weights("decoder.safetensors", select(params, ("decoder.", "post_quant_conv.")))
    for fault in FAULTS:
        save_weights(f"broken-{fault}.safetensors", damaged(params, fault))
    safetensors_np.save(os.path.join(args.out, "broken-groups.safetensors"), vae_ref.renamed(params, cfg, args.names),
                        {"norm_num_groups": 7})

    f, side = cfg.downsampling, args.size
    images = rng.uniform(-1, 1, (args.batch, cfg.image_channels, side, side)).astype(np.float32)
    latents = rng.standard_normal((args.batch, cfg.latent_channels, side // f, side // f)).astype(np.float32)
    stored = (latents * np.float32(vae_ref.SCALE_FACTOR)).astype(np.float32)
    safetensors_np.save(os.path.join(args.out, "images.safetensors"), {"images": images})
    safetensors_np.save(os.path.join(args.out, "latents.safetensors"), {"latents": latents})
    safetensors_np.save(os.path.join(args.out, "stored.safetensors"), {"latents": stored})

    p64 = torch64(params)
    with torch.no_grad():
        mean, logvar = vae_ref.encode(p64, cfg, torch.from_numpy(images.astype(np.float64)))
        decoded = vae_ref.decode(p64, cfg, torch.from_numpy(latents.astype(np.float64)))
    clamped = float(((logvar == vae_ref.LOGVAR_MIN) | (logvar == vae_ref.LOGVAR_MAX)).double().mean())
    if not 0.05 < clamped < 0.95:
        raise SystemExit(f"vae_case.py: {clamped:.0%} of the logvar is clamped; the clamp would be tested poorly")
    safetensors_np.save(os.path.join(args.out, "encode_ref.safetensors"),
                        {"mean": mean.numpy(), "logvar": logvar.numpy()})
    safetensors_np.save(os.path.join(args.out, "decode_ref.safetensors"), {"images": decoded.numpy()})


# Sizes per safetensors dtype: the full-size file mixes them so the loader converts each kind.
_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}


def write_full_size(args):
    """A safetensors header for the SD VAE and a data section that is a hole: zeros on reading.
    With --random, random weights instead (for timing), written out in full."""
    shapes = vae_ref.param_shapes(vae_ref.SD_VAE)
    if args.random is not None:
        params = random_params(vae_ref.SD_VAE, np.random.default_rng(args.random))
        safetensors_np.save(args.out, vae_ref.renamed(params, vae_ref.SD_VAE, args.names))
        return
    header, offset = {}, 0
    for i, (name, shape) in enumerate(shapes.items()):
        stored = vae_ref.renamed({name: np.zeros(shape, np.float32)}, vae_ref.SD_VAE, args.names)
        (stored_name, value), = stored.items()
        dtype = ("F32", "F16", "BF16")[i % 3]
        size = value.size * _DTYPE_BYTES[dtype]
        header[stored_name] = {"dtype": dtype, "shape": list(value.shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(args.out, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        f.truncate(8 + len(text) + offset)
    def count(prefix=""):
        return sum(int(np.prod(s)) for name, s in shapes.items() if name.startswith(prefix))

    print(f"parameters {count()} tensors {len(shapes)} encoder {count('encoder.')} quant_conv {count('quant_conv.')} "
          f"post_quant_conv {count('post_quant_conv.')} decoder {count('decoder.')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    case = sub.add_parser("case")
    case.add_argument("--out", required=True)
    case.add_argument("--channels", default="16,32")
    case.add_argument("--layers", type=int, default=2)
    case.add_argument("--groups", type=int, default=8)
    case.add_argument("--names", choices=("diffusers", "legacy", "compvis"), default="diffusers")
    case.add_argument("--size", type=int, default=32)
    case.add_argument("--batch", type=int, default=2)
    case.add_argument("--seed", type=int, default=0)
    full = sub.add_parser("full-size")
    full.add_argument("--out", required=True)
    full.add_argument("--names", choices=("diffusers", "legacy", "compvis"), default="diffusers")
    full.add_argument("--random", type=int, default=None, metavar="SEED", help="random weights (for timing)")
    args = ap.parse_args()
    write_case(args) if args.command == "case" else write_full_size(args)


if __name__ == "__main__":
    main()
