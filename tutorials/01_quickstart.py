# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 01 · Quick start: structures, IO, conversions, metrics, rendering
#
# This tutorial walks through the core of geomgen without any training:
#
# 1. build a mesh with geomgen ops and take a ground-truth mesh from the procedural
#    `shapes` dataset,
# 2. save and load them with `geomgen.io`,
# 3. convert mesh → sampled points → voxels (and back with marching cubes),
# 4. measure them with `geomgen.losses` / `geomgen.metrics`,
# 5. render a PNG offscreen with `geomgen.viewer.render_png`.
#
# It runs as a plain script (`python tutorials/01_quickstart.py`) or as a notebook
# (`jupytext --to notebook tutorials/01_quickstart.py`).  Set `GEOMGEN_TUTORIAL_SMALL=1`
# for a fast run; outputs go to `$GEOMGEN_TUTORIAL_OUT` (default `out/tutorials/01_quickstart`).

# %%
import os
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # torch and numba share few cores politely

import torch

import geomgen
from geomgen.io import load_mesh, save_mesh
from geomgen.losses import chamfer_distance, mesh_normal_consistency
from geomgen.metrics import f1_score, normal_consistency, voxel_iou
from geomgen.ops import ico_sphere, marching_cubes, points_to_voxels, sample_points_from_meshes, voxelize
from geomgen.structures import Meshes

SMALL = os.environ.get("GEOMGEN_TUTORIAL_SMALL") == "1"
OUT = Path(os.environ.get("GEOMGEN_TUTORIAL_OUT", "out/tutorials/01_quickstart"))
OUT.mkdir(parents=True, exist_ok=True)
NUM_POINTS = 2000 if SMALL else 10000
RES = 24 if SMALL else 32
torch.manual_seed(0)
print("geomgen", geomgen.__version__, "| small run" if SMALL else "| full run", "| outputs in", OUT)

# %% [markdown]
# ## 1. Meshes: made with an op, and taken from the `shapes` dataset
#
# `Meshes` is a *batch* of meshes with PyTorch3D's names: a list view (`verts_list()`),
# a padded view `(N, max V, 3)` (faces padded with `-1`) and a packed view `(sum V, 3)`.
# `ico_sphere(level)` gives a unit sphere (a batch of one).
#
# The `shapes` dataset is procedural: every sample is built from its seed and cached
# on disk (`$GEOMGEN_CACHE_DIR`, else `~/.cache/geomgen/datasets/`), so nothing is
# downloaded.  Each sample dict holds the normalised GT mesh as `verts` `(V, 3)` / `faces`
# `(F, 3)` (bbox centred, longest edge 1, +Y up), `S` rendered views (`images`
# `(S, 3, 64, 64)`, `depths`, `masks`, `K`, `world_from_camera`), a 32³ solid `voxels`
# grid over `[-0.5, 0.5]³` and surface `points`/`normals`;
# `geomgen.data.collate_samples` turns a list of them into `Meshes`, `Voxels`, ... .

# %%
sphere = ico_sphere(3)
print("ico sphere:", sphere.num_verts_per_mesh().tolist(), "verts,", sphere.num_faces_per_mesh().tolist(), "faces;",
      "padded verts", tuple(sphere.verts_padded().shape))

ds = geomgen.get_dataset("shapes", split="test", categories=["chair", "torus"], per_category=1,
                         resolution=40, seed=0, progress=False)
sample = ds[0]
print("dataset:", len(ds), "shapes; sample keys:", sorted(sample))
gt = Meshes(verts=[sample["verts"]], faces=[sample["faces"]])  # collate_samples does this for a batch
print(sample["category"], "GT mesh verts", tuple(gt.verts_padded().shape),
      "bbox", [round(v, 3) for v in gt.verts_packed().amin(0).tolist()],
      "→", [round(v, 3) for v in gt.verts_packed().amax(0).tolist()])

# %% [markdown]
# ## 2. IO: save and load
#
# `save_mesh(path, meshes, index=0)` writes one mesh of the batch (OBJ/PLY/OFF/STL/GLB,
# chosen by the suffix, through trimesh); `load_mesh(path)` returns a batch of one.

# %%
save_mesh(OUT / "gt.obj", gt)
save_mesh(OUT / "sphere.ply", sphere)
reloaded = load_mesh(OUT / "gt.obj")
print("reloaded:", reloaded.num_verts_per_mesh().tolist(), "verts (saved", gt.num_verts_per_mesh().tolist(), ")")
assert torch.allclose(reloaded.verts_packed(), gt.verts_packed(), atol=1e-5)

