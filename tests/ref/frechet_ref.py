"""The Frechet distance of tests/parity_frechet.c against numpy, on random correlated features.

For each case two feature sets are drawn (different means, mixing matrices, sizes; one of them of
lower rank than its dimension, so its covariance is singular), written to a safetensors file, and
dydit's distance is compared with numpy's, computed two independent ways:
  - the trace term as the sum of square roots of the eigenvalues of the non-symmetric S1 S2
    (numpy.linalg.eigvals; they are real and >= 0 up to round-off),
  - the trace of sqrtm(sqrt(S1) S2 sqrt(S1)) with square roots from numpy.linalg.eigh.
Usage: frechet_ref.py WORKDIR PARITY_BINARY
"""
import os
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402


def sqrtm_psd(m):
    w, v = np.linalg.eigh(m)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def distances(a, b):
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    base = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2)
    eig = np.linalg.eigvals(s1 @ s2)
    via_eigvals = base - 2 * np.sum(np.sqrt(np.clip(eig.real, 0, None)))
    r = sqrtm_psd(s1)
    via_eigh = base - 2 * np.trace(sqrtm_psd(r @ s2 @ r))
    return via_eigvals, via_eigh


def main():
    work, binary = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(5)
    failed = 0
    for name, dim, n1, n2, rank in [("d16", 16, 300, 500, 16), ("d128", 128, 2000, 1500, 128),
                                    ("d128_singular", 128, 1000, 1200, 90)]:
        a = rng.standard_normal((n1, dim)) @ rng.standard_normal((dim, dim)) * 0.5 + rng.standard_normal(dim)
        b = rng.standard_normal((n2, rank)) @ rng.standard_normal((rank, dim)) * 0.4 + rng.standard_normal(dim)
        a, b = np.maximum(a, 0).astype(np.float32), np.maximum(b, 0).astype(np.float32)  # ReLU-like features
        path = os.path.join(work, f"frechet_{name}.safetensors")
        safetensors_np.save(path, {"a": a, "b": b})
        got = float(subprocess.run([binary, path], check=True, capture_output=True, text=True).stdout)
        want1, want2 = distances(a.astype(np.float64), b.astype(np.float64))
        err = max(abs(got - want1), abs(got - want2)) / abs(want2)
        ok = err < 1e-7
        failed += not ok
        print(f"{'PASS' if ok else 'FAIL'} frechet.numpy_{name}"
              f"{' (' if ok else ': '}dydit {got:.10g}, numpy eigvals {want1:.10g}, eigh {want2:.10g}, rel {err:.1e}"
              f"{')' if ok else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
