#!/usr/bin/env bash
# Install the Debian packages the tests drive from outside Python, when they are missing and
# we are root (as in CI): `make test` calls this before the test suite.
#   chromium        headless browser for the HTML report screenshot test (+ a font)
#   docker-compose  `docker-compose config -q` validates docker-compose.yml (no Docker engine)
#   nginx-light     `nginx -t` on deploy/nginx.conf, and two replicas behind it (tests/test_replicas.py)
# Not root and missing: the tests that need them skip (and fail when CI=true).
set -euo pipefail

missing=()
command -v chromium >/dev/null || missing+=(chromium)
[[ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]] || missing+=(fonts-dejavu-core)
command -v docker-compose >/dev/null || missing+=(docker-compose)
command -v nginx >/dev/null || missing+=(nginx-light)
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ "$(id -u)" != 0 ]] || ! command -v apt-get >/dev/null; then
  echo "ensure_system_packages: missing ${missing[*]} (not root: not installing)" >&2
  exit 0
fi
echo "ensure_system_packages: installing ${missing[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
