#!/usr/bin/env bash
# ipykernel 6.29 in ./.venv-ipk6, the second kernel generation of the kernel tests
# (tests/kernel_generations.py puts the folder first on a kernel's PYTHONPATH).
#   scripts/setup-ipykernel6.sh [PYTHON]     PYTHON: the environment's interpreter (.venv)
# Only ipykernel and nest-asyncio (its one requirement the main environment lacks) go in:
# --no-deps, so the folder shadows nothing else and the kernel imports the main environment's
# IPython, jupyter_client, pyzmq and tornado, as for a user who pinned "ipykernel<7".
# Idempotent: a stamp makes a second run a no-op.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${1:-.venv/bin/python}"
dir=.venv-ipk6
version=6.29.5
stamp="$dir/.installed-$version"
if [ -f "$stamp" ]; then exit 0; fi
rm -rf "$dir"
"$py" -m pip install -q --disable-pip-version-check --no-deps --target "$dir" \
  "ipykernel==$version" "nest-asyncio==1.6.0" 2> >(grep -v "^WARNING: Location" >&2)
# ipykernel 6.29's own requirements must be met by the main environment.
if ! out=$(PYTHONPATH="$dir" "$py" -m pip check 2>&1); then
  echo "setup-ipykernel6: $out" >&2
  exit 1
fi
touch "$stamp"
