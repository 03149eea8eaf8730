"""Benchmark of the evaluation metrics: compare_meshes (Mesh R-CNN protocol), normal consistency, voxel IoU.

Work: armadillo (26k verts, 52k faces, libcgal-demo) against a copy whose vertices are perturbed by
Gaussian noise (0.1% of the bounding box), 10,000 samples with normals per mesh, gt-10 scaling,
thresholds 0.1..0.5.  ``compare_meshes`` is also broken down into its parts (sampling both meshes,
the two K=1 nearest-neighbour searches, and deriving every number from them) so we see where the
time goes.  Peers, timed in the same run:

* PyTorch3D: the same protocol written with ``pytorch3d.ops.sample_points_from_meshes`` +
  ``knn_points`` + ``knn_gather`` (what Mesh R-CNN runs);
* scipy ``cKDTree`` (``workers=-1``) for the nearest neighbours on the same samples, and
  trimesh ``sample_surface`` + cKDTree for the full protocol;
* numpy for voxel IoU (Kaolin is CUDA-only / not installed).

Run: ``python bench/bench_metrics.py [repeats]``.  The machine may be shared: compare ratios
measured in the same run, not absolute times across runs.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common import Row, first_call_ms, print_table, real_mesh, timeit  # noqa: E402

S = 10_000
TS = (0.1, 0.2, 0.3, 0.4, 0.5)


def _p3d_available() -> bool:
    try:
        import pytorch3d.ops  # noqa: F401
        import pytorch3d.structures  # noqa: F401
    except Exception:
        return False
    return True


def _metrics_from_dists_numpy(d1, i1, d2, i2, pn, gn):
    """The protocol's numbers from unsquared NN distances/indices (numpy), for the cKDTree peers."""
    def cos(a, b):
        return (a * b).sum(-1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-12)

    c1, c2 = cos(pn, gn[i1]), cos(gn, pn[i2])
    out = {"Chamfer-L2": float((d1 * d1).mean() + (d2 * d2).mean()),
           "NormalConsistency": float(0.5 * (c1.mean() + c2.mean())),
           "AbsNormalConsistency": float(0.5 * (np.abs(c1).mean() + np.abs(c2).mean()))}
    for t in TS:
        p, r = 100.0 * float((d1 < t).mean()), 100.0 * float((d2 < t).mean())
        out[f"F1@{t}"] = 2 * p * r / (p + r + 1e-8)
    return out


