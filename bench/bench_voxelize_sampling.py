"""Voxelization and surface sampling: geomgen beside Open3D, trimesh and PyTorch3D, same run.

Work: the armadillo (26k vertices, 52k faces) from CGAL's sample data.

* ``sample_points_from_meshes`` 10k / 100k points (with and without normals)
  beside ``trimesh.sample.sample_surface`` and PyTorch3D's
  ``sample_points_from_meshes``;
* ``voxelize`` surface / solid at 32^3, 64^3, 128^3 beside Open3D's
  ``VoxelGrid.create_from_triangle_mesh`` (surface only) and trimesh's
  ``mesh.voxelized(pitch)``, with the same voxel size (longest side / R);
* ``points_to_voxels`` of 100k surface samples beside Open3D's
  ``VoxelGrid.create_from_point_cloud`` (occupancy) and PyTorch3D's
  ``add_pointclouds_to_volumes`` (nearest splatting of 8 feature channels).

Each row times geomgen and its peer **interleaved** (one call of each per
round, median over the rounds) so both see the same load on a shared
machine; ``first call`` is geomgen's first call in this process (numba cache
load, or compilation when the cache is cold).

Run: ``python bench/bench_voxelize_sampling.py [repeats]``.  The title gives
the load average before and after and ``OMP_WAIT_POLICY``: on a busy 2-core
machine OpenMP's default busy-waiting makes every parallel region (torch's,
numba's, the peers') stall for scheduler ticks; ``OMP_WAIT_POLICY=PASSIVE``
(set before Python starts) removes most of that noise for everybody.
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

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, first_call_ms, print_table, real_mesh  # noqa: E402

from geomgen.ops.points_to_voxels import points_to_voxels  # noqa: E402
from geomgen.ops.sample_points import sample_points_from_meshes  # noqa: E402
from geomgen.ops.voxelize import voxelize  # noqa: E402
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


def _optional(name: str) -> Any:
    try:
        return __import__(name, fromlist=["_"])
    except Exception:  # peer not installed / broken build: its rows are left out
        return None


def run(repeats: int = 5) -> list[Row]:
    """Time every row; ``repeats`` interleaved rounds per row (fewer for the slow trimesh voxelizer)."""
    warnings.filterwarnings("ignore")
    o3d = _optional("open3d")
    trimesh = _optional("trimesh")
    p3d_ops = _optional("pytorch3d.ops")
    p3d_struct = _optional("pytorch3d.structures")
    v, f = real_mesh()
    verts = torch.from_numpy(v).float()
    faces = torch.from_numpy(f)
    meshes = Meshes([verts], [faces])
    ext = float((v.max(0) - v.min(0)).max())
    rows: list[Row] = []

    # ------------------------------------------------------------ sampling
    tm = trimesh.Trimesh(v, f, process=False) if trimesh is not None else None
    pm = p3d_struct.Meshes([verts], [faces]) if p3d_struct is not None else None
    first = first_call_ms(lambda: sample_points_from_meshes(meshes, 1000))
    for S in (10_000, 100_000):
        ours = lambda S=S: sample_points_from_meshes(meshes, S)  # noqa: E731
        ours_n = lambda S=S: sample_points_from_meshes(meshes, S, return_normals=True)  # noqa: E731
        tri = (lambda S=S: trimesh.sample.sample_surface(tm, S)) if tm is not None else None
        p3 = (lambda S=S: p3d_ops.sample_points_from_meshes(pm, S)) if pm is not None else None
        p3n = (lambda S=S: p3d_ops.sample_points_from_meshes(pm, S, return_normals=True)) if pm is not None else None
        a, b, c, d, e = paired([ours, tri, p3, ours_n, p3n], repeats)
        k = f"{S // 1000}k"
        rows.append(Row(f"sample {k} points (armadillo)", a, "trimesh sample_surface", b,
                        "<= 0.5x" if S == 100_000 else "", first if S == 10_000 else None))
        rows.append(Row(f"sample {k} points (armadillo)", a, "PyTorch3D CPU", c))
        rows.append(Row(f"sample {k} points + normals", d, "PyTorch3D CPU", e))

    # ------------------------------------------------------------ voxelize
    o3_mesh = None
    if o3d is not None:
        o3_mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(v), o3d.utility.Vector3iVector(f))
    first_s = first_call_ms(lambda: voxelize(meshes, 8))
    first_v = first_call_ms(lambda: voxelize(meshes, 8, mode="solid"))
    for R in (32, 64, 128):
        vs = ext / R
        ours = lambda R=R: voxelize(meshes, R)  # noqa: E731
        solid = lambda R=R: voxelize(meshes, R, mode="solid")  # noqa: E731
        o3 = None
        if o3_mesh is not None:
            o3 = lambda vs=vs: o3d.geometry.VoxelGrid.create_from_triangle_mesh(o3_mesh, vs)  # noqa: E731
        a, b, c = paired([ours, o3, solid], repeats)
        rows.append(Row(f"voxelize surface {R}^3", a, "Open3D", b, "<= 1.0x", first_s if R == 32 else None))
        rows.append(Row(f"voxelize solid {R}^3", c, "Open3D (surface)", b, "<= 2.0x", first_v if R == 32 else None))
        if tm is not None:
            tri = lambda vs=vs: tm.voxelized(vs)  # noqa: E731
            a2, t2 = paired([ours, tri], max(1, repeats if R < 128 else min(repeats, 3)))
            rows.append(Row(f"voxelize surface {R}^3", a2, "trimesh voxelized", t2))

    # ------------------------------------------------------------ points_to_voxels
    pts = sample_points_from_meshes(meshes, 100_000, generator=torch.Generator().manual_seed(0))
    feats = torch.rand(1, 100_000, 8, generator=torch.Generator().manual_seed(1))
    first_p = first_call_ms(lambda: points_to_voxels(pts, 8))
    pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(pts[0].double().numpy())) if o3d is not None else None
    for R in (64, 128):
        vs = ext / R
        ours = lambda R=R: points_to_voxels(pts, R)  # noqa: E731
        o3 = (lambda vs=vs: o3d.geometry.VoxelGrid.create_from_point_cloud(pcd, vs)) if pcd is not None else None
        ours_f = lambda R=R: points_to_voxels(pts, R, features=feats)  # noqa: E731
        p3 = None
        if p3d_ops is not None and p3d_struct is not None:
            pc = p3d_struct.Pointclouds(pts, features=feats)
            lo = pts[0].amin(0)

            def p3(R: int = R, pc: Any = pc, lo: torch.Tensor = lo, vs: float = vs) -> Any:
                vol = p3d_struct.Volumes(
                    densities=torch.zeros(1, 1, R, R, R), features=torch.zeros(1, 8, R, R, R),
                    voxel_size=vs, volume_translation=-(lo + R * vs / 2),
                )
                return p3d_ops.add_pointclouds_to_volumes(pc, vol, mode="nearest")

        a, b, c, d = paired([ours, o3, ours_f, p3], repeats)
        rows.append(Row(f"points_to_voxels 100k pts {R}^3", a, "Open3D", b, "", first_p if R == 64 else None))
        rows.append(Row(f"points_to_voxels 100k pts, 8 ch mean {R}^3", c, "PyTorch3D add_pointclouds_to_volumes", d))
    return rows


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    load0 = os.getloadavg()
    rows = run(reps)
    load1 = os.getloadavg()
    print_table(
        rows,
        f"Voxelization and surface sampling (CPU, {torch.get_num_threads()} threads; load avg "
        f"{load0[0]:.2f} -> {load1[0]:.2f}; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})",
    )
