#!/usr/bin/env bash
# Images through dydit encode at the edges: extreme aspect ratios against PIL's ADM center crop,
# peak memory of tiny files that expand to long thin images, an image too large for the memory
# left skipped by name, empty folders, and the warning when images are upscaled.
# Usage, from the repository root: bash tests/images.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/images.sh WORKDIR [PYTHON]}/images
prefix=images
source tests/lib.sh
python=${2:-/usr/bin/python3}
check=tests/ref/encode_check.py
rm -rf "$work"
mkdir -p "$work"

encode() { ./dydit encode --source folder --encoder identity --dtype f32 --workers 1 "$@"; }

# Address-space limits (ulimit -v) cannot apply to a build with AddressSanitizer, which reserves
# terabytes of shadow memory; those checks then do not run.
sanitized=0
ldd ./dydit 2>/dev/null | grep -q libasan && sanitized=1

# write_images ROOT SPEC...: SPEC is CLASS/NAME:WIDTHxHEIGHT[:MODE], a PNG of that size with noise
# (seeded), in PIL's MODE (RGB unless named)
write_images() {
    "$python" - "$@" <<'EOF'
import os, sys
import numpy as np
from PIL import Image
root = sys.argv[1]
for seed, spec in enumerate(sys.argv[2:]):
    name, size, mode = (spec + ":RGB").split(":")[:3]
    w, h = map(int, size.split("x"))
    os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (h, w, len(mode)), dtype=np.uint8)
    Image.fromarray(pixels.squeeze(2) if len(mode) == 1 else pixels, mode).save(os.path.join(root, name))
EOF
}

# --- extreme aspect ratios: the crop computes only its window, pixel for pixel PIL's -----------------
thin=$work/thin
# (PNGs decode into one buffer: gray, gray + alpha and RGBA rows become RGB in place)
write_images "$thin" a/wide.png:2000x1 a/tall.png:1x3000:L b/strip.png:900x5:LA b/column.png:3x700:RGBA \
    b/square.png:40x40
for size in 16 33; do
    if encode --input "$thin" --image-size $size --out "$work/thin$size" --quiet >/dev/null 2>"$work/thin.err"; then
        out=$("$python" $check folder "$work/thin$size" "$thin" $size 2>&1)
        case $out in ok:*) pass "aspect_ratio_vs_pil_$size" "$out" ;; *) fail "aspect_ratio_vs_pil_$size" "$out" ;; esac
    else
        fail "aspect_ratio_vs_pil_$size" "$(cat "$work/thin.err")"
    fi
done

# --- peak memory: small files that decode to long thin images -----------------------------------
# A 100000x1 PNG at --image-size 256 took 19.7 GB on its way to a 256x256 crop (the whole
# resized 25600000x256 image), a 1x900000 one at 64 took 12.5 GB. Each now needs a few MB; the
# run is capped at 4 GB of address space (when the build allows) so that a regression fails
# instead of taking the machine, and its peak resident memory must stay under 300 MB.
# peak_rss CAP_MB COMMAND...: prints "STATUS PEAK_MB" of the command run under the cap (0: none)
peak_rss() {
    "$python" - "$@" <<'EOF'
import resource, subprocess, sys
cap = int(sys.argv[1]) << 20
def limit():
    if cap:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
rc = subprocess.run(sys.argv[2:], preexec_fn=limit, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                    timeout=300).returncode
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024)
EOF
}
write_images "$work/wide" a/wide.png:100000x1
write_images "$work/tall" a/tall.png:1x900000
cap=4096
[ $sanitized -eq 1 ] && cap=0
for case in "wide 256" "tall 64"; do
    set -- $case
    read -r rc peak < <(OPENBLAS_NUM_THREADS=1 peak_rss $cap ./dydit encode --source folder --encoder identity \
        --workers 1 --input "$work/$1" --image-size $2 --out "$work/$1.out" --quiet)
    if [ "$rc" -eq 0 ] && [ "$peak" -lt 300 ]; then
        pass "memory_$1_$2" "peak resident $peak MB"
    else
        fail "memory_$1_$2" "status $rc, peak resident $peak MB (want under 300)"
    fi
done

# --- an image the memory left cannot hold is skipped by name, the others are encoded -------------
# 11585x11585 RGBA (just under the pixel limit) needs 537 MB to decode and 100 MB more for its
# first halving; under a 768 MB address-space cap one of the two fails, for this image only.
if [ $sanitized -eq 0 ]; then
    big=$work/big
    write_images "$big" a/small.png:20x20
    "$python" - "$big/a/huge.png" <<'EOF'
