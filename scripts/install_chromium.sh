#!/usr/bin/env bash
# Install Debian's Chromium (and a font) for the browser tests when it is missing. Idempotent:
# nothing happens when a Chromium is on PATH or UCGM_LAB_CHROMIUM names one.
set -euo pipefail
if [ -n "${UCGM_LAB_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1 \
  || command -v chromium-browser >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Chromium is missing and apt-get is not available: install Chromium and set" \
    "UCGM_LAB_CHROMIUM, or skip the browser tests with -m 'not browser'." >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" != "0" ]; then sudo="sudo"; fi
start=$(date +%s)
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  chromium fonts-dejavu-core >/dev/null
echo "installed Chromium in $(( $(date +%s) - start )) s: $(command -v chromium)"
