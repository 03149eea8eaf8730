"""Benchmark of marching cubes and cubify against scikit-image, PyMCubes and PyTorch3D (CPU).

Work:

* marching cubes of a torus SDF (R = 0.6, r = 0.25 on ``linspace(-1, 1, n)^3``, float32) at
  n = 64, 128, 256, level 0.  geomgen runs ``marching_cubes(vol, kind="sdf")`` (numba backend,
  returns a ``Meshes``); the peers return arrays: ``skimage.measure.marching_cubes``
  (Lewiner), ``mcubes.marching_cubes`` (PyMCubes) and PyTorch3D's
  ``pytorch3d.ops.marching_cubes.marching_cubes`` (C++ CPU extension, ``return_local_coords=False``).
  Every row of one size is timed in the same run; the target is 256^3 <= 0.5x scikit-image.
  geomgen is timed with its default ``workers=1`` (calling thread only) and again with
  ``workers=-1`` (the thread budget, :func:`geomgen.backend.thread_budget`, sharing the z-slices).
* cubify of the solid torus (same grid thresholded) at n = 32, 64, 128 against
  ``pytorch3d.ops.cubify`` (CPU, ``align="corner"``).

Run: ``python bench/bench_marching_cubes.py [repeats]``.  The machine may be shared: compare
ratios measured in the same run, not absolute times across runs; ``uptime`` is printed.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common import Row, first_call_ms, print_table, timeit  # noqa: E402


def torus_sdf(n: int) -> np.ndarray:
    """``(n, n, n)`` float32 signed distance to a torus in the xy plane (z = array axis 0)."""
    x = np.linspace(-1.0, 1.0, n)
    z, y, xx = np.meshgrid(x, x, x, indexing="ij")
    return (np.sqrt((np.sqrt(xx**2 + y**2) - 0.6) ** 2 + z**2) - 0.25).astype(np.float32)


def _optional(name: str):
    """The module ``name`` (dotted names allowed), or None when it cannot be imported."""
    import importlib

    try:
        return importlib.import_module(name)
    except Exception:
        return None


def run(repeats: int = 5) -> list[Row]:
    from geomgen.backend import thread_budget
    from geomgen.ops.cubify import cubify
    from geomgen.ops.marching_cubes import marching_cubes

    skm = _optional("skimage.measure")
    mcubes = _optional("mcubes")
    p3d = None
    try:
        import pytorch3d.ops as p3d_ops
        from pytorch3d.ops.marching_cubes import marching_cubes as p3d_mc

        p3d = (p3d_mc, p3d_ops.cubify)
    except Exception:
        pass

    rows: list[Row] = []
    small = torch.from_numpy(torus_sdf(16))
    first = first_call_ms(lambda: marching_cubes(small, kind="sdf"))  # numba kernels load here
    threads = thread_budget()

    for n in (64, 128, 256):
        arr = torus_sdf(n)
        vol = torch.from_numpy(arr)
        reps = repeats if n < 256 else max(3, repeats)
        ours = timeit(lambda: marching_cubes(vol, kind="sdf"), reps)
        ours_all = timeit(lambda: marching_cubes(vol, kind="sdf", workers=-1), reps)
        m = marching_cubes(vol, kind="sdf")
        nv, nf = int(m.num_verts_per_mesh()[0]), int(m.num_faces_per_mesh()[0])
        work = f"marching cubes torus SDF {n}^3 ({nv // 1000}k verts, {nf // 1000}k faces)"
        target = "<= 0.5x" if n == 256 else ""
        if skm is not None:
            t = timeit(lambda: skm.marching_cubes(arr, 0.0), reps)
            rows.append(Row(work, ours, "scikit-image", t, target, first if n == 64 else None))
            rows.append(Row(f"  same, geomgen workers=-1 ({threads} threads)", ours_all, "scikit-image", t, target))
        else:
            rows.append(Row(work, ours, "", None, target, first if n == 64 else None))
        if mcubes is not None:
            t = timeit(lambda: mcubes.marching_cubes(arr, 0.0), reps)
            rows.append(Row(f"  same {n}^3", ours, "PyMCubes", t))
        if p3d is not None:
            vb = vol[None]
            t = timeit(lambda: p3d[0](vb, 0.0, return_local_coords=False), reps)
            rows.append(Row(f"  same {n}^3", ours, "PyTorch3D CPU", t))

    first_c = first_call_ms(lambda: cubify(small <= 0))
    for n in (32, 64, 128):
        occ = torch.from_numpy(torus_sdf(n) <= 0)
        occ_f = occ.float()
        ours = timeit(lambda: cubify(occ_f), repeats)
        ours_all = timeit(lambda: cubify(occ_f, workers=-1), repeats)
        m = cubify(occ_f)
        nf = int(m.num_faces_per_mesh()[0])
        work = f"cubify solid torus {n}^3 ({int(occ.sum()) // 1000}k voxels, {nf // 1000}k faces)"
        if p3d is not None:
            vb = occ_f[None]
            t = timeit(lambda: p3d[1](vb, 0.5, align="corner"), max(1, min(repeats, 3)))
            rows.append(Row(work, ours, "PyTorch3D CPU", t, "", first_c if n == 32 else None))
            rows.append(Row(f"  same, geomgen workers=-1 ({threads} threads)", ours_all, "PyTorch3D CPU", t))
        else:
            rows.append(Row(work, ours, "", None, "", first_c if n == 32 else None))
    return rows


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    print(f"load average before: {os.getloadavg()}")
    table = run(reps)
    print_table(table, "marching cubes / cubify (CPU)")
    print(f"\nload average after: {os.getloadavg()}")
