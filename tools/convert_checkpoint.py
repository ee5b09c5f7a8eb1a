#!/usr/bin/env python3
"""Convert an official DiT or DyDiT PyTorch checkpoint (.pt) into a safetensors file.

The input is either a plain state dict (e.g. DiT-XL-2-256x256.pt) or a training checkpoint
{"model", "ema", "opt", "args"} as written by DiT's and DyDiT's train.py. Tensor names are kept
unchanged, dtypes too (dydit reads F32, F16, BF16 and F64); optimizer state is never read.

A .pt file is a pickle, and unpickling can call any Python function the file names. This tool
never does. It reads the torch.save layouts itself (the ZIP archive of torch >= 1.6, and the older
flat file) with an unpickler that resolves only what a state dict needs -- OrderedDict, tensor
rebuilding (into an inert description that is checked against its storage before any byte is
read), storage types, argparse.Namespace (mapped to an inert stand-in) -- and refuses every other
global before it could be called. It does not use torch.load: in torch 1.13, torch.load replaces
a caller's pickle_module with the standard pickle unless weights_only=True, and weights_only
refuses the argparse.Namespace of training checkpoints. TorchScript archives are refused.

Configuration hints (--model, --heads, ...) and, for training checkpoints, what the pickled args
tell (model name, image size, classes) go into the safetensors __metadata__, with the whole args
as JSON under "train_args"; dydit checks them against the tensor shapes.
"""
import argparse
import collections
import io
import json
import math
import os
import pickle
import re
import struct
import sys
import tarfile
import tempfile
import zipfile

PRESET = re.compile(r"^(?:DiT[-_])?(S|B|L|XL)[/_-]?([248])$", re.IGNORECASE)
SAFETENSORS_MAX_HEADER = 100 * 1000 * 1000
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization's pre-ZIP format
LEGACY_PROTOCOL = 1001


class ConvertError(Exception):
    """A problem with the input or the request; reported as one line."""


# ------------------------------------------------------------------------------------------------
# Reading torch.save files without executing them
# ------------------------------------------------------------------------------------------------

class StorageType:
    """What a pickled torch.FloatStorage & co. resolve to: the element type, nothing callable."""

    def __init__(self, numpy_dtype, safetensors_dtype, itemsize):
        self.numpy, self.safetensors, self.itemsize = numpy_dtype, safetensors_dtype, itemsize


STORAGE_TYPES = {
    "FloatStorage": StorageType("<f4", "F32", 4),
    "DoubleStorage": StorageType("<f8", "F64", 8),
    "HalfStorage": StorageType("<f2", "F16", 2),
    "BFloat16Storage": StorageType("<u2", "BF16", 2),  # numpy has no bfloat16: the bits are kept as is
    "LongStorage": StorageType("<i8", "I64", 8),
    "IntStorage": StorageType("<i4", "I32", 4),
    "ShortStorage": StorageType("<i2", "I16", 2),
    "CharStorage": StorageType("i1", "I8", 1),
    "ByteStorage": StorageType("u1", "U8", 1),
    "BoolStorage": StorageType("u1", "BOOL", 1),
}


class Storage:
    """A storage the pickle refers to; its bytes are read only when a tensor is written out."""

    def __init__(self, key, kind, numel, read_bytes, offset=0):
        self.key, self.kind, self.numel, self.offset = key, kind, numel, offset
        self._read_bytes = read_bytes  # key -> bytes of the whole root storage

    def raw(self):
        """The storage's bytes (a view's own range for legacy storage views)."""
        data = self._read_bytes(self.key)
        size = self.kind.itemsize
        if (self.offset + self.numel) * size > len(data):
            raise ConvertError(f"storage '{self.key}' holds {len(data)} bytes, fewer than its {(self.offset + self.numel) * size}")
        return memoryview(data)[self.offset * size:(self.offset + self.numel) * size]


