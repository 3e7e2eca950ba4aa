#!/usr/bin/env bash
# Generates the PyTorch reference fixtures (tests/fixtures/torch/<family>/*.safetensors) on a
# machine with PyTorch 2.11, numpy and safetensors (the GPU machine of the `device` tool; the
# fixtures are computed on its CPU in float32). Usage there:
#   bash scripts/torch-fixtures.sh OUTDIR     -> OUTDIR/fixtures.tgz (one file: the tool returns few)
# Here: tar xzf fixtures.tgz -C tests/fixtures/torch
set -euo pipefail
out=${1:?output directory}
work=$(mktemp -d)
python3 -c 'import torch, safetensors, numpy; print("torch", torch.__version__, "safetensors", safetensors.__version__, "numpy", numpy.__version__)'
status=0
for script in scripts/torch_fixtures/*.py; do
  family=$(basename "$script" .py)
  mkdir -p "$work/$family"
  echo "== $family"
  if ! PYTHONUNBUFFERED=1 python3 "$script" "$work/$family"; then
    echo "FAILED: $script" >&2
    status=1
  fi
  ls "$work/$family" | wc -l
done
mkdir -p "$out"
tar czf "$out/fixtures.tgz" -C "$work" .
exit $status
