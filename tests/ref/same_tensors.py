"""Bitwise equality of safetensors files, pair by pair: the tensors (names, dtypes, shapes and
bytes) must be identical; metadata may differ (runs record their options, --device included).

usage: same_tensors.py PREFIX NAME A B [NAME A B ...]   prints "PASS PREFIX.NAME" or "FAIL PREFIX.NAME: why"
"""
import sys

import numpy as np

import safetensors_np


def compare(a_path, b_path):
    """(equal, what was compared or what differs)"""
    a, b = safetensors_np.load(a_path)[0], safetensors_np.load(b_path)[0]
    if sorted(a) != sorted(b):
        return False, f"tensor names differ: {sorted(set(a) ^ set(b))[:5]}"
    for name in a:
        x, y = np.asarray(a[name]), np.asarray(b[name])
        if x.dtype != y.dtype or x.shape != y.shape:
            return False, f"{name}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
        if x.tobytes() != y.tobytes():
            diff = np.abs(x.astype(np.float64) - y.astype(np.float64))
            return False, f"{name}: {np.count_nonzero(diff)} elements differ, max |difference| {diff.max():.3g}"
    return True, f"{len(a)} tensors"


def main(argv):
    prefix, rest = argv[1], argv[2:]
    ok = True
    for i in range(0, len(rest), 3):
        name, a_path, b_path = rest[i:i + 3]
        try:
            good, detail = compare(a_path, b_path)
        except Exception as e:  # a missing or unreadable file is a failure of this pair
            detail, good = f"{type(e).__name__}: {e}", False
        ok &= good
        print(f"PASS {prefix}.{name} ({detail})" if good else f"FAIL {prefix}.{name}: {detail}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