class LazyTensor:
    """A tensor as (storage, offset, size, stride), validated so that it stays inside its storage."""

    def __init__(self, storage, offset, size, stride):
        if not isinstance(storage, Storage):
            raise pickle.UnpicklingError("tensor rebuilt from something that is not a storage")
        ints = [offset, *size, *stride]
        if not all(type(v) is int and v >= 0 for v in ints) or len(size) != len(stride):
            raise pickle.UnpicklingError(f"tensor with invalid offset/size/stride {offset}, {size}, {stride}")
        numel = math.prod(size)
        if numel and offset + sum((n - 1) * s for n, s in zip(size, stride)) >= storage.numel:
            raise pickle.UnpicklingError(f"tensor of size {list(size)} reaches past the end of storage '{storage.key}'")
        self.storage, self.offset, self.shape, self.stride, self.numel = storage, offset, tuple(size), tuple(stride), numel

    @property
    def dtype(self):
        return self.storage.kind.safetensors

    @property
    def nbytes(self):
        return self.numel * self.storage.kind.itemsize

    def _contiguous(self):
        expected = 1
        for n, s in reversed(list(zip(self.shape, self.stride))):
            if n != 1 and s != expected:
                return False
            expected *= n
        return True

    def tobytes(self):
        """Row-major little-endian bytes."""
        if self.numel == 0:
            return b""
        raw, size = self.storage.raw(), self.storage.kind.itemsize
        if self._contiguous():
            return raw[self.offset * size:(self.offset + self.numel) * size].tobytes()
        # Strided layouts (transposed or expanded tensors) are rare in state dicts: gather with numpy.
        try:
            import numpy as np
        except ImportError:
            raise ConvertError(f"a non-contiguous tensor (strides {list(self.stride)}) needs numpy, which this Python lacks") from None

        base = np.frombuffer(raw, dtype=self.storage.kind.numpy)[self.offset:]
        view = np.lib.stride_tricks.as_strided(base, shape=self.shape, strides=[s * size for s in self.stride], writeable=False)
        return np.ascontiguousarray(view).tobytes()


def _rebuild_tensor(storage, storage_offset, size, stride, *ignored):
    # torch._utils._rebuild_tensor(_v2): the extra arguments (requires_grad, hooks, metadata) do not
    # matter for stored values.
    return LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, *ignored):
    return data


class TrainingArgs:
    """Stands in for argparse.Namespace: unpickling only fills its __dict__; it has no behaviour."""


def _latin1_encode(text, encoding="latin1"):
    # Protocol-2 pickles store bytes as _codecs.encode(str, "latin1"); no other codec is needed.
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("argparse", "Namespace"): TrainingArgs,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _latin1_encode,
    **{("torch", name): kind for name, kind in STORAGE_TYPES.items()},
}


class CheckpointUnpickler(pickle.Unpickler):
    """Resolves only ALLOWED_GLOBALS; persistent ids become lazy Storage objects."""

    def __init__(self, file, read_bytes):
        super().__init__(file, encoding="utf-8")
        self.read_bytes = read_bytes
        self.storages = {}  # key -> root Storage

    def find_class(self, module, name):
        # Protocol-2 pickles (torch.save's default) name the builtins module by its Python 2 name.
        found = ALLOWED_GLOBALS.get(("builtins" if module == "__builtin__" else module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}': a weights checkpoint does not need it, and "
                "unpickling it could run arbitrary code"
            )
        return found

    def persistent_load(self, pid):
        # ZIP format: ('storage', type, key, location, numel); legacy: the same plus view_metadata.
        if not isinstance(pid, tuple) or len(pid) not in (5, 6) or pid[0] != "storage":
            kind = pid[0] if isinstance(pid, tuple) and pid else type(pid).__name__
            raise pickle.UnpicklingError(f"unsupported persistent object {kind!r} (only tensor storages are)")
        kind, key, numel = pid[1], pid[2], pid[4]
        if not isinstance(kind, StorageType) or not isinstance(key, str) or type(numel) is not int or numel < 0:
            raise pickle.UnpicklingError("malformed storage reference")
        root = self.storages.setdefault(key, Storage(key, kind, numel, self.read_bytes))
        if root.kind is not kind or root.numel != numel:
            raise pickle.UnpicklingError(f"storage '{key}' is referenced with two different types or sizes")
        view = pid[5] if len(pid) == 6 else None
        if view is None:
            return root
        view_key, offset, view_numel = view
        if type(offset) is not int or type(view_numel) is not int or offset < 0 or view_numel < 0 or offset + view_numel > numel:
            raise pickle.UnpicklingError(f"storage view of '{key}' lies outside it")
        return Storage(key, kind, view_numel, self.read_bytes, offset)


