#!/usr/bin/env bash
# tests/blas_kernels.sh: the thread-count claims under every OpenBLAS kernel family this CPU can
# run (OPENBLAS_CORETYPE), not only the one OpenBLAS picks here: CPUs of other makers and
# generations get other kernels, and some of those compute other low bits when OpenBLAS threads a
# product itself. test_gemm, test_conv and test_train each compare 1 thread against several.
set -u
cd "$(dirname "$0")/.."
work=${1:-$(mktemp -d)}
prefix=blas_kernels
. tests/lib.sh
flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
cores=()
has avx && cores+=(Sandybridge)
has avx2 && has fma && cores+=(Haswell Zen)
has avx512f && has avx512bw && cores+=(SkylakeX)
[ ${#cores[@]} -gt 0 ] || cores+=(Prescott)
for core in "${cores[@]}"; do
    for t in test_gemm test_conv test_train; do
        if OPENBLAS_CORETYPE=$core OMP_NUM_THREADS=2 "build/tests/$t" >"$work/$core-$t.txt" 2>&1; then
            pass "$core.$t" "$(grep -c '^PASS' "$work/$core-$t.txt") checks"
        else
            fail "$core.$t" "$(grep -m3 '^FAIL' "$work/$core-$t.txt" | tr '\n' ' ')"
        fi
    done
done
exit $status
