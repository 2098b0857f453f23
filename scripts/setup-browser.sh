#!/bin/sh
# Debian's chromium for the dashboard's browser tests (driven by Playwright, which is
# never asked to download a browser of its own). Idempotent: does nothing when present.
set -eu
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "setup-browser: chromium is missing; as root: apt-get install -y chromium" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends chromium
