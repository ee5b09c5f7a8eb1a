#!/usr/bin/env bash
# AdamW and EMA against torch.optim.AdamW: two steps on gradients spanning many magnitudes (zeros
# included), then the EMA. Usage, from the repository root: bash tests/optim_parity.sh WORKDIR [PYTHON]
set -u
work=${1:?usage: bash tests/optim_parity.sh WORKDIR [PYTHON]}/optim
python=${2:-/usr/bin/python3}
mkdir -p "$work"
"$python" tests/ref/optim_case.py --out "$work" || { echo "FAIL optim.reference: optim_case.py failed"; exit 1; }
build/tests/parity_optim "$work/optim_in.safetensors" "$work/optim_out.safetensors" ||
    { echo "FAIL optim.run: parity_optim failed"; exit 1; }
# Both sides are float32 with the same operation order up to fused multiply-adds: agreement to a
# few float32 ulps, norm-wise.
"$python" tests/ref/compare.py "$work/optim_out.safetensors" "$work/optim_ref.safetensors" --tol 1e-6 --case adamw_torch
