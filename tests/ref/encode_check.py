"""References for tests/encode.sh: what `dydit encode` must have written, computed independently.

    encode_check.py make-folder DIR            an ImageNet-style tree of awkward images
    encode_check.py mnist OUT FMDIR SPLIT      shards of Fashion-MNIST vs a gzip + numpy reading
    encode_check.py folder OUT INPUT SIZE [--grayscale] [--flip]
                                               shards of a folder vs PIL's ADM center crop
    encode_check.py vae POSTERIOR SAMPLE INPUT SIZE VAE CHANNELS LAYERS GROUPS
                                               sd-vae shards (flip storage, and one baked sample) vs
                                               the PyTorch VAE reference (tests/ref/vae_ref.py) on
                                               the same crops
    encode_check.py make-jpegs DIR N           N random 256x256 JPEGs in one class (throughput)

Each check prints one line and exits non-zero on a mismatch. The folder reference is DiT's own
preprocessing (ImageFolder's convert("RGB"), then center_crop_arr with PIL BOX/BICUBIC and the
centred crop), except for 16-bit PNGs, which PIL reduces by clipping; their reference image is the
high byte of every sample, then the same PIL pipeline.
"""
import gzip
import json
import os
import struct
import sys
import zlib

import numpy as np
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import safetensors_np  # noqa: E402


def read_set(out):
    """All shards of a set: (index dict, values, std or None, labels, metadata of shard 0)."""
    with open(os.path.join(out, "index.json")) as f:
        index = json.load(f)
    values, stds, labels, meta0 = [], [], [], None
    for entry in index["shards"]:
        tensors, meta = safetensors_np.load(os.path.join(out, entry["file"]))
        meta0 = meta0 or meta
        assert int(meta["count"]) == entry["count"], entry
        if meta["storage"] == "posterior":
            values.append(tensors["mean"])
            stds.append(tensors["std"])
        else:
            values.append(tensors["latents"])
        labels.append(tensors["labels"])
    std = np.concatenate(stds) if stds else None
    return index, np.concatenate(values), std, np.concatenate(labels), meta0


def expect(ok, message):
    if not ok:
        print("error: " + message)
        sys.exit(1)


def check_mnist(out, fmdir, split):
    prefix = "train" if split == "train" else "t10k"
    raw = gzip.open(os.path.join(fmdir, f"{prefix}-images-idx3-ubyte.gz")).read()
    magic, n, rows, cols = struct.unpack(">4i", raw[:16])
    images = np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols)
    lab = gzip.open(os.path.join(fmdir, f"{prefix}-labels-idx1-ubyte.gz")).read()
    want_labels = np.frombuffer(lab, np.uint8, offset=8).astype(np.int64)
    index, values, _, labels, meta = read_set(out)
    expect(index["count"] == n and values.shape == (n, 1, 32, 32), f"count {index['count']}, shape {values.shape}")
    expect(index["classes"][0] == "T-shirt/top" and index["classes"][9] == "Ankle boot", "class names")
    canvas = np.zeros((n, 32, 32), np.uint8)  # background 0 around the centred 28 x 28 image
    canvas[:, 2:30, 2:30] = images
    want = (canvas.astype(np.float64) / 127.5 - 1.0).astype(np.float32)
    if index["dtype"] == "F16":
        want = want.astype(np.float16).astype(np.float32)  # numpy rounds to nearest even, as dydit does
    expect(np.array_equal(labels, want_labels), "labels differ")
    diff = np.abs(values[:, 0] - want)
    if diff.max() != 0:
        expect(False, f"pixels differ by up to {diff.max()} (first at {np.argwhere(diff > 0)[0]})")
    expect(values[:, 0, 0, 0].max() == -1.0 and values[0, 0, 2:30, 2:30].max() > 0.5, "padding is not -1")
    print(f"ok: {n} images {index['dtype']} equal to the gzip reading, {len(index['shards'])} shards")


