#!/usr/bin/env bash
# Set up with the dev extras, then run the whole test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh dev,viewer
export PATH="$PWD/.venv/bin:$PATH"
# torch and numba each bring an OpenMP pool; on few cores their spinning threads stall each other.
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec python -m pytest -q --timeout=900 "$@"
