#!/usr/bin/env bash
# Set up geomgen on a fresh Debian/Ubuntu machine (or macOS): system libraries, a virtualenv
# in .venv, geomgen itself (editable) with its extras. Safe to run again: it only installs
# what is missing. Usage: bash scripts/setup.sh [EXTRAS]   (default extras: viewer)
set -euo pipefail
cd "$(dirname "$0")/.."

EXTRAS="${1:-viewer}"
VENV="${GEOMGEN_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

# Open3D: libusb-1.0-0 libgl1 libegl1 libgomp1; its offscreen renderer: libvulkan1
# mesa-vulkan-drivers; viewer tests: xvfb; real test meshes: libcgal-demo.
SYSTEM_PACKAGES=(libusb-1.0-0 libgl1 libegl1 libgomp1 libvulkan1 mesa-vulkan-drivers xvfb xauth libcgal-demo)

if command -v apt-get >/dev/null 2>&1; then
  missing=()
  # Debian's python3 needs python3-venv for `python -m venv`.
  "$PYTHON" -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "==> installing system packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "==> no apt-get: skipping system packages (${SYSTEM_PACKAGES[*]}); install their equivalents yourself" >&2
fi

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "error: geomgen needs Python >= 3.10 (set PYTHON=/path/to/python3.x)" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "==> creating virtualenv $VENV"
  "$PYTHON" -m venv "$VENV"
fi

# Reinstall only when the dependency declarations changed.
hash="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)"
stamp="$VENV/.geomgen-setup-$hash-${EXTRAS//,/+}"
if [ ! -f "$stamp" ]; then
  echo "==> installing geomgen[$EXTRAS] (torch pinned by constraints.txt)"
  if ! "$VENV/bin/python" -m pip install --disable-pip-version-check -c constraints.txt -e ".[$EXTRAS]" \
      > "$VENV/pip-install.log" 2>&1; then
    grep -v "^WARNING: Location" "$VENV/pip-install.log" | tail -40 >&2
    echo "error: pip install failed (full log: $VENV/pip-install.log)" >&2
    exit 1
  fi
  find "$VENV" -maxdepth 1 -name '.geomgen-setup-*' ! -name ".geomgen-setup-$hash-*" -delete
  touch "$stamp"
fi
