"""Tests of the numba grid kernels behind knn_points / chamfer_distance.

The kernel is compared with the pure-torch brute-force reference
(``geomgen.ops.knn._knn_points_torch``) and with scipy's cKDTree: distances
must match exactly (both compute them coordinate by coordinate in the input
precision), indices wherever the neighbour is unambiguous.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from geomgen.kernels import knn_numba as kn
from geomgen.ops.knn import _knn_points_torch


def reference(p1, p2, l1, l2, K, norm):
    out = _knn_points_torch(torch.from_numpy(p1), torch.from_numpy(p2), torch.from_numpy(l1),
                            torch.from_numpy(l2), K, norm=norm)
    return out.dists.numpy(), out.idx.numpy()


def _all_dists(p1, p2, norm):
    """(P1, P2) distances in the input precision, in the kernel's and the
    reference's order of operations."""
    diff = p1[:, None, :] - p2[None, :, :]
    if norm == 2:
        sq = diff * diff
        return (sq[..., 0] + sq[..., 1]) + sq[..., 2]
    ab = np.abs(diff)
    return (ab[..., 0] + ab[..., 1]) + ab[..., 2]


def assert_same_neighbours(d, i, rd, ri, p1, p2, l1, l2, norm):
    """The kernel's K neighbours are exactly the K smallest of a numpy brute
    force with the same arithmetic; the reference agrees to the last bits
    (it *selects* with distances rounded differently, fused multiply-adds,
    so at ulp-level near-ties it may pick another point), and on the index
    wherever the neighbour is unambiguous (no other point at that distance)."""
    assert d.shape == rd.shape and i.shape == ri.shape
    assert np.array_equal(i >= 0, ri >= 0)
    assert (d[i < 0] == 0).all() and (rd[ri < 0] == 0).all()
    np.testing.assert_allclose(np.sort(d, -1), np.sort(rd, -1), rtol=1e-6, atol=0)
    valid = i >= 0
    assert (np.diff(d, axis=-1)[valid[..., 1:]] >= 0).all()  # sorted by distance
    K = d.shape[2]
    for n in range(d.shape[0]):
        L1, L2 = int(l1[n]), int(l2[n])
        if L1 == 0 or L2 == 0:
            continue
        full = _all_dists(p1[n, :L1], p2[n, :L2], norm)  # (L1, L2)
        kk = valid[n, :L1]
        best = np.sort(full, axis=1)[:, :K]
        np.testing.assert_array_equal(d[n, :L1][:, : best.shape[1]], best)
        # every index points at a point at exactly that distance
        rows = np.arange(L1)[:, None]
        np.testing.assert_array_equal(full[rows, np.where(kk, i[n, :L1], 0)][kk], d[n, :L1][kk])
        ties = (full[:, None, :] == d[n, :L1, :, None]).sum(-1)  # (L1, K)
        unambiguous = kk & (ties == 1) & (rd[n, :L1] == d[n, :L1])
        np.testing.assert_array_equal(i[n, :L1][unambiguous], ri[n, :L1][unambiguous])


def _batch(rng, N, P1, P2, dtype, hetero=True):
    p1 = rng.standard_normal((N, P1, 3)).astype(dtype)
    p2 = rng.standard_normal((N, P2, 3)).astype(dtype)
    l1 = np.full(N, P1, dtype=np.int64)
    l2 = np.full(N, P2, dtype=np.int64)
    if hetero:
        l1[1:] = rng.integers(0, P1 + 1, N - 1)
        l2[1:] = rng.integers(0, P2 + 1, N - 1)
    return p1, p2, l1, l2