# %% [markdown]
# ## 3. Conversions: mesh → points → voxels → mesh
#
# * `sample_points_from_meshes(meshes, n, return_normals=True)` samples `n` points per
#   mesh, area-weighted: points `(N, n, 3)` and unit normals `(N, n, 3)`.
# * `voxelize(meshes, resolution, mode="solid")` fills the inside; `mode="surface"` marks
#   only voxels the triangles touch.  Grids are indexed `grid[n, z, y, x]` and `origin` is
#   the min corner of voxel `(0, 0, 0)`.
# * `points_to_voxels(points, resolution, bounds=...)` bins points into a grid (mean of
#   features per voxel; occupancy when no features are given).
# * `marching_cubes(voxels, level=0.5)` goes back to a closed, outward-oriented mesh.

# %%
bounds = [[-0.5, 0.5]] * 3  # (3, 2): [axis, (min, max)] — the dataset's object cube
pts, nrm = sample_points_from_meshes(gt, NUM_POINTS, return_normals=True,
                                     generator=torch.Generator().manual_seed(0))
print("points", tuple(pts.shape), "normals", tuple(nrm.shape))

solid = voxelize(gt, RES, mode="solid", bounds=bounds)
surface = voxelize(gt, RES, mode="surface", bounds=bounds)
binned = points_to_voxels(pts, RES, bounds=bounds)
binned = binned[0] if isinstance(binned, tuple) else binned
print("solid grid", tuple(solid.grids.shape), "occupied:", int((solid.grids > 0.5).sum()),
      "| surface:", int((surface.grids > 0.5).sum()), "| from points:", int((binned.grids > 0).sum()))

remeshed = marching_cubes(solid, level=0.5)
print("marching cubes of the solid grid:", remeshed.num_verts_per_mesh().tolist(), "verts")

# %% [markdown]
# ## 4. Measuring
#
# * **Chamfer** (`geomgen.losses.chamfer_distance`) follows PyTorch3D: for `norm=2` it uses
#   **squared** distances, averages them per direction (`point_reduction="mean"`) and
#   **sums** the two directions — two one-point clouds 3 apart give `9 + 9 = 18`.
# * **F1@t** (`geomgen.metrics.f1_score`) follows Mesh R-CNN: **unsquared** distances,
#   strict `<`, in **percent**; it returns `{"F1@0.1": (N,), ...}`.
# * **Normal consistency** (`geomgen.metrics.normal_consistency`): mean cosine between each
#   point's normal and its nearest neighbour's, both directions (`abs=True` ignores orientation).
# * **Voxel IoU** (`geomgen.metrics.voxel_iou`): two empty grids give 1.

# %%
a = torch.zeros(1, 1, 3)
b = torch.tensor([[[3.0, 0.0, 0.0]]])
print("chamfer of two one-point clouds 3 apart:", float(chamfer_distance(a, b)[0]), "(squared, summed: 18)")

# the re-meshed voxel grid against the GT mesh
pts2, nrm2 = sample_points_from_meshes(remeshed, NUM_POINTS, return_normals=True,
                                       generator=torch.Generator().manual_seed(1))
cd, cd_normals = chamfer_distance(pts2, pts, x_normals=nrm2, y_normals=nrm)
f1 = f1_score(pts2, pts, thresholds=(0.01, 0.02, 0.05))
nc = normal_consistency(pts2, nrm2, pts, nrm)
re_solid = voxelize(remeshed, RES, mode="solid", bounds=bounds)
iou = voxel_iou(re_solid.grids, solid.grids, threshold=0.5)
print(f"marching cubes vs GT: chamfer-L2 {float(cd):.2e}, normal term {float(cd_normals):.3f}, "
      f"normal consistency {float(nc.mean()):.3f}, voxel IoU {float(iou.mean()):.3f}")
print("F1 (%):", {k: round(float(v.mean()), 1) for k, v in f1.items()})
print("mesh normal consistency loss (sphere):", float(mesh_normal_consistency(sphere)))

# the registry exposes the same metrics by name
print("registered metrics:", geomgen.list_metrics())
print("get_metric('f1'):", {k: round(float(v.mean()), 1) for k, v in geomgen.get_metric("f1")(pts2, pts).items()})

# %% [markdown]
# ## 5. Rendering a PNG offscreen
#
# `geomgen.viewer.render_png(objects, path, width, height, views)` lays the objects side
# by side and renders them from `views` orbit views (Open3D's offscreen renderer when
# it starts, geomgen's own rasteriser otherwise; the second return value says which).

# %%
from geomgen.viewer import render_png

png, backend = render_png([gt, remeshed, binned], OUT / "quickstart.png", width=256, height=256, views=2)
print("wrote", png, "with backend", backend)
