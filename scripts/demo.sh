#!/usr/bin/env bash
# The main job: set up, then predict 3D shapes from the bundled example images (assets/examples,
# one per category of the synthetic 'shapes' test split) with all five pretrained representations
# (depth, voxel, implicit, pointcloud, mesh), writing meshes and PNG renders, and evaluate every
# model against the mean-shape baseline on the whole held-out test split (Mesh R-CNN protocol +
# voxel IoU, per category); then draw 16 new shapes from each pretrained generator (autoregressive,
# vae, gan) as meshes with a PNG grid of renders. Everything lands in out/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh viewer
export PATH="$PWD/.venv/bin:$PATH"
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"

out=out/demo
mkdir -p "$out"
set -x
geomgen --version
geomgen plugins
for repr in depth voxel implicit pointcloud mesh; do
  geomgen predict assets/examples/*.png --repr "$repr" -o "$out/$repr" --format obj --render "$out/$repr.png"
done
geomgen eval all --markdown "$out/metrics.md" --json "$out/metrics.json" --no-progress
for gen in autoregressive vae gan; do
  geomgen sample --generator "$gen" -n 16 --seed 0 -o "$out/samples/$gen"
done
set +x
echo "==> $out: <repr>/<image>.obj meshes, <repr>.png renders, metrics.md (per-category table),"
echo "    samples/<generator>/sample-*.obj and grid.png (16 draws of each generator)"
