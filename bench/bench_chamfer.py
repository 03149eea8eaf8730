"""Chamfer distance on the CPU: geomgen beside open3d, scipy, PyTorch3D and torch.

Work measured (all float32, points sampled on the armadillo of libcgal-demo):

* ``chamfer P x P`` -- forward ``geomgen.losses.chamfer_distance(x, y)`` on
  ``(1, P, 3)`` tensors (squared distances, both directions, mean), against
  the same work done by each peer: open3d ``compute_point_cloud_distance``
  both ways (KD-tree; returns unsquared distances, squared and averaged
  here), scipy ``cKDTree`` built on both clouds and queried both ways
  (``workers=-1``), PyTorch3D's CPU ``chamfer_distance`` (brute force) and
  ``torch.cdist`` + ``min`` both ways (brute force; 4k and 16k only).
* ``chamfer fwd+bwd 32x2048`` -- forward and backward of the loss on a batch
  of 32 clouds x 2048 points, ``requires_grad`` on both, against PyTorch3D CPU
  and ``torch.cdist``.

``first call`` is the first call of each piece of work in this process: the
first one of a kernel variant loads it from numba's on-disk cache (4k runs the
serial kernels, 16k the parallel search, the batch the parallel grid build).
The row ``first call, cold numba cache`` runs a small and a large call in a
fresh interpreter with an empty ``NUMBA_CACHE_DIR``: the one-off compile of
all kernels that a new install pays.

Run ``python bench/bench_chamfer.py`` (``--repeats N``).  The table prints
the load average: on a shared machine compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import Row, first_call_ms, print_table, real_mesh, timeit  # noqa: E402

from geomgen.losses.chamfer import chamfer_distance  # noqa: E402

SIZES = (4096, 16384, 65536)
BRUTE_MAX = 16384  # brute-force peers beyond this take minutes or tens of GiB
BATCH, BATCH_P = 32, 2048


def _sample(n: int, seed: int, count: int = 1) -> torch.Tensor:
    """``(count, n, 3)`` float32 points sampled uniformly on the armadillo."""
    from geomgen.ops.sample_points import sample_points_from_meshes
    from geomgen.structures import Meshes

    v, f = real_mesh()
    mesh = Meshes([torch.from_numpy(v).float()] * count, [torch.from_numpy(f)] * count)
    gen = torch.Generator().manual_seed(seed)
    return sample_points_from_meshes(mesh, n, generator=gen).float().contiguous()


def _peer_open3d(x: torch.Tensor, y: torch.Tensor):
    try:
        import open3d as o3d
    except ImportError:
        return None
    px = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(x[0].double().numpy()))
    py = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(y[0].double().numpy()))

    def run() -> float:
        a = np.asarray(px.compute_point_cloud_distance(py))
        b = np.asarray(py.compute_point_cloud_distance(px))
        return float((a * a).mean() + (b * b).mean())

    return run


def _peer_ckdtree(x: torch.Tensor, y: torch.Tensor):
    try:
        from scipy.spatial import cKDTree
    except ImportError:
        return None
    xn, yn = x[0].numpy(), y[0].numpy()

    def run() -> float:
        a, _ = cKDTree(yn).query(xn, k=1, workers=-1)
        b, _ = cKDTree(xn).query(yn, k=1, workers=-1)
        return float((a * a).mean() + (b * b).mean())

    return run


def _peer_pytorch3d():
    try:
        from pytorch3d.loss import chamfer_distance as p3d_chamfer
    except Exception:  # ImportError or a broken extension
        return None
    return p3d_chamfer


def _cdist_chamfer(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    d = torch.cdist(x, y).square()
    return d.min(2).values.mean(1).mean() + d.min(1).values.mean(1).mean()


def _cold_first_call_ms() -> float | None:
    """First chamfer calls (serial and parallel kernels) in a fresh interpreter
    with an empty numba cache: the compile time."""
    code = (
        "import time, torch\n"
        "from geomgen.losses.chamfer import chamfer_distance\n"
        "x = torch.rand(1, 1000, 3); y = torch.rand(1, 1000, 3)\n"
        "xb = torch.rand(4, 8192, 3); yb = torch.rand(4, 8192, 3)\n"
        "t0 = time.perf_counter(); chamfer_distance(x, y); chamfer_distance(xb, yb)\n"
        "print((time.perf_counter() - t0) * 1e3)\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=tmp)
        try:
            out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                                 text=True, timeout=600, check=True)
            return float(out.stdout.strip().splitlines()[-1])
        except (subprocess.SubprocessError, ValueError, IndexError):
            return None


def run(repeats: int = 5) -> list[Row]:
    """Time every row; geomgen and its peers alternate within each row's work."""
    rows: list[Row] = []
    p3d = _peer_pytorch3d()

    for P in SIZES:
        x, y = _sample(P, 1), _sample(P, 2)

        def ours(x=x, y=y):
            return chamfer_distance(x, y)[0]

        first = first_call_ms(ours)
        reps = repeats if P <= 16384 else max(3, repeats)
        g = timeit(ours, repeats=reps)
        work = f"chamfer {P // 1024}k x {P // 1024}k (1, P, 3) fwd"
        target = "<= 1.0x" if P >= 16384 else ""
        peers = [("open3d", _peer_open3d(x, y)), ("scipy cKDTree", _peer_ckdtree(x, y))]
        if P <= BRUTE_MAX:
            if p3d is not None:
                peers.append(("PyTorch3D CPU", lambda x=x, y=y: p3d(x, y)[0]))
            peers.append(("torch.cdist", lambda x=x, y=y: _cdist_chamfer(x, y)))
        for name, fn in peers:
            if fn is None:
                continue
            reps_p = 1 if name in ("PyTorch3D CPU", "torch.cdist") and P > 4096 else reps
            peer_ms = timeit(fn, repeats=reps_p)
            rows.append(Row(work, g, name, peer_ms, target if name == "open3d" else "",
                            first if name == "open3d" else None))

    # forward + backward on a batch
    xb, yb = _sample(BATCH_P, 3, BATCH), _sample(BATCH_P, 4, BATCH)

    def fwd_bwd(fn):
        def step():
            a = xb.clone().requires_grad_(True)
            b = yb.clone().requires_grad_(True)
            fn(a, b).backward()
        return step

    ours = fwd_bwd(lambda a, b: chamfer_distance(a, b)[0])
    first = first_call_ms(ours)
    g = timeit(ours, repeats=repeats)
    work = f"chamfer fwd+bwd {BATCH}x{BATCH_P}"
    if p3d is not None:
        rows.append(Row(work, g, "PyTorch3D CPU",
                        timeit(fwd_bwd(lambda a, b: p3d(a, b)[0]), repeats=max(1, repeats // 2)),
                        "<= 30 ms", first))
    rows.append(Row(work, g, "torch.cdist", timeit(fwd_bwd(_cdist_chamfer), repeats=1),
                    "<= 30 ms" if p3d is None else "", first if p3d is None else None))
    cold = _cold_first_call_ms()
    if cold is not None:
        rows.append(Row("first call, cold numba cache (compiles all kernels)", cold))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    load = os.getloadavg()
    t0 = time.perf_counter()
    rows = run(args.repeats)
    import numba

    title = (f"Chamfer / nearest neighbours, CPU (torch threads {torch.get_num_threads()}, "
             f"numba threads {numba.get_num_threads()}, load {load[0]:.1f} -> "
             f"{os.getloadavg()[0]:.1f}, {time.perf_counter() - t0:.0f} s)")
    print_table(rows, title)


if __name__ == "__main__":
    main()
