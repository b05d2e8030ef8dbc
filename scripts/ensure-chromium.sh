#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests when it is missing. Playwright's own browser
# download cannot work on machines without internet access, so the tests drive this one.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing and there is no apt-get here; install Chromium to run the browser tests." >&2
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
    echo "chromium is missing; run 'apt-get install chromium' as root to run the browser tests." >&2
    exit 0
  fi
fi
echo "installing Debian's chromium for the browser tests..." >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
