"""Wall time of the SD VAE's encoder and decoder in PyTorch (tests/ref/vae_ref.py in float32, the
same random weights as bench/vae_cpu.sh loads) with a given thread count, for comparison with
build/bench/vae_cpu. Prints one line per half.

    python3 bench/torch_vae.py BATCH SIZE REPEATS THREADS
"""
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "ref"))
import vae_case  # noqa: E402
import vae_ref  # noqa: E402


def best_time(fn, repeats):
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main():
    batch, size, repeats, threads = (int(a) for a in sys.argv[1:5])
    torch.set_num_threads(threads)
    cfg = vae_ref.SD_VAE
    params = {k: torch.from_numpy(v) for k, v in vae_case.random_params(cfg, np.random.default_rng(0)).items()}
    images = torch.rand(batch, cfg.image_channels, size, size) * 2 - 1
    side = size // cfg.downsampling
    latents = torch.randn(batch, cfg.latent_channels, side, side)
    with torch.no_grad():
        for name, fn in (("encode", lambda: vae_ref.encode(params, cfg, images)),
                         ("decode", lambda: vae_ref.decode(params, cfg, latents))):
            s = best_time(fn, repeats)
            print(f"torch {name}  batch {batch} of {size}x{size}: {s:.2f} s, {batch / s:.3f} images/s "
                  f"({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
