#!/usr/bin/env bash
# `dydit decode` end to end on a tiny random VAE: the .npz (read with numpy) and the PNG grid (read
# with PIL) must hold the reference decoder's images of the stored latents, converted to bytes as
# DiT's samplers do; the .npz writer's ZIP64 form must satisfy Python's zipfile; bad input must end
# with one error line. Usage, from the repository root: bash tests/vae_decode.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/vae_decode.sh WORKDIR [PYTHON]}/vae_decode
prefix=decode
source tests/lib.sh
python=${2:-/usr/bin/python3}
status=0
mkdir -p "$work"

case=$work/case
if ! "$python" tests/ref/vae_case.py case --out "$case" --names compvis --channels 16,32 --groups 8 --layers 1 \
    --size 16 --batch 5; then
    echo "FAIL decode.case: vae_case.py failed"
    exit 1
fi

# five latents in batches of two: three batches, progress lines, a 2-column grid with an empty cell
if ./dydit decode --vae "$case/vae.safetensors" --latents "$case/stored.safetensors" --out "$work/grid.png" \
    --nrow 2 --npz "$work/samples.npz" --batch 2 >"$work/out.txt" 2>"$work/err.txt"; then
    pass run "$(tail -n 1 "$work/err.txt")"
    grep -q '^decoded 5/5 ' "$work/err.txt" && pass progress || fail progress "no 'decoded 5/5' line"
    # one thread: the same bytes (fixed-order reductions, no float atomics)
    ./dydit decode --vae "$case/vae.safetensors" --latents "$case/stored.safetensors" --npz "$work/one.npz" \
        --batch 2 --threads 1 2>/dev/null
    cmp -s "$work/samples.npz" "$work/one.npz" && pass thread_count_independent ||
        fail thread_count_independent "the .npz differs with --threads 1"
    "$python" - "$case/decode_ref.safetensors" "$work/samples.npz" "$work/grid.png" <<'PY' || status=1
import sys
import numpy as np
from PIL import Image
sys.path.insert(0, "tests/ref")
import safetensors_np

ref_path, npz_path, png_path = sys.argv[1:]
ref = safetensors_np.load(ref_path)[0]["images"]  # (5, 3, 16, 16) float64, decoded from the unscaled latents
want = np.clip(127.5 * ref + 128, 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def report(ok, name, detail):
    print(f"{'PASS' if ok else 'FAIL'} decode.{name}{' (' if ok else ': '}{detail}{')' if ok else ''}")
    return ok


samples = np.load(npz_path)["arr_0"]
ok = report(samples.dtype == np.uint8 and samples.shape == want.shape, "npz.layout",
            f"{samples.dtype} {samples.shape}, want uint8 {want.shape}")
if ok:
    # float32 against float64 (and /0.18215 in float32): a value next to an integer may truncate
    # to its neighbour; nothing may be further off
    diff = np.abs(samples.astype(int) - want.astype(int))
    report(diff.max() <= 1 and (diff > 0).mean() < 0.01, "npz.pixels",
           f"max difference {diff.max()}, {(diff > 0).mean():.2%} of the bytes off by one")
grid = np.asarray(Image.open(png_path))
ok = report(grid.shape == (3 * 18 + 2, 2 * 18 + 2, 3), "png.size", f"{grid.shape}, want 3 rows and 2 columns of 16+2")
if ok:
    tiles = all(np.array_equal(grid[2 + 18 * (i // 2):18 + 18 * (i // 2), 2 + 18 * (i % 2):18 + 18 * (i % 2)], samples[i])
                for i in range(5))
    mask = np.ones(grid.shape[:2], bool)
    for i in range(5):
        mask[2 + 18 * (i // 2):18 + 18 * (i // 2), 2 + 18 * (i % 2):18 + 18 * (i % 2)] = False
    report(tiles and not grid[mask].any(), "png.grid", "each tile equals its .npz image; padding and the empty cell black")
PY
else
    fail run "$(tail -n 3 "$work/err.txt")"
fi

# The ZIP64 form of the writer, forced on a small array: zipfile's CRC check, numpy's reader.
build/tests/parity_vae npz "$work/zip64.npz" zip64 2>"$work/err.txt" || fail zip64 "$(cat "$work/err.txt")"
"$python" - "$work/zip64.npz" <<'PY' || status=1
import sys
import zipfile
import numpy as np

path = sys.argv[1]
raw = open(path, "rb").read()
with zipfile.ZipFile(path) as z:
    crc_ok = z.testzip() is None
arr = np.load(path)["arr_0"]
ok = (crc_ok and b"PK\x06\x06" in raw and b"PK\x06\x07" in raw and arr.shape == (2, 3, 5, 3)
      and np.array_equal(arr.reshape(-1), (np.arange(90) * 7 + 3) % 256))
print(f"{'PASS' if ok else 'FAIL'} decode.zip64_accepted{' (' if ok else ': '}ZIP64 records, CRC, numpy values{')' if ok else ''}")
sys.exit(0 if ok else 1)
PY

./dydit decode --help | grep -q '^usage: dydit decode' && pass help || fail help "no usage line"
"$python" -c "import sys; sys.path.insert(0, 'tests/ref'); import numpy, safetensors_np
safetensors_np.save('$work/three.safetensors', {'latents': numpy.zeros((2, 3, 4, 4), numpy.float32)})"
v=$case/vae.safetensors
expect_error required "--vae and --latents are required" ./dydit decode --latents "$case/stored.safetensors"
expect_error nothing_to_write "nothing to write" ./dydit decode --vae "$v" --latents "$case/stored.safetensors"
expect_error bad_scale "--scale must be in (0, 1000]" ./dydit decode --vae "$v" --latents x --npz y --scale 0
expect_error channels "has shape [2, 3, 4, 4]; want (N, 4, h, w)" ./dydit decode --vae "$v" \
    --latents "$work/three.safetensors" --npz "$work/x.npz"
expect_error no_tensor "no tensor 'latents'" ./dydit decode --vae "$v" --latents "$case/images.safetensors" \
    --npz "$work/x.npz"
expect_error encoder_only "holds no decoder" ./dydit decode --vae "$case/encoder.safetensors" \
    --latents "$case/stored.safetensors" --npz "$work/x.npz"
expect_error bad_vae "missing tensor" ./dydit decode --vae "$case/broken-missing.safetensors" \
    --latents "$case/stored.safetensors" --npz "$work/x.npz"
[ ! -e "$work/x.npz" ] && pass no_partial_output || fail no_partial_output "x.npz exists after failures"
exit $status
