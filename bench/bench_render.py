"""Rasterization and rendering: geomgen beside Open3D's offscreen renderer, same run.

Work: the armadillo (26k vertices, 52k faces) from CGAL's sample data,
normalised to the unit cube, seen from 2 units away with a 45 degree field of
view (it fills about a third of the image).

* ``rasterize_meshes`` (numba) z-depth of one 256x256 view beside Open3D's
  ``OffscreenRenderer.render_to_depth_image(z_in_view_space=True)`` (Filament
  on Mesa's software Vulkan here); both include their per-call Python work
  (Open3D: ``setup_camera`` + render + read back; geomgen: validation, kernel,
  tensors), the scene / mesh batch is built once, outside the timing;
* the full ``render_meshes`` (depth, mask, smooth normals, Lambert image);
* 24 views at 256x256 beside 24 Open3D depth renders, and at 128x128 (a
  dataset sample; Filament allows one renderer, of one size, per process);
* the pure-torch path (the CUDA / reference path) on the CPU, for scale.

Each row times geomgen and its peer **interleaved** (one call of each per
round, median over the rounds) so both see the same load on a shared machine.
``first call`` is geomgen's first call in this process: numba's on-disk cache
loaded (or the kernels compiled when the cache is cold), for Open3D the
renderer's start-up.

Run: ``python bench/bench_render.py [repeats]`` (``OMP_WAIT_POLICY=PASSIVE``
advised, see ``run_all.py``).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, first_call_ms, print_table, real_mesh  # noqa: E402

from geomgen.render import PerspectiveCameras, orbit_poses, rasterize_meshes, render_meshes  # noqa: E402
from geomgen.structures import Meshes  # noqa: E402


def paired(fns: list[Callable[[], Any] | None], repeats: int) -> list[float | None]:
    """Median ms of each function, calling them in turn each round (one warm-up round)."""
    live = [f for f in fns if f is not None]
    for f in live:
        f()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, f in enumerate(fns):
            if f is None:
                continue
            t0 = time.perf_counter()
            f()
            times[i].append((time.perf_counter() - t0) * 1e3)
    return [statistics.median(t) if t else None for t in times]


class _Open3D:
    """Open3D's offscreen renderer with one mesh in the scene, ``defaultUnlit``
    material (the cheapest for depth: ``defaultLit`` takes 2-3x longer here)."""

    def __init__(self, verts: np.ndarray, faces: np.ndarray, size: int) -> None:
        import open3d as o3d

        t0 = time.perf_counter()
        self.r = o3d.visualization.rendering.OffscreenRenderer(size, size)
        self.start_ms = (time.perf_counter() - t0) * 1e3
        mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts), o3d.utility.Vector3iVector(faces))
        mat = o3d.visualization.rendering.MaterialRecord()
        mat.shader = "defaultUnlit"
        self.r.scene.add_geometry("mesh", mesh, mat)
        self.size = size

    def depth(self, K: np.ndarray, E: np.ndarray) -> np.ndarray:
        self.r.setup_camera(K, E, self.size, self.size)
        return np.asarray(self.r.render_to_depth_image(z_in_view_space=True))

    def close(self) -> None:
        """Free the renderer (Filament aborts if a scene still holds materials when it goes)."""
        self.r.scene.clear_geometry()
        del self.r


def _open3d(verts: np.ndarray, faces: np.ndarray, size: int) -> _Open3D | None:
    try:
        return _Open3D(verts, faces, size)
    except Exception as exc:  # not installed / no Vulkan or EGL: its rows are left out
        print(f"(Open3D offscreen renderer unavailable: {exc})", file=sys.stderr)
        return None


def run(repeats: int = 5) -> list[Row]:
    """Time every row; ``repeats`` interleaved rounds per row."""
    warnings.filterwarnings("ignore")
    v, f = real_mesh()
    lo, hi = v.min(0), v.max(0)
    v = (v - (lo + hi) / 2) / (hi - lo).max()
    meshes = Meshes([torch.from_numpy(v).float()], [torch.from_numpy(f)])
    rows: list[Row] = []

    cam = PerspectiveCameras.from_fov(45.0, (256, 256), orbit_poses(30.0, 15.0, 2.0))
    first = first_call_ms(lambda: rasterize_meshes(meshes, cam))
    K, E = cam.K[0].double().numpy(), cam.camera_from_world[0].double().numpy()
    o3 = _open3d(v, f.astype(np.int32), 256)
    ours = lambda: rasterize_meshes(meshes, cam)  # noqa: E731
    peer = (lambda: o3.depth(K, E)) if o3 is not None else None
    a, b = paired([ours, peer], repeats)
    rows.append(Row("depth 256^2 armadillo (numba)", a, "Open3D render_to_depth_image", b, "<= 0.5x", first))
    if o3 is not None:
        rows.append(Row("(Open3D renderer start-up)", o3.start_ms))

    first_r = first_call_ms(lambda: render_meshes(meshes, cam))
    (a,) = paired([lambda: render_meshes(meshes, cam)], repeats)
    rows.append(Row("render_meshes 256^2 (depth+normals+image)", a, "", None, "", first_r))

    torch_path = lambda: rasterize_meshes(meshes, cam, backend="torch")  # noqa: E731
    (a,) = paired([torch_path], max(1, min(repeats, 3)))
    rows.append(Row("depth 256^2 armadillo (torch path, CPU)", a))

    # a dataset-like batch: 24 views of one mesh (Filament allows one renderer per process,
    # so Open3D renders them at the same 256^2 size, one call per view; swapping materials or
    # renderers in one process slows Filament down by orders of magnitude here)
    views = PerspectiveCameras.from_fov(45.0, (256, 256), orbit_poses(torch.arange(24) * 15.0, 20.0, 2.0))
    Ks, Es = views.K.double().numpy(), views.camera_from_world.double().numpy()
    batch = lambda: rasterize_meshes(meshes, views)  # noqa: E731
    peer_b = (lambda: [o3.depth(k, e) for k, e in zip(Ks, Es)]) if o3 is not None else None
    a, b = paired([batch, peer_b], max(1, min(repeats, 3)))
    rows.append(Row("depth 24 views x 256^2 (numba)", a, "Open3D, 24 calls", b))
    views = PerspectiveCameras.from_fov(45.0, (128, 128), orbit_poses(torch.arange(24) * 15.0, 20.0, 2.0))
    (a,) = paired([lambda: rasterize_meshes(meshes, views)], max(1, min(repeats, 3)))
    rows.append(Row("depth 24 views x 128^2 (numba)", a))
    if o3 is not None:
        o3.close()
    return rows


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    load0 = os.getloadavg()
    rows = run(reps)
    load1 = os.getloadavg()
    print_table(
        rows,
        f"Rasterization and rendering (CPU, {torch.get_num_threads()} threads; load avg "
        f"{load0[0]:.2f} -> {load1[0]:.2f}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})",
    )
