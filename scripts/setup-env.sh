#!/usr/bin/env bash
# Create (or reuse) ./.venv and install resnetlab with the given extras.
#   scripts/setup-env.sh [EXTRAS]        e.g. scripts/setup-env.sh jupyter,dev
# torch comes first: the CPU build where no NVIDIA GPU is present, so that the package's
# own "torch>=2.2" requirement never pulls a multi-GB CUDA build by itself.
# Override the torch requirement with RESNETLAB_TORCH (e.g. RESNETLAB_TORCH="torch==2.13.0").
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
py="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($py --version)"
  "$py" -m venv .venv
fi
vpy=.venv/bin/python
stamp=".venv/.installed-$(cat pyproject.toml | sha1sum | cut -c1-12)-${extras//,/_}"
if [ -f "$stamp" ]; then exit 0; fi
"$vpy" -m pip install -q --upgrade pip
if ! "$vpy" -c 'import torch' 2>/dev/null; then
  if [ -n "${RESNETLAB_TORCH:-}" ]; then
    spec="$RESNETLAB_TORCH"
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    spec="torch"              # a GPU is present: the default (CUDA) build
  else
    spec="torch==2.13.0"      # CPU machines: the CPU build (see README, "Installing torch")
  fi
  echo "setup: installing $spec"
  "$vpy" -m pip install -q "$spec"
fi
target="."
[ -n "$extras" ] && target=".[$extras]"
echo "setup: installing resnetlab$([ -n "$extras" ] && echo "[$extras]")"
"$vpy" -m pip install -q -e "$target"
touch "$stamp"
