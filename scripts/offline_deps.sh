#!/usr/bin/env bash
# Builds dydit on a machine that cannot install packages (an offline GPU node, a container without
# root): the C libraries the build links (OpenBLAS, libjpeg, libpng, zlib) travel as Debian
# packages and are unpacked into a private prefix that `make DEPS=PREFIX` builds against.
#
#   scripts/offline_deps.sh download DIR      on a Debian machine with apt: the .deb files into DIR
#   scripts/offline_deps.sh unpack DIR PREFIX on the target (needs dpkg-deb): DIR's packages into
#                                             PREFIX, absolute links re-pointed inside it; then
#                                             `make DEPS=PREFIX` (or export DEPS=PREFIX)
#
# Nothing is written outside DIR and PREFIX: the system's own libraries stay as they are. The
# programs find the prefix's libraries through their run path, so they run without LD_LIBRARY_PATH.
# MPI is not bundled: without it the build is single-process (data-parallel runs need OpenMPI).
set -euo pipefail

packages=(
    libopenblas0-openmp libopenblas-openmp-dev libgfortran5  # GEMMs of the CPU backend
    libjpeg62-turbo libjpeg62-turbo-dev libpng16-16 libpng-dev zlib1g zlib1g-dev  # image decoding
)

die() { echo "error: $*" >&2; exit 1; }

download() { # DIR
    local dir=$1
    command -v apt-get >/dev/null || die "apt-get not found: download the packages on a Debian machine"
    mkdir -p "$dir"
    (cd "$dir" && apt-get download "${packages[@]}") || die "apt-get download failed (run apt-get update first?)"
    echo "downloaded ${#packages[@]} packages into $dir ($(du -sh "$dir" | cut -f1))"
}

unpack() { # DIR PREFIX
    local dir=$1 prefix=$2 deb n=0
    command -v dpkg-deb >/dev/null || die "dpkg-deb not found: unpack with 'ar x' and 'tar' by hand"
    compgen -G "$dir/*.deb" >/dev/null || die "no .deb files in $dir (scripts/offline_deps.sh download $dir)"
    mkdir -p "$prefix"
    prefix=$(cd "$prefix" && pwd)
    for deb in "$dir"/*.deb; do
        dpkg-deb -x "$deb" "$prefix" || die "cannot unpack $deb"
        n=$((n + 1))
    done
    # links such as libz.so -> /lib/x86_64-linux-gnu/libz.so.1 name the system's path: re-point them
    # at the same file inside the prefix
    local link target
    while IFS= read -r link; do
        target=$(readlink "$link")
        [[ $target == /* && $target != "$prefix"/* ]] || continue
        [ -e "$prefix$target" ] || die "$link points at $target, which no bundled package holds"
        ln -sfn "$prefix$target" "$link"
    done < <(find "$prefix" -type l)
    for header in x86_64-linux-gnu/openblas-openmp/cblas.h jpeglib.h png.h zlib.h; do
        [ -e "$prefix/usr/include/$header" ] || die "$prefix/usr/include/$header is missing after unpacking"
    done
    echo "unpacked $n packages into $prefix; build with: make DEPS=$prefix"
}

case "${1:-}" in
download) [ $# -eq 2 ] || die "usage: scripts/offline_deps.sh download DIR"; download "$2" ;;
unpack) [ $# -eq 3 ] || die "usage: scripts/offline_deps.sh unpack DIR PREFIX"; unpack "$2" "$3" ;;
-h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "usage: scripts/offline_deps.sh download DIR | unpack DIR PREFIX (--help for more)" ;;
esac
