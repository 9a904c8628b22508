#!/usr/bin/env bash
# The Debian packages the test tiers need, installed where missing (one `apt-get update` at most):
# make, the Celery tier's PostgreSQL and Redis, the browser test's Chromium and ChromeDriver.
# Run by `make test` and .ci/run; needs root (or sudo) only when something is missing.
set -euo pipefail

PACKAGES=(make postgresql redis-server chromium chromium-driver)

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null; then
    echo "debian-packages: missing ${missing[*]}; install them as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  as_root=(sudo)
fi
echo "debian-packages: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
