"""Mesh ops, depth ops and mesh losses: geomgen beside PyTorch3D (and Open3D), same run.

Work sizes follow Mesh R-CNN's refinement stages: a batch of 16 level-4 icospheres
(16 x 2562 = 40992 packed vertices), 128 feature channels.  Every row times
forward + backward where the op is differentiable.  ``first call`` is the very
first call in this process (no warm-up), e.g. building caches.

Run: ``python bench/bench_mesh_ops.py [repeats] [threads]`` (threads: torch's intra-op
threads, default torch's choice).  Timings on a shared machine are
noisy: the script prints the load average it started and ended with.
"""

from __future__ import annotations

import importlib
import os
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, first_call_ms, print_table, timeit  # noqa: E402

from geomgen.losses.mesh_regularizers import (  # noqa: E402
    mesh_edge_loss,
    mesh_laplacian_smoothing,
    mesh_normal_consistency,
)
from geomgen.ops.depth import unproject_depth  # noqa: E402
from geomgen.ops.graph_conv import GraphConv, gather_scatter  # noqa: E402
from geomgen.ops.ico_sphere import ico_sphere  # noqa: E402
from geomgen.ops.subdivide import subdivide_meshes  # noqa: E402
from geomgen.ops.vert_align import vert_align  # noqa: E402
from geomgen.structures import Meshes, join_meshes_as_batch  # noqa: E402

N_MESHES, LEVEL, CH = 16, 4, 128


def _p3d() -> Any:
    try:
        import pytorch3d  # noqa: F401
        from pytorch3d import loss, ops, structures, utils

        return ops, loss, structures, utils
    except Exception:  # not installed / broken build: peers left out
        return None


