#!/usr/bin/env bash
# Debian tools the tests use to look at what fabctl writes: poppler-utils (pdftoppm, pdftotext, pdfimages) renders
# and reads the device history record PDF. Installed only when missing, as root on a Debian-like system.
set -euo pipefail
if command -v pdftoppm >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "tools/install.sh: pdftoppm/pdftotext are missing and this is not root on a Debian-like system:" \
       "install poppler-utils" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends poppler-utils >/dev/null
echo "tools/install.sh: poppler-utils installed"
