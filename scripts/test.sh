#!/usr/bin/env bash
# The test suite, from a fresh machine: system packages, the virtual environment, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/models -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/system-deps.sh dataset-fashion-mnist chromium xvfb xauth xdotool \
  libgirepository1.0-dev libcairo2-dev pkg-config gir1.2-gtk-3.0 \
  libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxcb-shape0 libxcb-render-util0 \
  libxcb-image0 libxkbcommon-x11-0
bash scripts/setup-env.sh jupyter,gui,gpu,keras,export,dev
bash scripts/setup-ipykernel6.sh   # the kernel tests run on ipykernel 6.29 as well as 7
# GTK3 bindings build from source; a failure only skips the GTK tests (with the reason).
if ! .venv/bin/python -c 'import gi' 2>/dev/null; then
  .venv/bin/pip install -q pycairo "PyGObject>=3.42,<3.51" >/dev/null 2>&1 \
    || echo "test: PyGObject did not build; GTK3 tests will be skipped" >&2
fi
.venv/bin/ruff check --quiet resnetlab tests bench tools          # lint, complexity <= 15 (C901)
.venv/bin/ruff format --check --quiet resnetlab tests bench tools   # the one formatting
exec .venv/bin/python -m pytest "$@"