import struct, sys, zlib
w = h = 11585
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
z = zlib.compressobj(9)
row = bytes(1 + 4 * w)  # filter byte 0, transparent black
idat = b"".join(z.compress(row) for _ in range(h)) + z.flush()
with open(sys.argv[1], "wb") as f:
    f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)) +
            chunk(b"IDAT", idat) + chunk(b"IEND", b""))
EOF
    # A build with the CUDA backend maps cuBLAS(Lt) and NCCL too (about 800 MB of address space
    # before main runs): the cap grows by their sizes.
    gpu_libraries_kb=$(ldd ./dydit | awk '/=>/ && /(cublas|cudart|nccl)/ {print $3}' | xargs -r stat -L -c %s |
        awk '{ kb += $1 / 1024 } END { printf "%d", kb }')
    (
        ulimit -v $((768 * 1024 + gpu_libraries_kb))
        OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 timeout 120 ./dydit encode --source folder --encoder identity \
            --workers 1 --input "$big" --image-size 16 --out "$work/big.out" --quiet >"$work/big.stdout" 2>"$work/big.err"
    )
    rc=$?
    if [ $rc -eq 0 ] && [ "$(wc -l <"$work/big.err")" -eq 1 ] &&
        grep -Eq "^warning: $big/a/huge.png: out of memory (decoding|cropping) a 11585x11585 image \(skipped\)$" "$work/big.err" &&
        grep -q ' 1 samples ' "$work/big.stdout"; then
        pass out_of_memory_skipped "$(cat "$work/big.err")"
    else
        fail out_of_memory_skipped "status $rc: $(head -c 300 "$work/big.err")"
    fi
fi

# --- empty folders (the sanitized suite checks that no null array reaches qsort) ---------------
mkdir -p "$work/empty_root"
expect_error empty_root "has no class folders" encode --input "$work/empty_root" --out "$work/er" --quiet
mkdir -p "$work/only_empty/cat"
expect_error only_empty_class "holds no .jpg, .jpeg or .png files" encode --input "$work/only_empty" --out "$work/oe" --quiet
# an empty class folder is still a class; a folder named like an image is a folder, searched
ec=$work/empty_class
write_images "$ec" full/a.png:20x20 full/b.png:20x20
mkdir -p "$ec/empty" "$ec/full/x.png" "$ec/full/y.png/inner"
write_images "$ec/full/y.png" inner/c.png:20x20
if encode --input "$ec" --image-size 16 --out "$work/ec" >"$work/ec.out" 2>"$work/ec.err" &&
    grep -q ': 3 images, 2 classes' "$work/ec.err" && grep -q ' 3 samples ' "$work/ec.out" &&
    grep -q '"classes": \["empty","full"\]' "$work/ec/index.json"; then
    out=$("$python" $check folder "$work/ec" "$ec" 16 2>&1)
    case $out in ok:*) pass empty_class_and_image_named_folder "$out" ;; *) fail empty_class_and_image_named_folder "$out" ;; esac
else
    fail empty_class_and_image_named_folder "$(tail -n 3 "$work/ec.err" "$work/ec.out")"
fi

# --- upscaling: the size is named at the start, the first upscaled image warned about once --------
up=$work/up
write_images "$up" a/one.png:64x64 a/two.png:64x80 b/three.png:100x64 b/big.png:300x300
encode --input "$up" --out "$work/up256" >"$work/up.out" 2>"$work/up.err"
rc=$?
if [ $rc -eq 0 ] && grep -q 'center-cropped to 256x256 (the default --image-size)' "$work/up.err" &&
    [ "$(grep -c '^warning: ' "$work/up.err")" -eq 1 ] &&
    grep -q "^warning: $up/a/one.png: 64x64 image upscaled to --image-size 256 " "$work/up.err" &&
    grep -q 'upscaled 3 images smaller than 256x256' "$work/up.out"; then
    pass upscale_warned_once "$(grep '^warning: ' "$work/up.err")"
else
    fail upscale_warned_once "status $rc: $(grep -v '^  ' "$work/up.err" | head -c 400) $(cat "$work/up.out")"
fi
encode --input "$up" --image-size 64 --out "$work/up64" >"$work/up64.out" 2>"$work/up64.err"
rc=$?
if [ $rc -eq 0 ] && ! grep -q '^warning: ' "$work/up64.err" && grep -q 'center-cropped to 64x64 ->' "$work/up64.err" &&
    grep -q 'upscaled 0 images' "$work/up64.out"; then
    pass no_upscale_no_warning
else
    fail no_upscale_no_warning "status $rc: $(grep -v '^  ' "$work/up64.err" | head -c 400)"
fi
exit $status
