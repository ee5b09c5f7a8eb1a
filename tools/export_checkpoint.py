#!/usr/bin/env python3
"""Export a dydit weights file (safetensors) as a PyTorch state dict that the official code loads.

    /usr/bin/python3 tools/export_checkpoint.py W.safetensors OUT.pt

The input is a file that dydit wrote (training's model/ema.safetensors, `dydit convert`, a
checkpoint's weights): F32 tensors under the official DiT/DyDiT names, pos_embed included, and
`format` = `dydit-weights` in its metadata (docs/algorithm.md 7.1, 7.2, 7.5). Other safetensors
files (F16, diffusers names, no metadata) go through `dydit convert` first.

OUT is a `torch.save` of a plain state dict, like DiT-XL-2-256x256.pt: name -> float32 tensor, in
the file's order, pos_embed included (the official models keep it as a frozen parameter, so their
state_dict() has it), DyDiT router tensors included. `model.load_state_dict(torch.load(OUT),
strict=True)` then loads it into the official DiT or DyDiT of the same configuration. The
configuration itself is not in a state dict: this tool prints it (from the metadata) so that the
model can be built to match. OUT is written under a temporary name and renamed, so a failure never
leaves a partial file; its folder is created when missing.

Errors end the program with one line `error: ...` and status 1.
"""
import argparse
import collections
import json
import os
import struct
import sys
import tempfile

import numpy as np

MAX_HEADER = 100 * 1000 * 1000  # the reference reader's cap (docs/algorithm.md 7.5)
CONFIG_KEYS = ("model", "depth", "hidden", "heads", "patch", "in_channels", "input_size", "num_classes",
               "learn_sigma", "mlp_ratio", "class_dropout", "dynamic", "router_input")


class ExportError(Exception):
    """A problem with the input or the output; reported as one line."""


def read_dydit_weights(path):
    """(OrderedDict name -> float32 array in the file's order, metadata) of a dydit weights file."""
    try:
        with open(path, "rb") as f:
            blob = f.read()
    except OSError as e:
        raise ExportError(f"{path}: cannot read ({e.strerror})")
    if len(blob) < 8:
        raise ExportError(f"{path}: {len(blob)} bytes, not a safetensors file")
    (size,) = struct.unpack("<Q", blob[:8])
    if size > MAX_HEADER or 8 + size > len(blob):
        raise ExportError(f"{path}: header length {size} does not fit the file ({len(blob)} bytes)")
    try:
        header = json.loads(blob[8:8 + size].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ExportError(f"{path}: the header is not JSON ({e})")
    if not isinstance(header, dict):
        raise ExportError(f"{path}: the header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if metadata.get("format") != "dydit-weights":
        raise ExportError(f"{path}: not a dydit weights file (no format=dydit-weights in its metadata); "
                          "write one with 'dydit convert --in FILE --out W.safetensors' first")
    data = memoryview(blob)[8 + size:]
    arrays = [(name, read_tensor(path, name, entry, data)) for name, entry in header.items()]
    # The state dict keeps the order of the bytes, which is the order dydit declares the tensors in.
    order = {name: int(entry["data_offsets"][0]) for name, entry in header.items()}
    tensors = collections.OrderedDict(sorted(arrays, key=lambda item: order[item[0]]))
    if "pos_embed" not in tensors:
        raise ExportError(f"{path}: no pos_embed tensor; rewrite the file with 'dydit convert'")
    return tensors, metadata


def read_tensor(path, name, entry, data):
    """One F32 tensor of the data buffer, checked against its stated shape and offsets."""
    try:
        dtype, shape, (begin, end) = entry["dtype"], tuple(int(d) for d in entry["shape"]), entry["data_offsets"]
        begin, end = int(begin), int(end)
    except (KeyError, TypeError, ValueError):
        raise ExportError(f"{path}: tensor '{name}' has no valid dtype, shape and data_offsets")
    if dtype != "F32":
        raise ExportError(f"{path}: tensor '{name}' is {dtype}, dydit weights are F32")
    if not 0 <= begin <= end <= len(data) or end - begin != 4 * int(np.prod(shape, dtype=np.int64)):
        raise ExportError(f"{path}: tensor '{name}' offsets [{begin}, {end}) do not hold F32 {list(shape)}")
    return np.frombuffer(data[begin:end], dtype="<f4").reshape(shape).astype(np.float32)


def save_state_dict(tensors, out):
    """torch.save of name -> tensor, written atomically next to OUT."""
    import torch  # only here: reading and checking the input needs numpy alone

    state = collections.OrderedDict((name, torch.from_numpy(array)) for name, array in tensors.items())
    folder = os.path.dirname(os.path.abspath(out))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=".pt", dir=folder)
    except OSError as e:
        raise ExportError(f"{out}: cannot write there ({e.strerror})")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, out)
    except OSError as e:
        os.unlink(tmp)
        raise ExportError(f"{out}: cannot write ({e.strerror})")


def describe(metadata, count):
    config = " ".join(f"{k}={metadata[k]}" for k in CONFIG_KEYS if k in metadata)
    return f"{count} tensors; configuration: {config}"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights", help="dydit weights file (.safetensors)")
    ap.add_argument("out", help="the torch.save file to write (.pt)")
    args = ap.parse_args(argv)
    try:
        if os.path.abspath(args.out) == os.path.abspath(args.weights):
            raise ExportError(f"{args.out}: the output would overwrite the input")
        tensors, metadata = read_dydit_weights(args.weights)
        save_state_dict(tensors, args.out)
    except ExportError as e:
        sys.exit(f"error: {e}")
    print(f"wrote {args.out}: {describe(metadata, len(tensors))}")


if __name__ == "__main__":
    main(sys.argv[1:])
