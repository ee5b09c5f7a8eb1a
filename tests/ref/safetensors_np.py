"""Minimal safetensors reader/writer on numpy alone (docs/algorithm.md 7.5).

The test fixtures must be readable and writable by the system python3, which has numpy and torch
but not the `safetensors` package, so this module implements the format directly:

    u64 little-endian N | N bytes of JSON header (space padded) | byte buffer

Header entries are {"dtype", "shape", "data_offsets": [begin, end)} with offsets relative to the
start of the byte buffer, plus an optional "__metadata__" map of string to string.
"""
import json
import struct

import numpy as np

# Reading: safetensors dtype -> little-endian numpy dtype of the stored bytes.
_READ_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype("<u2"),  # widened to float32 by _decode
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "U8": np.dtype("u1"),
}

# Writing: numpy dtype -> safetensors dtype.
_WRITE_DTYPES = {
    np.dtype("float64"): "F64",
    np.dtype("float32"): "F32",
    np.dtype("int64"): "I64",
    np.dtype("int32"): "I32",
    np.dtype("uint8"): "U8",
}

_MAX_HEADER = 100 * 1024 * 1024  # the reference reader's cap


class SafetensorsError(ValueError):
    """A file that does not follow the safetensors layout."""


def _decode(raw, dtype_name, shape):
    """Bytes of one tensor -> array; half precision types become float32 so callers see one float kind."""
    arr = np.frombuffer(raw, dtype=_READ_DTYPES[dtype_name]).reshape(shape)
    if dtype_name == "F16":
        return arr.astype(np.float32)
    if dtype_name == "BF16":
        # bf16 is the high half of an f32: shift the 16 stored bits into place.
        return (arr.astype(np.uint32) << 16).view(np.float32)
    return arr.astype(arr.dtype.newbyteorder("="), copy=True)


def load(path):
    """Reads a safetensors file; returns (dict name -> np.ndarray, metadata dict or {})."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise SafetensorsError(f"{path}: {len(blob)} bytes, too short for a header length")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise SafetensorsError(f"{path}: header length {n} does not fit the file ({len(blob)} bytes)")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    buffer = memoryview(blob)[8 + n:]
    metadata = header.pop("__metadata__", None) or {}

    tensors = {}
    covered = []
    for name, entry in header.items():
        dtype_name = entry["dtype"]
        if dtype_name not in _READ_DTYPES:
            raise SafetensorsError(f"{path}: tensor '{name}' has unsupported dtype {dtype_name}")
        shape = tuple(int(s) for s in entry["shape"])
        begin, end = (int(o) for o in entry["data_offsets"])
        want = int(np.prod(shape, dtype=np.int64)) * _READ_DTYPES[dtype_name].itemsize
        if not (0 <= begin <= end <= len(buffer)) or end - begin != want:
            raise SafetensorsError(
                f"{path}: tensor '{name}' offsets [{begin}, {end}) do not hold {dtype_name} {list(shape)}"
            )
        tensors[name] = _decode(buffer[begin:end], dtype_name, shape)
        covered.append((begin, end))
    _check_coverage(path, covered, len(buffer))
    return tensors, metadata


def _check_coverage(path, ranges, size):
    """The format forbids holes and overlaps: the tensors must tile the buffer exactly."""
    pos = 0
    for begin, end in sorted(ranges):
        if begin != pos:
            raise SafetensorsError(f"{path}: byte buffer has a hole or overlap at offset {pos}")
        pos = end
    if pos != size:
        raise SafetensorsError(f"{path}: byte buffer has {size - pos} trailing bytes not owned by a tensor")


def save(path, tensors, metadata=None):
    """Writes tensors (name -> array-like); the header lists them in insertion order.

    The byte buffer holds the widest element types first, so with the padded header every tensor
    starts at a file offset aligned to its element size (C readers may cast mmapped pointers).
    Metadata values are stored as strings, as the format requires (numbers go through str()).
    """
    arrays = {}
    for name, value in tensors.items():
        arr = np.asarray(value)
        arr = arr.astype(arr.dtype.newbyteorder("="), copy=False)
        if arr.dtype not in _WRITE_DTYPES:
            raise SafetensorsError(f"tensor '{name}': cannot write numpy dtype {arr.dtype}")
        arrays[name] = arr.astype(arr.dtype.newbyteorder("<"), order="C")  # keeps 0-dim shapes

    entries = {name: None for name in arrays}
    chunks = []
    offset = 0
    for name in sorted(arrays, key=lambda k: -arrays[k].dtype.itemsize):  # stable: ties keep order
        raw = arrays[name].tobytes()
        entries[name] = {
            "dtype": _WRITE_DTYPES[arrays[name].dtype.newbyteorder("=")],
            "shape": list(arrays[name].shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}} if metadata else {}
    header.update(entries)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(8 + len(text)) % 8)  # 8 + N a multiple of 8
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in chunks:
            f.write(raw)
