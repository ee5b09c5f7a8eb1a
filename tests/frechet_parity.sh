#!/usr/bin/env bash
# The Frechet distance (eval/frechet.c) against numpy on random correlated features, including a
# singular covariance. Usage, from the repository root: bash tests/frechet_parity.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/frechet_parity.sh WORKDIR [PYTHON]}/frechet
python=${2:-/usr/bin/python3}
mkdir -p "$work"
"$python" tests/ref/frechet_ref.py "$work" build/tests/parity_frechet
