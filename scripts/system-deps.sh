#!/usr/bin/env bash
# Install the Debian packages the main job and the tests use, where we can (root + apt):
# the real Fashion-MNIST, headless Chromium for browser tests, Xvfb for desktop windows,
# and the headers PyGObject (GTK3) builds against. Never fatal: tests that need a missing
# piece are skipped with the reason printed.
set -uo pipefail
want=("$@")
missing=()
for p in "${want[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "system-deps: cannot install ${missing[*]} (needs root and apt-get); continuing" >&2
  exit 0
fi
echo "system-deps: apt-get install ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || {
  # one by one, so one unavailable package does not block the others
  for p in "${missing[@]}"; do apt-get install -y -qq "$p" >/dev/null 2>&1 || echo "system-deps: $p not installed" >&2; done
}
exit 0