def _read_zip(path):
    archive = zipfile.ZipFile(path)
    names = archive.namelist()
    # torch.load would hand such a file to torch.jit.load, which runs TorchScript.
    if any(n == "constants.pkl" or n.endswith("/constants.pkl") for n in names):
        raise ConvertError(f"{path}: is a TorchScript archive, not a checkpoint; refusing to load it")
    pickles = [n for n in names if n == "data.pkl" or (n.endswith("/data.pkl") and n.count("/") == 1)]
    if len(pickles) != 1:
        raise ConvertError(f"{path}: is a ZIP file without exactly one data.pkl, not a PyTorch checkpoint")
    prefix = pickles[0][: -len("data.pkl")]

    def read_bytes(key):
        try:
            return archive.read(prefix + "data/" + key)
        except KeyError:
            raise ConvertError(f"{path}: storage '{key}' is missing from the archive") from None

    return CheckpointUnpickler(io.BytesIO(archive.read(pickles[0])), read_bytes).load()


def _read_legacy(path):
    """Pre-1.6 layout: pickles of the magic number, protocol and system info, the object, the
    sorted storage keys, then each storage as an int64 element count and its raw bytes."""
    f = open(path, "rb")
    size = os.fstat(f.fileno()).st_size
    offsets = {}

    def read_bytes(key):
        start, nbytes = offsets[key]
        f.seek(start)
        return f.read(nbytes)

    header = CheckpointUnpickler(f, read_bytes)
    try:
        magic = header.load()
    except pickle.UnpicklingError as e:
        if "refusing" in str(e):
            raise
        raise ConvertError(f"{path}: not a PyTorch checkpoint (neither a ZIP archive nor the legacy format)") from None
    if magic != LEGACY_MAGIC:
        raise ConvertError(f"{path}: not a PyTorch checkpoint (neither a ZIP archive nor the legacy format)")
    if header.load() != LEGACY_PROTOCOL:
        raise ConvertError(f"{path}: unsupported legacy checkpoint protocol")
    info = header.load()
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise ConvertError(f"{path}: legacy checkpoint written on a big-endian machine; not supported")
    main = CheckpointUnpickler(f, read_bytes)
    obj = main.load()
    keys = CheckpointUnpickler(f, read_bytes).load()
    if not isinstance(keys, list) or set(keys) != set(main.storages):
        raise ConvertError(f"{path}: storage list does not match the storages the object uses")
    position = f.tell()
    for key in keys:
        f.seek(position)
        raw = f.read(8)
        if len(raw) != 8:
            raise ConvertError(f"{path}: truncated at storage '{key}'")
        (numel,) = struct.unpack("<q", raw)
        storage = main.storages[key]
        nbytes = numel * storage.kind.itemsize
        if numel != storage.numel or position + 8 + nbytes > size:
            raise ConvertError(f"{path}: storage '{key}' has {numel} elements on disk, want {storage.numel}, or is truncated")
        offsets[key] = (position + 8, nbytes)
        position += 8 + nbytes
    return obj


def load_checkpoint(path):
    """The unpickled object, with LazyTensor values in place of tensors."""
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path)
        if tarfile.is_tarfile(path):
            raise ConvertError(f"{path}: a tar-based checkpoint from torch < 0.4; not supported")
        return _read_legacy(path)
    except pickle.UnpicklingError as e:
        raise ConvertError(f"{path}: {e}") from None
    except ConvertError:
        raise
    except Exception as e:  # anything else a malformed pickle or archive provokes
        raise ConvertError(f"{path}: damaged checkpoint: {type(e).__name__}: {e}") from None


# ------------------------------------------------------------------------------------------------
# Choosing the weights
# ------------------------------------------------------------------------------------------------

