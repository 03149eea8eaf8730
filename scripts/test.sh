#!/usr/bin/env bash
# Set up with the dev extras, then run the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,viewer
export PATH="$PWD/.venv/bin:$PATH"
exec python -m pytest -q --timeout=900 "$@"