# --------------------------------------------------------------------------- #
# against the reference
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("norm", [1, 2])
@pytest.mark.parametrize("K", [1, 2, 7, 40])
def test_random_padded_batches(dtype, norm, K):
    rng = np.random.default_rng(K * 10 + norm + (dtype is np.float64))
    p1, p2, l1, l2 = _batch(rng, 4, 300, 250, dtype)
    l2[2] = 3  # fewer reference points than K
    l2[3] = 0  # empty reference cloud
    d, i = kn.knn_search(p1, p2, l1, l2, K, norm, threads=2)
    assert d.dtype == dtype and i.dtype == np.int64
    rd, ri = reference(p1, p2, l1, l2, K, norm)
    assert_same_neighbours(d, i, rd, ri, p1, p2, l1, l2, norm)
    assert (i[3] == -1).all() and (d[3] == 0).all()
    assert (i[2, : l1[2], 3:] == -1).all()
    assert (i[0, :, : min(K, 250)] >= 0).all()


def _degenerate(kind, rng, P, dtype):
    q = rng.standard_normal((1, P, 3))
    r = rng.standard_normal((1, P, 3))
    if kind == "plane":
        r[..., 1] = 0.25
    elif kind == "line_x":
        r[..., 1:] = 0.0
    elif kind == "line_z":
        r[..., :2] = 0.0
    elif kind == "single_point_repeated":
        r[...] = 0.5
    elif kind == "duplicates":
        r = np.repeat(r[:, :20], P // 20, axis=1)
        q[:, ::3] = r[:, ::3]  # many queries sit exactly on a duplicated point
    elif kind == "outliers":  # a few far points stretch the box (robust grid path)
        r[:, :5] *= 1e6
        q[:, :3] *= 1e7
    elif kind == "cluster_and_outliers":
        r *= 1e-4
        r[:, :4, 2] = [-1e9, 1e9, 3e8, -2e8]
        q *= 1e-4
    elif kind == "far_queries":
        q += np.array([50.0, -30.0, 10.0])
    elif kind == "huge_range":
        r *= 10.0 ** rng.integers(-6, 12, (1, P, 1))
        q *= 10.0 ** rng.integers(-6, 12, (1, P, 1))
    elif kind == "tiny_extent":
        r = 1.0 + r * 1e-7
        q = 1.0 + q * 1e-7
    elif kind == "subnormal":  # extents below the smallest normal float
        scale = 1e-41 if dtype is np.float32 else 1e-310
        r, q = r * scale, q * scale
    elif kind == "integer_grid":  # massive exact ties
        r = np.round(r * 2) / 2
        q = np.round(q * 2) / 2
    return q, r


@pytest.mark.parametrize(
    "kind",
    ["plane", "line_x", "line_z", "single_point_repeated", "duplicates", "outliers",
     "cluster_and_outliers", "far_queries", "huge_range", "tiny_extent", "subnormal",
     "integer_grid"],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_degenerate_clouds(kind, dtype):
    rng = np.random.default_rng(len(kind))
    P = 600  # >= 512 so that the outlier-robust grid sizing is exercised
    q, r = _degenerate(kind, rng, P, dtype)
    q, r = q.astype(dtype), r.astype(dtype)
    lq = np.array([P])
    lr = np.array([P])
    for K, norm in [(1, 2), (4, 2), (3, 1)]:
        d, i = kn.knn_search(q, r, lq, lr, K, norm, threads=2)
        rd, ri = reference(q, r, lq, lr, K, norm)
        assert_same_neighbours(d, i, rd, ri, q, r, lq, lr, norm)


def test_duplicates_found_at_distance_zero_with_lowest_index():
    rng = np.random.default_rng(3)
    base = rng.standard_normal((1, 50, 3)).astype(np.float32)
    r = np.concatenate([base, base, base], axis=1)  # every point three times
    d, i = kn.knn_search(base, r, np.array([50]), np.array([150]), 1, 2)
    assert (d == 0).all()
    assert (i[0, :, 0] == np.arange(50)).all()  # ties go to the lower index
    d, i = kn.knn_search(base, r, np.array([50]), np.array([150]), 3, 2)
    assert (d == 0).all()
    assert (np.sort(i[0], -1) == np.arange(50)[:, None] + np.array([0, 50, 100])).all()


def test_empty_shapes():
    z = np.zeros((0, 5, 3), np.float32)
    d, i = kn.knn_search(z, z, np.zeros(0, np.int64), np.zeros(0, np.int64), 2, 2)
    assert d.shape == (0, 5, 2) and i.shape == (0, 5, 2)
    p = np.ones((2, 0, 3), np.float32)
    q = np.ones((2, 4, 3), np.float32)
    d, i = kn.knn_search(p, q, np.zeros(2, np.int64), np.full(2, 4), 1, 2)
    assert d.shape == (2, 0, 1)
    d, i = kn.knn_search(q, p, np.full(2, 4), np.zeros(2, np.int64), 3, 1)
    assert (i == -1).all() and (d == 0).all()
    res = kn.chamfer_nn(q, p, np.full(2, 4), np.zeros(2, np.int64), 2)
    assert (res[1] == -1).all() and res[2].shape == (2, 0)


def test_real_meshes_against_ckdtree(cgal_data):
    spatial = pytest.importorskip("scipy.spatial")
    from geomgen.io import load_mesh

    verts = load_mesh(cgal_data / "meshes" / "armadillo.off").verts_list()[0].double().numpy()
    rng = np.random.default_rng(0)
    q = verts[rng.choice(len(verts), 5000, replace=False)] + rng.normal(0, 0.5, (5000, 3))
    tree = spatial.cKDTree(verts)
    for K in (1, 4):
        d, i = kn.knn_search(q[None], verts[None], np.array([5000]), np.array([len(verts)]), K, 2,
                             threads=2)
        dd, ii = tree.query(q, k=K)
        dd, ii = dd.reshape(5000, K), ii.reshape(5000, K)
        np.testing.assert_allclose(np.sqrt(d[0]), dd, rtol=1e-12, atol=1e-12)
        assert (i[0] == ii).mean() > 0.999  # the rest are ties
    # float32, queries from a second mesh (elephant), both directions through chamfer_nn
    other = load_mesh(cgal_data / "meshes" / "elephant.off").verts_list()[0].numpy()
    a = verts.astype(np.float32)[None]
    b = (other * 100.0).astype(np.float32)[None]  # roughly the armadillo's scale
    la, lb = np.array([a.shape[1]]), np.array([b.shape[1]])
    d_ab, i_ab, d_ba, i_ba = kn.chamfer_nn(a, b, la, lb, 2, True, 2)
    for d_, i_, x, y, ly in ((d_ab, i_ab, a, b, lb), (d_ba, i_ba, b, a, la)):
        xs = np.ascontiguousarray(x[:, ::7])  # the brute-force reference on a subset
        rd, _ = reference(xs, y, np.array([xs.shape[1]]), ly, 1, 2)
        np.testing.assert_allclose(d_[:, ::7], rd[..., 0], rtol=1e-6, atol=0)
        diff = x[0] - y[0, i_[0]]  # every index points at a point at that distance
        np.testing.assert_array_equal(((diff * diff)[:, :2].sum(1) + (diff * diff)[:, 2]), d_[0])


# --------------------------------------------------------------------------- #
# chamfer_nn, serial / parallel variants, thread policy
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("norm", [1, 2])
def test_chamfer_nn_matches_knn_search(norm):
    rng = np.random.default_rng(norm)
    x, y, lx, ly = _batch(rng, 5, 400, 350, np.float32)
    ly[4] = 0
    d_xy, i_xy, d_yx, i_yx = kn.chamfer_nn(x, y, lx, ly, norm, True, 2)
    a, b = kn.knn_search(x, y, lx, ly, 1, norm, 2)
    np.testing.assert_array_equal(d_xy, a[..., 0])
    np.testing.assert_array_equal(i_xy, b[..., 0])
    a, b = kn.knn_search(y, x, ly, lx, 1, norm, 2)
    np.testing.assert_array_equal(d_yx, a[..., 0])
    np.testing.assert_array_equal(i_yx, b[..., 0])
    one = kn.chamfer_nn(x, y, lx, ly, norm, False, 2)
    assert one[2] is None and one[3] is None
    np.testing.assert_array_equal(one[0], d_xy)


def test_serial_and_parallel_variants_agree():
    rng = np.random.default_rng(7)
    p1, p2, l1, l2 = _batch(rng, 3, 6000, 5000, np.float32)
    grid_s = kn.build_grids(p2, l2, threads=1)
    grid_p = kn.build_grids(p2, l2, threads=2)
    for a, b in zip(grid_s, grid_p):
        np.testing.assert_array_equal(a, b)
    ser = kn.knn_search(p1, p2, l1, l2, 3, 2, threads=1)
    par = kn.knn_search(p1, p2, l1, l2, 3, 2, threads=2)
    np.testing.assert_array_equal(ser[0], par[0])
    np.testing.assert_array_equal(ser[1], par[1])


def test_thread_policy(monkeypatch):
    """The threads the ops give these kernels (geomgen.backend.kernel_threads, budget
    torch.get_num_threads())."""
    import numba

    from geomgen.backend import kernel_threads

    def parallel(budget: int, work: int) -> bool:
        monkeypatch.setattr(torch, "get_num_threads", lambda: budget)
        with kernel_threads(work) as threads:
            if threads > 1:
                assert numba.get_num_threads() == threads <= min(budget, numba.config.NUMBA_NUM_THREADS)
            return threads > 1

    assert not parallel(1, 10**6)  # torch allows 1 thread: serial kernels
    assert not parallel(8, 100)  # tiny problem: serial
    if numba.config.NUMBA_NUM_THREADS >= 2:
        assert parallel(2, 10**6)
    assert parallel(10**6, 10**6) == (numba.config.NUMBA_NUM_THREADS > 1)
    assert numba.get_num_threads() <= numba.config.NUMBA_NUM_THREADS


def test_grid_dims_guards():
    G = np.ones(3, dtype=np.int64)
    for ext, n in [((0.0, 0.0, 0.0), 100), ((np.inf, 1.0, 1.0), 100), ((1e300, 1e-300, 1.0), 10**6),
                   ((1e-30, 1e-30, 1e-30), 1000), ((5.0, 0.0, 0.0), 10**5), ((1.0, 1.0, 1.0), 1),
                   ((1e200, 1e200, 1e200), 10**4), ((3.0, 2.0, 1e-12), 5000)]:
        h = kn._grid_dims(np.array(ext, dtype=np.float64), n, 1.0, G)
        assert (G >= 1).all()
        assert G.prod() <= 8 * max(n, 1) + 64
        assert h >= 0.0 and np.isfinite(h)
        if h == 0.0:
            assert (G == 1).all()


def test_forked_child_does_not_use_numbas_thread_pool(tmp_path):
    """GNU OpenMP kills a forked child on its first parallel region; the thread
    policy the ops launch these kernels with (geomgen.backend.kernel_threads) gives
    them one thread there, so they run their serial variants (torch DataLoader
    workers fork)."""
    code = textwrap.dedent(
        """
        import os, numpy as np, torch
        from geomgen.backend import kernel_threads
        from geomgen.kernels import knn_numba as kn
        torch.set_num_threads(2)  # a budget of 2 threads
        rng = np.random.default_rng(0)
        x = rng.random((1, 20000, 3)).astype(np.float32)
        l = np.array([20000])
        def search():
            with kernel_threads(20000) as threads:
                return kn.knn_search(x, x[:, ::-1].copy(), l, l, 1, 2, threads=threads)
        ref = search()  # starts the pool
        pid = os.fork()
        if pid == 0:
            out = search()
            os._exit(0 if np.array_equal(out[1], ref[1]) else 3)
        _, status = os.waitpid(pid, 0)
        print("STATUS", status)
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ))
    assert "STATUS 0" in res.stdout, res.stdout + res.stderr