def select_state_dict(obj, which, path):
    """(state dict of LazyTensor, which part was taken, args dict or None)."""
    training = isinstance(obj, dict) and any(isinstance(obj.get(k), dict) for k in ("model", "ema"))
    if training:
        part = which or ("ema" if "ema" in obj else "model")
        if part not in obj:
            have = ", ".join(sorted(str(k) for k in obj))
            raise ConvertError(f"{path}: --which {part}: the checkpoint has no '{part}' entry (it has: {have})")
        state, args = obj[part], obj.get("args")
    elif isinstance(obj, dict) and any(isinstance(v, LazyTensor) for v in obj.values()):
        if which:
            raise ConvertError(f"{path}: --which {which}: this is a plain state dict, not a training checkpoint")
        part, state, args = "state_dict", obj, None
    else:
        kind = type(obj).__name__
        keys = ", ".join(sorted(str(k) for k in obj)[:8]) if isinstance(obj, dict) else ""
        raise ConvertError(f"{path}: neither a state dict nor a training checkpoint ({kind}{': ' + keys if keys else ''})")
    if not isinstance(state, dict):
        raise ConvertError(f"{path}: '{part}' is a {type(state).__name__}, not a state dict")
    for name, value in state.items():
        if not isinstance(name, str):
            raise ConvertError(f"{path}: '{part}' has a non-string key {name!r}")
        if not isinstance(value, LazyTensor):
            raise ConvertError(f"{path}: '{part}' entry '{name}' is a {type(value).__name__}, not a tensor")
    # Checkpoints saved from a DistributedDataParallel wrapper prefix every name with "module.".
    if state and all(k.startswith("module.") for k in state):
        print(f"note: stripping the 'module.' prefix from all {len(state)} names", file=sys.stderr)
        state = collections.OrderedDict((k[len("module."):], v) for k, v in state.items())
    if isinstance(args, TrainingArgs):
        args = dict(vars(args))
    elif args is not None and not isinstance(args, dict):
        print(f"note: ignoring 'args' of type {type(args).__name__}", file=sys.stderr)
        args = None
    return state, part, args


# ------------------------------------------------------------------------------------------------
# Metadata
# ------------------------------------------------------------------------------------------------

def canonical_preset(name):
    """'dit-xl2' -> 'DiT-XL/2', or None when it is not a DiT preset name."""
    match = PRESET.match(name) if isinstance(name, str) else None
    return f"DiT-{match.group(1).upper()}/{match.group(2)}" if match else None


# (depth, hidden) of each preset size and its number of heads (DiT's models.py)
PRESET_SHAPES = {(12, 384): ("S", 6), (12, 768): ("B", 12), (24, 1024): ("L", 16), (28, 1152): ("XL", 16)}


def shape_facts(state):
    """What the tensor shapes say: depth, hidden width, patch size, and the head count when routers
    give it ((H - 1, D) head routers); None where the shapes do not say."""
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.") and k.count(".") >= 2})
    embed = state.get("x_embedder.proj.weight")
    hidden, patch = (embed.shape[0], embed.shape[2]) if embed is not None and len(embed.shape) == 4 else (None, None)
    router = state.get("blocks.0.attn_rate.router.weight")
    heads = router.shape[0] + 1 if router is not None and len(router.shape) == 2 else None
    return depth or None, hidden, patch, heads


def preset_of_shapes(depth, hidden, patch):
    """The preset the shapes are, e.g. 'DiT-XL/2', and its heads; (None, None) for other shapes."""
    size, heads = PRESET_SHAPES.get((depth, hidden), (None, None))
    if size is None or patch not in (2, 4, 8):
        return None, None
    return f"DiT-{size}/{patch}", heads


def settle_heads(meta, state, model_given):
    """Makes the head count known where the shapes allow it, and says so; warns where they do not.
    A preset named by the checkpoint's own args (not by --model, model_given) that its shapes
    contradict is not kept as `model`."""
    depth, hidden, patch, router_heads = shape_facts(state)
    shaped, preset_heads = preset_of_shapes(depth, hidden, patch)
    named = meta.get("model")
    if named and named != shaped and not model_given:
        print(f"warning: the checkpoint's args name {named}, but its shapes are depth {depth}, hidden {hidden}, "
              f"patch {patch}: not stored as model", file=sys.stderr)
        del meta["model"]
        named = None
    if "heads" in meta or named:
        return
    if router_heads:
        meta["heads"] = str(router_heads)
        print(f"note: {router_heads} heads, from the shape of the head routers", file=sys.stderr)
    elif shaped:
        meta["model"] = shaped
        print(f"note: the shapes are those of {shaped} ({preset_heads} heads); stored as model", file=sys.stderr)
    else:
        print(f"warning: the shapes (depth {depth}, hidden {hidden}) do not give the number of heads; pass --heads N "
              f"or --model NAME here, or give --heads to dydit convert", file=sys.stderr)