def _paired(ours: Callable[[], Any], theirs: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Medians (ms) of ``ours`` and ``theirs`` timed alternately, call by call, after one
    warm-up each, so that load changes on a shared machine hit both alike."""
    ours()
    theirs()
    a, b = [], []
    for _ in range(repeats):
        for fn, acc in ((ours, a), (theirs, b)):
            t0 = time.perf_counter()
            fn()
            acc.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(a), statistics.median(b)


def _rows(work: str, ours: Callable[[], Any], peer: str = "", theirs: Callable[[], Any] | None = None,
          repeats: int = 5, target: str = "") -> Row:
    first = first_call_ms(ours)
    if theirs is None:
        return Row(work, timeit(ours, repeats), "", None, target, first)
    ours_ms, peer_ms = _paired(ours, theirs, repeats)
    return Row(work, ours_ms, peer, peer_ms, target, first)


def bench_graph_conv(repeats: int, p3d: Any) -> list[Row]:
    meshes = join_meshes_as_batch([ico_sphere(LEVEL)] * N_MESHES)
    edges = meshes.edges_packed()
    nv = meshes.verts_packed().shape[0]
    torch.manual_seed(0)
    x = torch.randn(nv, CH, requires_grad=True)
    layer = GraphConv(CH, CH)

    def ours() -> None:
        layer(x, edges).sum().backward()

    def ours_fresh() -> None:  # a new edge tensor every call: the adjacency is rebuilt
        layer(x, edges.clone()).sum().backward()

    theirs = None
    if p3d is not None:
        ref = p3d[0].GraphConv(CH, CH)

        def theirs() -> None:
            ref(x, edges).sum().backward()

    work = f"graph conv fwd+bwd {N_MESHES}x{nv // N_MESHES} verts, {CH}->{CH} ch"
    rows = [
        _rows(work + " (same edges)", ours, "PyTorch3D CPU", theirs, repeats, "<= 130 ms"),
        _rows(work + " (new edges)", ours_fresh, "PyTorch3D CPU", theirs, repeats, "<= 130 ms"),
    ]
    y = torch.randn(nv, CH, requires_grad=True)

    def agg(backend: str) -> Callable[[], None]:
        return lambda: gather_scatter(y, edges, backend=backend).sum().backward()

    rows.append(_rows(f"gather_scatter fwd+bwd {nv} x {CH}: sparse vs torch index_add",
                      agg("sparse"), "geomgen backend='torch'", agg("torch"), repeats))
    return rows


def bench_vert_align(repeats: int, p3d: Any) -> list[Row]:
    meshes = join_meshes_as_batch([ico_sphere(LEVEL)] * N_MESHES)
    torch.manual_seed(0)
    # a ResNet-18-like pyramid (conv2..conv5), as in Mesh R-CNN's ShapeNet head
    sizes = ((64, 56), (128, 28), (256, 14), (512, 7))
    maps = [torch.randn(N_MESHES, c, s, s, requires_grad=True) for c, s in sizes]
    verts = meshes.verts_padded()

    def ours() -> None:
        vert_align(maps, verts).sum().backward()

    theirs = None
    if p3d is not None:
        def theirs() -> None:
            p3d[0].vert_align(maps, verts).sum().backward()

    return [_rows(f"vert_align fwd+bwd {N_MESHES}x2562 verts, 4 maps 960 ch", ours, "PyTorch3D CPU", theirs, repeats)]


def bench_subdivide_ico(repeats: int, p3d: Any) -> list[Row]:
    meshes = join_meshes_as_batch([ico_sphere(LEVEL - 1)] * N_MESHES)
    feats = torch.randn(meshes.verts_packed().shape[0], CH)
    vl, fl = meshes.verts_list(), meshes.faces_list()
    rows = []

    def ours() -> None:  # a fresh Meshes each call: construction, edges and subdivision timed
        subdivide_meshes(Meshes(vl, fl), feats)

    theirs = None
    if p3d is not None:
        ops, _, structures, utils = p3d
        sub = ops.SubdivideMeshes()

        def theirs() -> None:
            sub(structures.Meshes(vl, fl), feats)

    rows.append(_rows(f"subdivide {N_MESHES}x ico level {LEVEL - 1} (+{CH} ch feats), fresh Meshes", ours,
                      "PyTorch3D CPU", theirs, repeats))
    ico_mod = importlib.import_module("geomgen.ops.ico_sphere")  # the module, not the function

    def ours_ico() -> None:
        ico_mod._ico_cpu.cache_clear()
        ico_sphere(LEVEL)

    rows.append(_rows(f"ico_sphere({LEVEL}) uncached", ours_ico, "PyTorch3D CPU",
                      (lambda: p3d[3].ico_sphere(LEVEL)) if p3d is not None else None, repeats))
    rows.append(_rows(f"ico_sphere({LEVEL}) cached", lambda: ico_sphere(LEVEL), "", None, repeats))
    return rows


def bench_losses(repeats: int, p3d: Any) -> list[Row]:
    base = join_meshes_as_batch([ico_sphere(LEVEL)] * N_MESHES)
    torch.manual_seed(0)
    delta = (0.02 * torch.randn(base.verts_packed().shape[0], 3)).requires_grad_()
    pm = None
    if p3d is not None:
        pm = p3d[2].Meshes(base.verts_list(), base.faces_list())
        pm.edges_packed()  # same starting point as ours: topology computed once
    base.edges_packed()
    p3d_loss = p3d[1] if p3d is not None else None
    cases = [
        ("mesh_edge_loss", lambda m: mesh_edge_loss(m), lambda m: p3d_loss.mesh_edge_loss(m)),
        ("laplacian uniform", lambda m: mesh_laplacian_smoothing(m, "uniform"),
         lambda m: p3d_loss.mesh_laplacian_smoothing(m, "uniform")),
        ("laplacian cot", lambda m: mesh_laplacian_smoothing(m, "cot"),
         lambda m: p3d_loss.mesh_laplacian_smoothing(m, "cot")),
        ("normal consistency", mesh_normal_consistency, lambda m: p3d_loss.mesh_normal_consistency(m)),
    ]
    rows = []
    for name, fn, ref_fn in cases:
        def ours(fn: Callable = fn) -> None:
            fn(base.offset_verts(delta)).backward()

        theirs = None
        if pm is not None:
            def theirs(ref_fn: Callable = ref_fn) -> None:
                ref_fn(pm.offset_verts(delta)).sum().backward()

        rows.append(_rows(f"{name} fwd+bwd {N_MESHES}x2562 verts", ours, "PyTorch3D CPU", theirs, repeats))
    return rows


def bench_unproject(repeats: int) -> list[Row]:
    n, h, w = 16, 240, 320
    torch.manual_seed(0)
    depth = torch.rand(n, h, w) * 3 + 0.5
    K = torch.tensor([[300.0, 0, w / 2], [0, 300.0, h / 2], [0, 0, 1]])

    def ours() -> None:
        unproject_depth(depth, K)

    theirs = None
    try:
        import open3d as o3d

        intr = o3d.camera.PinholeCameraIntrinsic(w, h, 300.0, 300.0, w / 2 - 0.5, h / 2 - 0.5)
        imgs = [o3d.geometry.Image(depth[i].numpy()) for i in range(n)]

        def theirs() -> None:
            for im in imgs:
                o3d.geometry.PointCloud.create_from_depth_image(im, intr, depth_scale=1.0, depth_trunc=1e9)
    except Exception:
        pass
    return [_rows(f"unproject_depth {n}x{h}x{w}", ours, "open3d (loop)", theirs, repeats)]


def run(repeats: int = 5) -> list[Row]:
    """All rows of the table (geomgen, peer, ratio, first call)."""
    warnings.filterwarnings("ignore", category=UserWarning)
    p3d = _p3d()
    rows: list[Row] = []
    rows += bench_graph_conv(repeats, p3d)
    rows += bench_vert_align(repeats, p3d)
    rows += bench_subdivide_ico(repeats, p3d)
    rows += bench_losses(repeats, p3d)
    rows += bench_unproject(repeats)
    return rows


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if len(sys.argv) > 2:
        torch.set_num_threads(int(sys.argv[2]))
    load0 = os.getloadavg()
    table = run(reps)
    load1 = os.getloadavg()
    print_table(table, f"mesh ops (torch {torch.__version__}, {torch.get_num_threads()} threads, "
                       f"median of {reps}; load avg {load0[0]:.1f} -> {load1[0]:.1f})")
