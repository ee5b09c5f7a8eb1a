"""How far two dydit weight files are apart, over all tensors together.

    python3 weights_diff.py A B [--tol T]

Prints "rel R max_abs M bitwise 0|1" with R = ||A - B|| / ||B|| over the concatenation of every
tensor (norm-wise, so float32 rounding averages out while a wrong sample, step or shard shows up
at order 1e-2 and above) and M the largest element difference. With --tol, exits 1 when R > T.
Both files must hold the same tensor names and shapes.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--tol", type=float)
    args = p.parse_args()
    a, _ = safetensors_np.load(args.a)
    b, _ = safetensors_np.load(args.b)
    if sorted(a) != sorted(b) or any(a[k].shape != b[k].shape for k in a):
        print(f"{args.a} and {args.b} hold different tensors")
        return 1
    names = sorted(a)
    va = np.concatenate([a[k].astype(np.float64).ravel() for k in names])
    vb = np.concatenate([b[k].astype(np.float64).ravel() for k in names])
    rel = float(np.linalg.norm(va - vb) / max(np.linalg.norm(vb), 1e-300))
    bitwise = all(np.array_equal(a[k], b[k]) for k in names)
    print(f"rel {rel:.3g} max_abs {float(np.max(np.abs(va - vb))):.3g} bitwise {int(bitwise)}")
    return 1 if args.tol is not None and rel > args.tol else 0


if __name__ == "__main__":
    sys.exit(main())
