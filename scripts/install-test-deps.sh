#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine. Idempotent: does
# nothing when everything is already there.
set -euo pipefail

APT_PACKAGES=(sip-tester user-mode-linux kmod iproute2 python3-pip tshark libxml2-utils postgresql)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  echo "wireshark-common wireshark-common/install-setuid boolean false" | $SUDO debconf-set-selections 2>/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Independent Diameter stack for interop tests (nobody here wrote it).
PY=python3
if ! "$PY" -c "import diameter.node" >/dev/null 2>&1; then
  echo "installing PyPI package python-diameter"
  "$PY" -m pip install -q "python-diameter==0.9.0" || "$PY" -m pip install -q --break-system-packages "python-diameter==0.9.0"
fi
echo "test dependencies present"
