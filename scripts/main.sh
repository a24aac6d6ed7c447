#!/usr/bin/env bash
# The main job: train the default model on Fashion-MNIST with a live dashboard.
# Extra arguments go to `resnetlab train` (e.g. scripts/main.sh --epochs 2 --live webagg).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh dataset-fashion-mnist
bash scripts/setup-env.sh jupyter,gpu
exec .venv/bin/resnetlab train --live auto "$@"