def png_bytes(width, height, color_type, bit_depth, rows):
    """A minimal PNG written by hand (PIL cannot write 16-bit RGB)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\0" + row.tobytes() for row in rows)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def pattern(height, width, channels, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    planes = [127 + 110 * np.sin(xx / (5 + 2 * c) + yy / (9 + c) + seed) for c in range(channels)]
    return np.clip(np.stack(planes, -1) + rng.normal(0, 25, (height, width, channels)), 0, 255)


def make_folder(root):
    for sub in ("cat", "dog", "zebra/sub"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    u8 = lambda a: a.astype(np.uint8)  # noqa: E731
    Image.fromarray(u8(pattern(375, 500, 3, 1))).save(f"{root}/cat/rgb_big.jpg", quality=92)
    Image.fromarray(u8(pattern(200, 300, 1, 2)[..., 0])).save(f"{root}/cat/gray.jpg", quality=90)
    Image.fromarray(u8(pattern(300, 260, 4, 3)), "CMYK").save(f"{root}/cat/cmyk.jpg", quality=90)
    Image.fromarray(u8(pattern(513, 1001, 3, 4))).save(f"{root}/cat/odd.png")
    rgb = Image.fromarray(u8(pattern(240, 320, 3, 5)))
    rgb.convert("P", palette=Image.ADAPTIVE, colors=37).save(f"{root}/dog/palette.png")
    Image.fromarray(u8(pattern(140, 100, 4, 6)), "RGBA").save(f"{root}/dog/rgba.png")
    g16 = (pattern(90, 150, 1, 7)[..., 0] * 257).astype(">u2")
    with open(f"{root}/dog/gray16.png", "wb") as f:
        f.write(png_bytes(150, 90, 0, 16, g16))
    c16 = (pattern(130, 70, 3, 8) * 257).astype(">u2")
    with open(f"{root}/dog/rgb16.png", "wb") as f:
        f.write(png_bytes(70, 130, 2, 16, c16.reshape(130, 70 * 3)))
    Image.fromarray(u8(pattern(30, 20, 3, 9))).save(f"{root}/zebra/upscale.png")
    Image.fromarray(u8(pattern(77, 91, 3, 10))).save(f"{root}/zebra/sub/nested.png")
    Image.fromarray(u8(pattern(300, 300, 3, 11))).save(f"{root}/zebra/corrupt.jpg", quality=90)
    with open(f"{root}/zebra/corrupt.jpg", "r+b") as f:  # cut in the middle of the entropy-coded data
        f.truncate(os.path.getsize(f"{root}/zebra/corrupt.jpg") // 2)
    with open(f"{root}/zebra/notimage.jpg", "wb") as f:
        f.write(np.random.default_rng(12).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with open(f"{root}/zebra/readme.txt", "w") as f:
        f.write("not an image\n")
    print("ok: folder written")


def listing(root):
    """(path, label) in dydit's order: class folders sorted, entries sorted, depth first."""
    items = []

    def walk(d, label):
        for name in sorted(os.listdir(d), key=lambda s: s.encode()):
            p = os.path.join(d, name)
            if name.startswith("."):
                continue
            if os.path.isdir(p):
                walk(p, label)
            elif name.lower().endswith((".jpg", ".jpeg", ".png")):
                items.append((p, label))

    classes = sorted((c for c in os.listdir(root) if os.path.isdir(os.path.join(root, c))), key=lambda s: s.encode())
    for label, c in enumerate(classes):
        walk(os.path.join(root, c), label)
    return classes, items


def reference_rgb(path):
    """The RGB image DiT's ImageFolder sees; None when PIL cannot read it."""
    try:
        im = Image.open(path)
        im.load()
    except Exception:
        return None
    if im.mode in ("I;16", "I;16B", "I"):  # 16-bit gray: the high byte, not PIL's clipping
        return Image.fromarray((np.array(im).astype(np.uint32) >> 8).astype(np.uint8)).convert("RGB")
    return im.convert("RGB")


def read_rgb16(path):
    """The hand-written 16-bit RGB PNG of make_folder, reduced to its high bytes."""
    data = open(path, "rb").read()
    width, height = struct.unpack(">II", data[16:24])
    idat_len = struct.unpack(">I", data[33:37])[0]
    raw = zlib.decompress(data[41:41 + idat_len])
    rows = np.frombuffer(raw, np.uint8).reshape(height, 1 + width * 6)[:, 1:]
    return Image.fromarray((rows.reshape(height, width, 3, 2)[..., 0]).copy())


