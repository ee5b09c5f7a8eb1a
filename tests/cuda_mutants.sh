#!/usr/bin/env bash
# The emulated CUDA device catches real kernel bugs: each mutant below is a copy of one kernel
# source with one bug put in (perl on the copy; the repository is not touched), rebuilt into the
# emulated build's objects and linked into a GPU test program, which must then fail:
#   reduce_missing_barrier   no __syncthreads between writing and reading `partial` (reduce.cuh)
#   partial_warp_shuffle     the softmax's full-warp shuffles in a block whose last warp has 16 lanes
#   layernorm_past_row       the LayerNorm row loop reading one vector past the end of its row
#   gemm_transpose           matmul_forward's product with the weight's transpose flag swapped
#   misaligned_bf16          attention's bf16 products without the fp32 fallback for odd T, so the
#                            pointer-array kernels meet matrices that are not 16-byte aligned
#   shared_opt_in_dropped    LayerNorm rows over 48 KiB of shared memory launched without raising
#                            the kernel's limit (an H100 refuses the launch)
# and the unchanged source, rebuilt the same way, passes (the harness itself fails nothing). The same
# way, conv2d.cu with its im2col scratch lowered from 64 Mi to 16 Ki floats must pass the
# convolution tests: their images then go through the chunked path (runs of output pixels of one
# image, an uneven last run) that only images of gigabytes reach otherwise.
# Needs the emulated build (make emulated-build). Usage: bash tests/cuda_mutants.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/cuda_mutants.sh WORKDIR [PYTHON]}/cuda_mutants
prefix=cuda_mutants
source tests/lib.sh
rm -rf "$work"
mkdir -p "$work"
if [ ! -f build-emu/libdydit.a ]; then
    fail built "build-emu/libdydit.a is missing (make test builds it: make emulated-build)"
    exit 1
fi
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
# the emulated build's commands, as a plain make (not one nested in make test) prints them
{ read -r compile; read -r link_flags; read -r libs; } < <(env -u MAKEFLAGS -u MAKELEVEL make -s EMULATED=1 emu-commands)

# build NAME SOURCE PERL PROGRAM UNITS...: SOURCE (a kernel file) changed by the perl substitution
# PERL, the units (.cu files) that include it rebuilt, PROGRAM (tests/cuda/NAME.c) linked with them
# ahead of the emulated library; prints the program's path.
build() {
    local name=$1 source=$2 change=$3 program=$4
    shift 4
    local dir="$work/$name" unit objects=()
    mkdir -p "$dir/src/kernels/cuda" "$dir/emu-src/kernels/cuda"
    perl -0pe "$change" "$source" >"$dir/src/$source"
    if [ "$name" != unchanged ] && cmp -s "$dir/src/$source" "$source"; then
        echo "the change does not apply to $source any more" >"$dir/build.log"
        return 1
    fi
    perl kernels/cuda/emu/rewrite.pl "$dir/src/$source" >"$dir/emu-src/$source"
    for unit in "$@"; do
        local from="build-emu/emu-src/$unit"
        [ "$unit" = "$source" ] && from="$dir/emu-src/$unit"
        # shellcheck disable=SC2086 # the commands are word lists; the mutant's headers come first
        ${compile%% *} -I"$dir/emu-src" ${compile#* } -c -o "$dir/$(basename "$unit" .cu).o" "$from" >>"$dir/build.log" 2>&1 || return 1
        objects+=("$dir/$(basename "$unit" .cu).o")
    done
    # shellcheck disable=SC2086
    $link_flags -o "$dir/$program" "tests/cuda/$program.c" "${objects[@]}" build-emu/libdydit.a $libs \
        >>"$dir/build.log" 2>&1 || return 1
    echo "$dir/$program"
}

# mutant NAME SOURCE PERL PROGRAM UNITS...: the mutant must build and its program must fail.
mutant() {
    local name=$1 source=$2 program=$4 prog
    if ! prog=$(build "$@"); then
        fail "$name" "the mutant does not build: $(tail -n 3 "$work/$name/build.log" | tr '\n' ' ')"
        return
    fi
    if "$prog" "$work/$name" >"$work/$name/run.log" 2>&1; then
        fail "$name" "$program passed with the bug in $source"
    else
        pass "$name" "$(grep -m 1 -E '^(error|FAIL)' "$work/$name/run.log" | cut -c 1-200)"
    fi
}

if prog=$(build unchanged kernels/cuda/attention.cu 's/^//' test_cuda_step kernels/cuda/attention.cu) &&
    "$prog" "$work/unchanged" >"$work/unchanged/run.log" 2>&1; then
    pass unchanged_source_passes
else
    fail unchanged_source_passes "$(grep -m 3 -E '^(error|FAIL)' "$work/unchanged/run.log" "$work/unchanged/build.log" 2>&1)"
fi
# variant NAME SOURCE PERL PROGRAM UNITS...: a changed build that must still pass PROGRAM.
variant() {
    local name=$1 program=$4 prog
    if prog=$(build "$@") && "$prog" "$work/$name" >"$work/$name/run.log" 2>&1; then
        pass "$name" "$(grep -c '^PASS' "$work/$name/run.log") checks"
    else
        fail "$name" "$program: $(grep -m 3 -E '^(error|FAIL)' "$work/$name/run.log" "$work/$name/build.log" 2>&1)"
    fi
}
variant conv2d_chunked_im2col kernels/cuda/conv2d.cu 's/\(\(size_t\)64 << 20\) \/\/ 256 MiB/((size_t)16 << 10)/' \
    test_cuda_conv_ops kernels/cuda/conv2d.cu

mutant reduce_missing_barrier kernels/cuda/reduce.cuh 's/(partial\[warp\] = v;\n)\s*__syncthreads\(\);\n/$1/' \
    test_cuda_step kernels/cuda/routing.cu kernels/cuda/diffusion_loss.cu
mutant partial_warp_shuffle kernels/cuda/attention.cu \
    's/(softmax_forward_kernel<<<softmax_blocks\(rows\), SOFTMAX_WARPS \* 32)/$1 - 16/' \
    test_cuda_step kernels/cuda/attention.cu
mutant layernorm_past_row kernels/cuda/layernorm_row.cuh 's/for \(int d = lane \* V; d < D;/for (int d = lane * V; d <= D;/' \
    test_cuda_step kernels/cuda/layernorm_modulate.cu
mutant gemm_transpose kernels/cuda/gemm.cu 's/gemm\(CUBLAS_OP_T, CUBLAS_OP_N, N, M, K,/gemm(CUBLAS_OP_N, CUBLAS_OP_N, N, M, K,/' \
    test_cuda_step kernels/cuda/gemm.cu
mutant shared_opt_in_dropped kernels/cuda/layernorm_row.cuh 's/if \(\*bytes > default_limit\)\s*CUDA_CHECK\(cudaFuncSetAttribute[^;]*;//' \
    test_cuda_ops kernels/cuda/layernorm_modulate.cu
mutant misaligned_bf16 kernels/cuda/attention.cu 's/bool aligned = head_views_aligned16\(&views, 5\);/bool aligned = true;/' \
    test_cuda_ops kernels/cuda/attention.cu
exit $status
