#!/usr/bin/env bash
# scripts/offline_deps.sh unpack and make DEPS=PREFIX, on packages made here with dpkg-deb (nothing
# is downloaded): the headers land in the prefix, a link to the system's path is re-pointed at the
# prefix's copy, a second unpack changes nothing, make's compile and link lines name the prefix;
# one-line errors for a folder without packages, a link no package satisfies, and bad usage.
# Usage, from the repository root: bash tests/offline_deps.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/offline_deps.sh WORKDIR [PYTHON]}/offline_deps
prefix=offline_deps
rm -rf "$work"
mkdir -p "$work"
. tests/lib.sh
command -v dpkg-deb >/dev/null || { pass skipped "no dpkg-deb"; exit 0; }

# package NAME DIR: a .deb of DIR's tree into $work/debs
package() {
    mkdir -p "$2/DEBIAN" "$work/debs"
    printf 'Package: %s\nVersion: 1\nArchitecture: all\nMaintainer: test <t@example.org>\nDescription: test\n' "$1" \
        >"$2/DEBIAN/control"
    dpkg-deb --root-owner-group --build "$2" "$work/debs/$1.deb" >/dev/null
}
headers=$work/tree-headers
mkdir -p "$headers/usr/include/x86_64-linux-gnu/openblas-openmp" "$headers/lib/x86_64-linux-gnu"
for h in jpeglib.h png.h zlib.h x86_64-linux-gnu/openblas-openmp/cblas.h; do echo "/* $h */" >"$headers/usr/include/$h"; done
echo library >"$headers/lib/x86_64-linux-gnu/libfake.so.1"
package headers "$headers"
links=$work/tree-links
mkdir -p "$links/usr/lib/x86_64-linux-gnu"
ln -s /lib/x86_64-linux-gnu/libfake.so.1 "$links/usr/lib/x86_64-linux-gnu/libfake.so"
package links "$links"

root=$work/prefix
link=$root/usr/lib/x86_64-linux-gnu/libfake.so
if scripts/offline_deps.sh unpack "$work/debs" "$root" >"$work/out.txt" 2>&1 &&
    [ "$(readlink "$link")" = "$root/lib/x86_64-linux-gnu/libfake.so.1" ] && [ "$(cat "$link")" = library ] &&
    [ -f "$root/usr/include/x86_64-linux-gnu/openblas-openmp/cblas.h" ]; then
    pass unpack "$(cat "$work/out.txt")"
else
    fail unpack "$(cat "$work/out.txt"), libfake.so -> $(readlink "$link")"
fi
if scripts/offline_deps.sh unpack "$work/debs" "$root" >/dev/null 2>&1 &&
    [ "$(readlink "$link")" = "$root/lib/x86_64-linux-gnu/libfake.so.1" ]; then
    pass unpack_again "the link still points inside the prefix"
else
    fail unpack_again "libfake.so -> $(readlink "$link")"
fi

lines=$(make -n -B DEPS="$root" build/train/main.o dydit 2>&1)
if grep -q -- "-I$root/usr/include .*-I$root/usr/include/x86_64-linux-gnu/openblas-openmp" <<<"$lines" &&
    grep -q -- "-Wl,-rpath,$root/usr/lib/x86_64-linux-gnu.*-L$root/usr/lib/x86_64-linux-gnu/openblas-openmp" <<<"$lines"; then
    pass make_deps "compile and link lines name the prefix"
else
    fail make_deps "$(head -c 600 <<<"$lines")"
fi

mkdir -p "$work/empty"
expect_error no_packages "no .deb files" scripts/offline_deps.sh unpack "$work/empty" "$work/p2"
rm "$work/debs/headers.deb"
expect_error dangling_link "which no bundled package holds" scripts/offline_deps.sh unpack "$work/debs" "$work/p3"
expect_error usage "usage" scripts/offline_deps.sh unpack "$work/debs"
exit $status