def build_metadata(opts, args, part, source):
    meta = collections.OrderedDict()
    meta["source"] = os.path.basename(source)
    meta["source_part"] = part
    if args is not None:
        meta["train_args"] = json.dumps({str(k): v for k, v in args.items()}, sort_keys=True, default=repr)
        preset = canonical_preset(args.get("model"))
        if preset:
            meta["model"] = preset
        image_size = args.get("image_size")
        if isinstance(image_size, int) and not isinstance(image_size, bool) and image_size > 0 and image_size % 8 == 0:
            meta["input_size"] = str(image_size // 8)  # the SD VAE downsamples by 8 (DiT train.py)
        classes = args.get("num_classes")
        if isinstance(classes, int) and not isinstance(classes, bool) and classes > 0:
            meta["num_classes"] = str(classes)
    if opts.model:
        preset = canonical_preset(opts.model)
        if not preset:
            raise ConvertError(f"--model {opts.model}: not a DiT preset (DiT-S/2 ... DiT-XL/8)")
        if meta.get("model", preset) != preset:
            print(f"note: --model {preset} replaces the checkpoint's model {meta['model']}", file=sys.stderr)
        meta["model"] = preset
    for key in ("heads", "input_size", "num_classes"):
        value = getattr(opts, key)
        if value is not None:
            if value < 1:
                raise ConvertError(f"--{key.replace('_', '-')} must be positive (got {value})")
            meta[key] = str(value)
    if opts.class_dropout is not None:
        if not 0 <= opts.class_dropout < 1:
            raise ConvertError(f"--class-dropout must be in [0, 1) (got {opts.class_dropout})")
        meta["class_dropout"] = repr(opts.class_dropout)
    for item in opts.meta:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConvertError(f"--meta {item}: want KEY=VALUE")
        meta[key] = value
    return meta


# ------------------------------------------------------------------------------------------------
# safetensors output
# ------------------------------------------------------------------------------------------------

def write_safetensors(path, state, metadata):
    """Header first (sizes are known up front), then each tensor; atomically via a temporary file."""
    header = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name, t in state.items():
        header[name] = {"dtype": t.dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
        offset += t.nbytes
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)
    if len(text) > SAFETENSORS_MAX_HEADER:
        raise ConvertError(f"{path}: the header would be {len(text)} bytes, over the safetensors limit")
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp.", dir=directory)
    except OSError as e:
        raise ConvertError(f"{path}: cannot create a temporary file beside it: {e.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(struct.pack("<Q", len(text)))
            out.write(text)
            for t in state.values():
                out.write(t.tobytes())
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ------------------------------------------------------------------------------------------------

def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Convert an official DiT/DyDiT .pt checkpoint into safetensors with unchanged tensor names, "
        "without executing pickled code.",
        epilog="example: convert_checkpoint.py DiT-XL-2-256x256.pt dit-xl2.safetensors --model DiT-XL/2",
    )
    p.add_argument("input", help="a .pt file: plain state dict, or training checkpoint {model, ema, opt, args}")
    p.add_argument("output", help="the .safetensors file to write")
    p.add_argument("--which", choices=("ema", "model"), help="weights to take from a training checkpoint (default: ema when present)")
    p.add_argument("--model", help="DiT preset name stored as metadata, e.g. DiT-XL/2 (gives the number of heads)")
    p.add_argument("--heads", type=int, help="number of attention heads, stored as metadata")
    p.add_argument("--input-size", type=int, help="latent size (image size / 8), stored as metadata")
    p.add_argument("--num-classes", type=int, help="number of classes without the null class, stored as metadata")
    p.add_argument("--class-dropout", type=float, help="label dropout probability (0: no null class row), stored as metadata")
    p.add_argument("--meta", action="append", default=[], metavar="KEY=VALUE", help="extra metadata entry (repeatable)")
    return p.parse_args(argv)


def main(argv):
    opts = parse_args(argv)
    try:
        obj = load_checkpoint(opts.input)
        state, part, args = select_state_dict(obj, opts.which, opts.input)
        metadata = build_metadata(opts, args, part, opts.input)
        settle_heads(metadata, state, model_given=opts.model is not None)
        write_safetensors(opts.output, state, metadata)
    except ConvertError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"error: {e.filename or opts.output}: {e.strerror}", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"error: {opts.input}: out of memory while converting", file=sys.stderr)
        return 1
    total = sum(t.numel for t in state.values())
    print(f"wrote {opts.output}: {len(state)} tensors, {total} values from '{part}' of {opts.input}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