def run(repeats: int = 5) -> list[Row]:
    from geomgen.metrics.compare_meshes import _metrics_from_nn, compare_meshes, compare_point_clouds
    from geomgen.metrics.iou import voxel_iou
    from geomgen.metrics.normal_consistency import normal_consistency
    from geomgen.ops import knn_points, sample_points_from_meshes
    from geomgen.structures import Meshes

    verts, faces = real_mesh("armadillo.off")
    rng = np.random.default_rng(0)
    extent = float((verts.max(0) - verts.min(0)).max())
    verts_p = verts + rng.normal(scale=1e-3 * extent, size=verts.shape)
    v_gt = torch.from_numpy(verts).float()
    v_pr = torch.from_numpy(verts_p).float()
    f_t = torch.from_numpy(faces)
    gt = Meshes([v_gt], [f_t])
    pred = Meshes([v_pr], [f_t])
    rows: list[Row] = []

    def ours_total():
        return compare_meshes(pred, gt, S, generator=torch.Generator().manual_seed(0))

    first = first_call_ms(ours_total)  # numba kernels compile / load from cache here

    # ---- pieces of compare_meshes, timed separately on the same inputs
    g = torch.Generator().manual_seed(0)
    pp, pn = sample_points_from_meshes(pred, S, return_normals=True, generator=g)
    gp, gn = sample_points_from_meshes(gt, S, return_normals=True, generator=g)
    factor = 10.0 / extent
    pp, gp = pp * factor, gp * factor

    def ours_sampling():
        gg = torch.Generator().manual_seed(0)
        sample_points_from_meshes(pred, S, return_normals=True, generator=gg)
        sample_points_from_meshes(gt, S, return_normals=True, generator=gg)

    def ours_nn():
        return knn_points(pp, gp, K=1), knn_points(gp, pp, K=1)

    a, b = ours_nn()
    n_pred = torch.full((1,), S)

    def ours_rest():
        return _metrics_from_nn(a.dists[..., 0], a.idx[..., 0], b.dists[..., 0], b.idx[..., 0],
                                pn, gn, n_pred, n_pred, list(TS), 1e-8)

    def ours_from_points():
        return compare_point_clouds(pp, pn, gp, gn, TS)

    t_total = timeit(ours_total, repeats)
    t_samp = timeit(ours_sampling, repeats)
    t_nn = timeit(ours_nn, repeats)
    t_rest = timeit(ours_rest, repeats)
    t_pts = timeit(ours_from_points, repeats)

    # ---- peers
    pp_np, pn_np = pp[0].double().numpy(), pn[0].double().numpy()
    gp_np, gn_np = gp[0].double().numpy(), gn[0].double().numpy()
    from scipy.spatial import cKDTree

    def ckd_nn():
        d1, i1 = cKDTree(gp_np).query(pp_np, k=1, workers=-1)
        d2, i2 = cKDTree(pp_np).query(gp_np, k=1, workers=-1)
        return d1, i1, d2, i2

    def ckd_from_points():
        return _metrics_from_dists_numpy(*ckd_nn(), pn_np, gn_np)

    t_ckd_nn = timeit(ckd_nn, repeats)
    t_ckd_pts = timeit(ckd_from_points, repeats)

    # cross-check: same samples, same numbers
    ours_vals = compare_point_clouds(pp.double(), pn.double(), gp.double(), gn.double(), TS)
    ref_vals = ckd_from_points()
    worst = max(abs(ours_vals[k] - ref_vals[k]) for k in ref_vals)
    assert worst < 1e-6, f"compare_point_clouds disagrees with the cKDTree reference by {worst}"

    t_tm = None
    try:
        import trimesh

        tm_gt = trimesh.Trimesh(verts, faces, process=False)
        tm_pr = trimesh.Trimesh(verts_p, faces, process=False)

        def trimesh_ckd_total():
            p, fi = trimesh.sample.sample_surface(tm_pr, S, seed=0)
            q, fj = trimesh.sample.sample_surface(tm_gt, S, seed=1)
            p, q = p * factor, q * factor
            d1, i1 = cKDTree(q).query(p, k=1, workers=-1)
            d2, i2 = cKDTree(p).query(q, k=1, workers=-1)
            return _metrics_from_dists_numpy(d1, i1, d2, i2, tm_pr.face_normals[fi], tm_gt.face_normals[fj])

        t_tm = timeit(trimesh_ckd_total, repeats)
    except ImportError:
        pass

    t_p3_total = t_p3_samp = t_p3_nn = t_p3_nc = None
    if _p3d_available():
        import torch.nn.functional as F
        from pytorch3d.ops import knn_gather as p3_gather
        from pytorch3d.ops import knn_points as p3_knn
        from pytorch3d.ops import sample_points_from_meshes as p3_sample
        from pytorch3d.structures import Meshes as P3Meshes

        p3_gt = P3Meshes([v_gt], [f_t])
        p3_pr = P3Meshes([v_pr], [f_t])

        def p3_metrics(x, xn, y, yn):
            k1, k2 = p3_knn(x, y, K=1), p3_knn(y, x, K=1)
            d1, d2 = k1.dists[..., 0], k2.dists[..., 0]
            c1 = F.cosine_similarity(xn, p3_gather(yn, k1.idx)[..., 0, :], dim=-1)
            c2 = F.cosine_similarity(yn, p3_gather(xn, k2.idx)[..., 0, :], dim=-1)
            out = {"Chamfer-L2": d1.mean(1) + d2.mean(1),
                   "NormalConsistency": 0.5 * (c1.mean(1) + c2.mean(1)),
                   "AbsNormalConsistency": 0.5 * (c1.abs().mean(1) + c2.abs().mean(1))}
            r1, r2 = d1.sqrt(), d2.sqrt()
            for t in TS:
                p, r = 100.0 * (r1 < t).float().mean(1), 100.0 * (r2 < t).float().mean(1)
                out[f"F1@{t}"] = 2 * p * r / (p + r + 1e-8)
            return {k: float(v.mean()) for k, v in out.items()}

        @torch.no_grad()
        def p3_total():
            x, xn = p3_sample(p3_pr, S, return_normals=True)
            y, yn = p3_sample(p3_gt, S, return_normals=True)
            bb = p3_gt.verts_packed()
            scale = 10.0 / (bb.amax(0) - bb.amin(0)).max()
            return p3_metrics(x * scale, xn, y * scale, yn)

        def p3_sampling():
            p3_sample(p3_pr, S, return_normals=True)
            p3_sample(p3_gt, S, return_normals=True)

        def p3_nn():
            return p3_knn(pp, gp, K=1), p3_knn(gp, pp, K=1)

        t_p3_total = timeit(p3_total, max(1, repeats // 2 + 1))
        t_p3_samp = timeit(p3_sampling, repeats)
        t_p3_nn = timeit(p3_nn, max(1, repeats // 2 + 1))

    rows.append(Row("compare_meshes 52k vs 52k faces, 10k samples (total)", t_total,
                    "PyTorch3D ops" if t_p3_total else "", t_p3_total, "<= 50 ms", first))
    if t_tm is not None:
        rows.append(Row("  same, peer: trimesh sampling + cKDTree", t_total, "trimesh+cKDTree", t_tm))
    rows.append(Row("  part: sampling 2 x 10k with normals", t_samp, "PyTorch3D" if t_p3_samp else "",
                    t_p3_samp))
    rows.append(Row("  part: NN 10k x 10k both ways (knn_points K=1)", t_nn, "cKDTree workers=-1", t_ckd_nn))
    if t_p3_nn is not None:
        rows.append(Row("  part: NN both ways, peer PyTorch3D", t_nn, "PyTorch3D knn", t_p3_nn))
    rows.append(Row("  part: metrics from the NN results (chamfer, normals, 5 x F1)", t_rest))
    rows.append(Row("  rest: total - sampling - NN (scaling, validation, metrics)",
                    max(0.0, t_total - t_samp - t_nn)))
    rows.append(Row("compare_point_clouds on the same 10k samples", t_pts, "cKDTree + numpy", t_ckd_pts))

    # ---- normal_consistency on the same samples
    def ours_nc():
        return normal_consistency(pp, pn, gp, gn)

    t_nc = timeit(ours_nc, repeats)
    if _p3d_available():
        def p3_nc():
            k1, k2 = p3_knn(pp, gp, K=1), p3_knn(gp, pp, K=1)
            c1 = F.cosine_similarity(pn, p3_gather(gn, k1.idx)[..., 0, :], dim=-1)
            c2 = F.cosine_similarity(gn, p3_gather(pn, k2.idx)[..., 0, :], dim=-1)
            return 0.5 * (c1.mean(1) + c2.mean(1))

        t_p3_nc = timeit(p3_nc, max(1, repeats // 2 + 1))
    rows.append(Row("normal_consistency 10k x 10k", t_nc, "PyTorch3D ops" if t_p3_nc else "", t_p3_nc))

    # ---- voxel IoU
    gen = torch.Generator().manual_seed(0)
    for n, res in ((32, 32), (8, 128)):
        vp = torch.rand(n, res, res, res, generator=gen)
        vg = torch.rand(n, res, res, res, generator=gen)
        vp_np, vg_np = vp.numpy(), vg.numpy()

        def numpy_iou():
            a_, b_ = vp_np >= 0.5, vg_np >= 0.5
            inter = np.logical_and(a_, b_).sum((1, 2, 3))
            union = np.logical_or(a_, b_).sum((1, 2, 3))
            return np.where(union > 0, inter / np.maximum(union, 1), 1.0)

        np.testing.assert_allclose(voxel_iou(vp, vg).numpy(), numpy_iou(), rtol=1e-6)
        rows.append(Row(f"voxel_iou {n} x {res}^3 (float grids, >= 0.5)", timeit(lambda: voxel_iou(vp, vg), repeats),
                        "numpy", timeit(numpy_iou, repeats)))
    return rows


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    load = os.getloadavg()[0]
    print(f"threads: torch {torch.get_num_threads()}, load average (1 min) before: {load:.2f}")
    rows = run(reps)
    print_table(rows, f"metrics (median of {reps}; load average before {load:.2f}, after {os.getloadavg()[0]:.2f})")
