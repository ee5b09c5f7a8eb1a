"""Compares every tensor of a reference safetensors file with an output file.

    python3 compare.py OUT REF [--tol 1e-5] [--case NAME]

Error measure: ||out - ref|| / ||ref|| over the whole tensor (for one-element tensors
|out - ref| / max(|ref|, 1e-12)). Norm-wise errors let float32 rounding average out while any
wrong index, sign or scale shows up as an error of order one. Prints one PASS/FAIL line per
reference tensor and the worst one; exits non-zero on any failure. Extra tensors in OUT are ignored.
The DyDiT masks (attn_mask, mlp_mask, token_mask) are 0/1 decisions and must match exactly.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

TINY = 1e-12
EXACT = ("attn_mask", "mlp_mask", "token_mask")  # compared element by element, no tolerance


def relative_error(out, ref):
    out = out.astype(np.float64)
    ref = ref.astype(np.float64)
    if ref.size == 1:
        return abs(out.item() - ref.item()) / max(abs(ref.item()), TINY)
    return float(np.linalg.norm(out - ref) / max(np.linalg.norm(ref), TINY))


def same_shape(a, b):
    """Shapes match; a scalar may be written as 0-dim or as shape (1)."""
    if a.size == 1 and b.size == 1 and a.ndim <= 1 and b.ndim <= 1:
        return True
    return a.shape == b.shape


def compare(out, ref, tol, case):
    """Prints one line per reference tensor; returns the number of failures."""
    failures = 0
    worst = (-1.0, None)
    for name, expected in ref.items():
        label = f"parity.{case}.{name}"
        if name not in out:
            print(f"FAIL {label}: missing from the output")
            failures += 1
            continue
        got = out[name]
        if not same_shape(got, expected):
            print(f"FAIL {label}: shape {list(got.shape)}, want {list(expected.shape)}")
            failures += 1
            continue
        if name in EXACT:
            wrong = int(np.sum(got.astype(np.float64) != expected.astype(np.float64)))
            if wrong:
                print(f"FAIL {label}: {wrong} of {expected.size} values differ")
                failures += 1
            else:
                print(f"PASS {label} (exact, {expected.size} values)")
            continue
        err = relative_error(got, expected)
        if not np.isfinite(err):
            print(f"FAIL {label}: output is not finite")
            failures += 1
        elif err > tol:
            print(f"FAIL {label}: rel {err:.2g} > {tol:g}")
            failures += 1
        else:
            print(f"PASS {label} (rel {err:.2g})")
        worst = max(worst, (err if np.isfinite(err) else np.inf, name))
    if worst[1] is not None:
        print(f"worst parity.{case}: {worst[1]} rel {worst[0]:.2g} (tol {tol:g})")
    return failures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("ref")
    ap.add_argument("--tol", type=float, default=1e-5)
    ap.add_argument("--case", default=None, help="name used in the PASS/FAIL lines (default: REF's file name)")
    args = ap.parse_args(argv)
    case = args.case or os.path.splitext(os.path.basename(args.ref))[0]
    ref, _ = safetensors_np.load(args.ref)
    try:
        out, _ = safetensors_np.load(args.out)
    except (OSError, ValueError) as e:
        print(f"FAIL parity.{case}: cannot read {args.out}: {e}")
        return 1
    return 1 if compare(out, ref, args.tol, case) else 0


if __name__ == "__main__":
    sys.exit(main())