def center_crop_arr(pil_image, image_size):
    """DiT train.py's preprocessing (ADM), written out."""
    while min(*pil_image.size) >= 2 * image_size:
        pil_image = pil_image.resize(tuple(x // 2 for x in pil_image.size), resample=Image.BOX)
    scale = image_size / min(*pil_image.size)
    pil_image = pil_image.resize(tuple(round(x * scale) for x in pil_image.size), resample=Image.BICUBIC)
    arr = np.array(pil_image)
    crop_y = (arr.shape[0] - image_size) // 2
    crop_x = (arr.shape[1] - image_size) // 2
    return arr[crop_y:crop_y + image_size, crop_x:crop_x + image_size]


def check_folder(out, root, size, grayscale, flip):
    classes, items = listing(root)
    index, values, std, labels, meta = read_set(out)
    expect(index["classes"] == classes, f"classes {index['classes']} vs {classes}")
    wants, want_labels, unreadable = [], [], 0
    for path, label in items:
        im = read_rgb16(path) if path.endswith("rgb16.png") else reference_rgb(path)
        if im is None:
            unreadable += 1
            continue
        crop = center_crop_arr(im, size)
        if grayscale:
            crop = np.array(Image.fromarray(crop).convert("L"))[..., None]  # ITU-R 601 luma
        wants.append(np.transpose(crop, (2, 0, 1)))
        want_labels.append(label)
    want = np.stack(wants).astype(np.int64)
    expect(values.shape[0] == len(wants), f"{values.shape[0]} samples, PIL read {len(wants)} of {len(items)}")
    expect(np.array_equal(labels, np.array(want_labels)), f"labels {labels} vs {want_labels}")
    unflipped = values[:, 0] if flip else values
    got = np.rint((unflipped.astype(np.float64) + 1.0) * 127.5).astype(np.int64)
    exact = np.abs((got / 127.5 - 1.0).astype(np.float32) - unflipped).max()
    expect(exact == 0, f"stored values are not v / 127.5 - 1 (off by {exact})")
    diff = np.abs(got - want)
    worst = int(diff.max())
    # tolerance: one 8-bit level (PIL rounds its fixed-point resampling sums like dydit, so 0 is seen)
    if worst > 1:
        expect(False, f"crops differ from PIL by up to {worst} levels (sample {np.argwhere(diff > 1)[0][0]})")
    if flip:
        expect(np.array_equal(values[:, 1], values[:, 0][..., ::-1]) and not std.any(),
               "flip storage: [:, 1] is not the mirror of [:, 0], or std is not 0")
    print(f"ok: {len(wants)} crops of {size}x{size}{' gray' if grayscale else ''} match PIL's ADM pipeline, "
          f"max difference {worst} levels ({int((diff > 0).sum())} values differ), {unreadable} unreadable")


def reference_crops(root, size):
    """The [-1, 1] float32 images (N, 3, size, size) of the readable items, in dydit's order."""
    crops = []
    for path, _ in listing(root)[1]:
        im = read_rgb16(path) if path.endswith("rgb16.png") else reference_rgb(path)
        if im is not None:
            crops.append(np.transpose(center_crop_arr(im, size), (2, 0, 1)))
    return (np.stack(crops).astype(np.float64) / 127.5 - 1.0).astype(np.float32)


def check_vae(posterior_out, sample_out, root, size, vae_file, channels, layers, groups):
    size = int(size)
    import torch
    import vae_ref

    cfg = vae_ref.VaeConfig(channels=[int(c) for c in channels.split(",")], layers=int(layers), groups=int(groups))
    params, _ = safetensors_np.load(vae_file)
    p64 = {k: torch.from_numpy(v.astype(np.float64)) for k, v in params.items()}
    images = torch.from_numpy(reference_crops(root, size).astype(np.float64))
    with torch.no_grad():
        refs = [vae_ref.encode(p64, cfg, x) for x in (images, torch.flip(images, dims=[3]))]
    mean_ref = np.stack([r[0].numpy() for r in refs], 1)  # (N, 2, C, h, w)
    logvar_ref = np.stack([r[1].numpy() for r in refs], 1)
    index, mean, std, _, meta = read_set(posterior_out)
    expect(index["encoder"] == "sd-vae" and index["scale_factor"] == 0.18215 and meta["scale_factor"] == "0.18215",
           f"encoder {index['encoder']}, scale {index['scale_factor']} / {meta['scale_factor']}")
    expect(mean.shape == mean_ref.shape, f"posterior shape {mean.shape}, reference {mean_ref.shape}")
    mean_err = np.linalg.norm(mean - mean_ref) / np.linalg.norm(mean_ref)
    log_err = np.abs(2 * np.log(std.astype(np.float64)) - logvar_ref).max()
    # float32 VAE against the float64 reference, the same tolerances as the VAE's own parity cases
    expect(mean_err < 1e-5 and log_err < 1e-4, f"mean relative error {mean_err:.2e}, max |2 log std - logvar| {log_err:.2e}")
    _, sample, _, _, _ = read_set(sample_out)
    sd = np.exp(0.5 * logvar_ref[:, 0])
    usable = sd > 1e-2  # where the clamped logvar leaves a noise visible in float32
    z = (sample.astype(np.float64) - mean_ref[:, 0])[usable] / sd[usable]
    expect(abs(z.mean()) < 0.15 and abs(z.std() - 1) < 0.15, f"baked sample noise: mean {z.mean():.3f}, std {z.std():.3f}")
    print(f"ok: {mean.shape[0]} images: mean and std for both flips match the reference (mean rel. error "
          f"{mean_err:.1e}, log-std error {log_err:.1e}); baked sample z mean {z.mean():.3f} std {z.std():.3f} "
          f"over {z.size} values")


def make_jpegs(root, n):
    os.makedirs(os.path.join(root, "only"), exist_ok=True)
    rng = np.random.default_rng(0)
    base = pattern(256, 256, 3, 0)
    for i in range(n):
        img = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(np.roll(img, i, axis=1)).save(os.path.join(root, "only", f"{i:05d}.jpg"), quality=90)
    print(f"ok: {n} JPEGs")


def main(argv):
    cmd = argv[1]
    if cmd == "make-folder":
        make_folder(argv[2])
    elif cmd == "mnist":
        check_mnist(argv[2], argv[3], argv[4])
    elif cmd == "folder":
        check_folder(argv[2], argv[3], int(argv[4]), "--grayscale" in argv, "--flip" in argv)
    elif cmd == "vae":
        check_vae(*argv[2:11])
    elif cmd == "make-jpegs":
        make_jpegs(argv[2], int(argv[3]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main(sys.argv)
