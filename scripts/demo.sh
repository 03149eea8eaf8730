#!/usr/bin/env bash
# The main job: set up, then list the plugins, load real meshes, print their statistics and
# compare two of them with the installed metrics (Mesh R-CNN protocol: gt-10 scale, 10k samples),
# then build the synthetic 'shapes' test split and write a contact sheet of it to out/.
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
mkdir -p out
geomgen data preview shapes --split test -n 10 -o out/shapes_preview.png
