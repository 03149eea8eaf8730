#!/usr/bin/env bash
# The main job: set up, then list the plugins, load real meshes, print their statistics and
# compare two of them with the installed metrics (Mesh R-CNN protocol: gt-10 scale, 10k samples).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh viewer
export PATH="$PWD/.venv/bin:$PATH"

data="$(python -m geomgen.testing.cgal)/meshes"
set -x
geomgen --version
geomgen plugins
geomgen info "$data/elephant.off" "$data/refined_elephant.off"
geomgen compare "$data/refined_elephant.off" "$data/elephant.off"
