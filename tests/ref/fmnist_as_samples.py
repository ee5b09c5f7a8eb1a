"""Writes Fashion-MNIST test images [0, N) as a `dydit sample --latents` file: (N, 1, 32, 32)
pixel-space latents v / 127.5 - 1, padded by 2 with the background, and their labels (shifted by
`--label-shift` classes, to make wrong labels). Usage: fmnist_as_samples.py OUT N [--label-shift K]
"""
import argparse
import gzip
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402

DIR = "/usr/share/datasets/fashion-mnist"


def idx(name):
    with gzip.open(os.path.join(DIR, name)) as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("n", type=int)
    p.add_argument("--label-shift", type=int, default=0)
    a = p.parse_args()
    images = idx("t10k-images-idx3-ubyte.gz")[: a.n].astype(np.float64) / 127.5 - 1
    labels = (idx("t10k-labels-idx1-ubyte.gz")[: a.n].astype(np.int64) + a.label_shift) % 10
    latents = np.pad(images, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0)[:, None].astype(np.float32)
    safetensors_np.save(a.out, {"latents": latents, "labels": labels})


if __name__ == "__main__":
    main()
