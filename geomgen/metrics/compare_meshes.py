"""Mesh R-CNN's mesh evaluation protocol: :func:`compare_meshes` and :func:`compare_point_clouds`.

Shapes: ``N`` pred/GT pairs, ``S`` samples per mesh, ``P1`` / ``P2``
(padded) points per predicted / ground-truth cloud, ``D`` point dimension.

The protocol (Mesh R-CNN, ShapeNet table; see
``/work/shared/reference/conventions.md``):

1. Sample ``S = 10000`` points with normals from each mesh, area-weighted
   (:func:`geomgen.ops.sample_points_from_meshes`; normals are the sampled
   faces' unit normals).
2. Scale **both** samples of pair ``n`` by ``10 / L[n]``, where ``L[n]`` is
   the longest edge of the axis-aligned bounding box of the *ground-truth*
   mesh's vertices (``scale="gt-10"``).
3. One K=1 nearest-neighbour search per direction (squared Euclidean
   distances, :func:`geomgen.ops.knn_points`), and from those two searches:

   * ``"Chamfer-L2"`` = mean over pred of the **squared** NN distance to GT
     + mean over GT of the squared NN distance to pred (sum of both
     directions, like PyTorch3D's ``chamfer_distance``; lower is better);
   * ``"NormalConsistency"`` = 0.5 * (mean cos pred->GT + mean cos GT->pred)
     between each point's normal and its nearest neighbour's normal, and
     ``"AbsNormalConsistency"`` the same with ``|cos|`` (similarities,
     higher is better; see :mod:`geomgen.metrics.normal_consistency`);
   * for every threshold ``t``: ``"Precision@t"`` = 100 * fraction of pred
     points whose **unsquared** NN distance to GT is **strictly less** than
     ``t``, ``"Recall@t"`` the same for GT points to pred, and
     ``"F1@t"`` = ``2 P R / (P + R + eps)`` -- all in **percent**
     (Kaolin's ``f_score`` uses ``<=``, fractions, and a different recall).

Keys are written ``f"F1@{t!r}"`` with ``t`` as a float (``"F1@0.1"``,
``"F1@1.0"``), the same as :func:`geomgen.metrics.f1_score`.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import Any

import torch

from geomgen import checks as V
from geomgen.errors import InvalidInputError
from geomgen.metrics.normal_consistency import _check_clouds, _mean_cos_to_nearest
from geomgen.ops.knn import knn_points
from geomgen.ops.sample_points import sample_points_from_meshes

__all__ = ["compare_meshes", "compare_point_clouds", "DEFAULT_THRESHOLDS"]

#: Thresholds Mesh R-CNN computes (it reports 0.1, 0.3 and 0.5).
DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5)

_F1_EPS = 1e-8


def _threshold_key(t: float) -> str:
    # repr of a float round-trips, as in f1_score: 0.1 -> "0.1", 1 -> "1.0".
    return repr(float(t))


def _check_thresholds(thresholds: Any, fn: str) -> list[float]:
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence):
        raise V.fail("thresholds", f"must be a sequence of positive numbers, got {thresholds!r}", fn)
    ts = [V.check_float(t, "thresholds", positive=True, fn=fn) for t in thresholds]
    if len(set(ts)) != len(ts):
        raise V.fail("thresholds", f"must be distinct, got {list(thresholds)!r}", fn)
    return ts


def _squared_bound(t: float, like: torch.Tensor) -> torch.Tensor | float:
    """The smallest ``b`` of ``like``'s dtype with ``not (b.sqrt() < t)``.

    ``sqrt`` is correctly rounded and monotone, so for every ``d >= 0`` of that
    dtype ``d.sqrt() < t`` holds exactly when ``d < b``: comparing squared
    distances with ``b`` counts the same points as comparing unsquared
    distances with ``t`` (what the protocol specifies), bit for bit, without
    taking a square root of every distance.  ``b`` starts at ``t * t`` rounded
    to the dtype and moves by single ulps, with the very comparison the
    protocol uses.  Dtypes without ``nextafter`` support fall back to
    ``t * t`` (then points within an ulp of the threshold may differ).
    """
    if like.dtype not in (torch.float32, torch.float64):
        return t * t
    b = torch.tensor(t * t, dtype=like.dtype, device=like.device)
    up = torch.tensor(float("inf"), dtype=like.dtype, device=like.device)
    down = torch.zeros((), dtype=like.dtype, device=like.device)
    for _ in range(64):  # a few ulps in practice
        if not bool(b.sqrt() < t):
            break
        b = torch.nextafter(b, up)
    for _ in range(64):
        prev = torch.nextafter(b, down)
        if bool(prev == b) or bool(prev.sqrt() < t):
            break
        b = prev
    return b


def _metrics_from_nn(
    d_pg: torch.Tensor,
    i_pg: torch.Tensor,
    d_gp: torch.Tensor,
    i_gp: torch.Tensor,
    pred_normals: torch.Tensor | None,
    gt_normals: torch.Tensor | None,
    pred_lengths: torch.Tensor,
    gt_lengths: torch.Tensor,
    thresholds: list[float],
    eps: float,
) -> dict[str, torch.Tensor]:
    """Every number of the protocol from the two K=1 searches.

    ``d_pg`` ``(N, P1)`` squared distances pred -> GT (0 on padded rows),
    ``i_pg`` ``(N, P1)`` indices into GT (-1 on padded rows); ``d_gp`` /
    ``i_gp`` the same GT -> pred.  Lengths are >= 1.
    """
    n_pred = pred_lengths.to(d_pg.dtype)
    n_gt = gt_lengths.to(d_pg.dtype)
    out: dict[str, torch.Tensor] = {}
    out["Chamfer-L2"] = d_pg.sum(1) / n_pred + d_gp.sum(1) / n_gt
    if pred_normals is not None and gt_normals is not None:
        c1, a1 = _mean_cos_to_nearest(pred_normals, gt_normals, i_pg, pred_lengths)
        c2, a2 = _mean_cos_to_nearest(gt_normals, pred_normals, i_gp, gt_lengths)
        out["NormalConsistency"] = 0.5 * (c1 + c2)
        out["AbsNormalConsistency"] = 0.5 * (a1 + a2)
    if thresholds:
        inf = d_pg.new_tensor(float("inf"))
        # Padded rows (idx -1) can never count as hits.
        q_pg = torch.where(i_pg >= 0, d_pg, inf)
        q_gp = torch.where(i_gp >= 0, d_gp, inf)
        for t in thresholds:
            # sqrt(d) < t  <=>  d < b  for every d >= 0 of this dtype (see _squared_bound):
            # the same counts as comparing unsquared distances, without a sqrt per point.
            b = _squared_bound(t, d_pg)
            precision = 100.0 * (q_pg < b).sum(1).to(d_pg.dtype) / n_pred
            recall = 100.0 * (q_gp < b).sum(1).to(d_pg.dtype) / n_gt
            key = _threshold_key(t)
            out[f"Precision@{key}"] = precision
            out[f"Recall@{key}"] = recall
            out[f"F1@{key}"] = 2.0 * precision * recall / (precision + recall + eps)
    return out


def _reduce(out: dict[str, torch.Tensor], reduce: bool) -> dict[str, Any]:
    if not reduce:
        return out
    return {k: float(v.mean()) for k, v in out.items()}


def compare_point_clouds(
    pred_points: torch.Tensor | Any,
    pred_normals: torch.Tensor | None,
    gt_points: torch.Tensor | Any,
    gt_normals: torch.Tensor | None,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    pred_lengths: torch.Tensor | None = None,
    gt_lengths: torch.Tensor | None = None,
    reduce: bool = True,
    eps: float = _F1_EPS,
) -> dict[str, Any]:
    """Mesh R-CNN's metrics on already sampled (and scaled) oriented point clouds.

    Step 3 of the protocol in the module docstring: two K=1 nearest-neighbour
    searches (pred -> GT and GT -> pred), from which Chamfer-L2, the normal
    consistencies and every precision / recall / F1 are derived.  No sampling
    and no scaling happen here (:func:`compare_meshes` does both).

    Args:
        pred_points: ``(N, P1, D)`` floating tensor, or a PointClouds (its
            normals are used when ``pred_normals`` is None).
        pred_normals: ``(N, P1, D)`` normals of ``pred_points`` or ``None``;
            when both normals are None the two normal keys are left out.
        gt_points: ``(N, P2, D)`` floating tensor (same N, D, dtype, device),
            or a PointClouds.
        gt_normals: ``(N, P2, D)`` normals of ``gt_points`` or ``None``.
        thresholds: positive, finite, distinct distance thresholds (may be
            empty: then only the Chamfer and normal keys are returned).
        pred_lengths: optional ``(N,)`` valid points per predicted cloud, in
            ``[1, P1]`` (every cloud needs at least one point).
        gt_lengths: likewise for ``gt_points``, in ``[1, P2]``.
        reduce: ``True`` (default, as Mesh R-CNN): each value is the mean over
            the ``N`` pairs as a Python ``float``; ``False``: ``(N,)`` tensors.
        eps: added to ``P + R`` in the F1 denominator (>= 0, default 1e-8).

    Returns:
        dict with keys, in this order: ``"Chamfer-L2"``,
        ``"NormalConsistency"``, ``"AbsNormalConsistency"`` (when normals are
        given), then for each threshold ``t`` ``"Precision@t"``,
        ``"Recall@t"``, ``"F1@t"``.  Units: squared distance units for
        Chamfer-L2, cosines for the normal keys, percent for the rest.
        Tensors are in the points' dtype, without autograd.

    Raises:
        InvalidInputError: bad shapes, dtypes, lengths, an empty cloud,
            NaN/Inf values, bad thresholds or eps; the message names the
            argument.
    """
    fn = "compare_point_clouds"
    ts = _check_thresholds(thresholds, fn)
    V.check_bool(reduce, "reduce", fn=fn)
    eps = V.check_float(eps, "eps", nonnegative=True, fn=fn)
    pp, pn, gp, gn, pl, gl = _check_clouds(
        fn, pred_points, pred_normals, gt_points, gt_normals, pred_lengths, gt_lengths,
        normals_required=False,
    )
    return _reduce(_compare(pp, pn, gp, gn, pl, gl, ts, eps), reduce)


def _compare(
    pp: torch.Tensor,
    pn: torch.Tensor | None,
    gp: torch.Tensor,
    gn: torch.Tensor | None,
    pl: torch.Tensor | None,
    gl: torch.Tensor | None,
    ts: list[float],
    eps: float,
) -> dict[str, torch.Tensor]:
    """:func:`compare_point_clouds` on validated inputs, (N,) tensors."""
    N, P1, _ = pp.shape
    P2 = gp.shape[1]
    if pl is None:
        pl = torch.full((N,), P1, dtype=torch.int64, device=pp.device)
    if gl is None:
        gl = torch.full((N,), P2, dtype=torch.int64, device=pp.device)
    with torch.no_grad():
        pp, gp = pp.detach(), gp.detach()
        pn = None if pn is None else pn.detach()
        gn = None if gn is None else gn.detach()
        nn_pg = knn_points(pp, gp, pl, gl, K=1)
        nn_gp = knn_points(gp, pp, gl, pl, K=1)
        return _metrics_from_nn(
            nn_pg.dists[..., 0], nn_pg.idx[..., 0], nn_gp.dists[..., 0], nn_gp.idx[..., 0],
            pn, gn, pl, gl, ts, eps,
        )


def _is_meshes(obj: Any) -> bool:
    return all(
        callable(getattr(obj, m, None))
        for m in ("verts_list", "verts_packed", "faces_packed", "num_faces_per_mesh", "__len__")
    )


def _scale_target(scale: Any, fn: str) -> float | None:
    """``None`` (no scaling) or the target length of the GT's longest bbox edge."""
    if scale is None:
        return None
    if isinstance(scale, str):
        s = scale.strip().lower()
        if s == "none":
            return None
        if s.startswith("gt-"):
            try:
                target = float(s[3:])
            except ValueError:
                target = float("nan")
            if target > 0 and target != float("inf"):
                return target
        raise V.fail(
            "scale", f"must be 'gt-10' (or 'gt-<positive number>'), a positive number, or None, got {scale!r}", fn
        )
    if isinstance(scale, numbers.Real) and not isinstance(scale, bool):
        return V.check_float(scale, "scale", positive=True, fn=fn)
    raise V.fail(
        "scale", f"must be 'gt-10', a positive number, or None, got {scale!r} ({type(scale).__name__})", fn
    )


def _sample(meshes: Any, name: str, num_samples: int, generator: torch.Generator | None, fn: str
            ) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        pts, nrm = sample_points_from_meshes(meshes, num_samples, return_normals=True, generator=generator)
    except InvalidInputError as exc:
        msg = str(exc)
        prefix = "sample_points_from_meshes: argument 'meshes' "
        msg = msg[len(prefix):] if msg.startswith(prefix) else f"cannot be sampled ({msg})"
        raise V.fail(name, msg, fn) from exc
    return pts, nrm


def compare_meshes(
    pred: Any,
    gt: Any,
    num_samples: int = 10000,
    scale: str | float | None = "gt-10",
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
    *,
    reduce: bool = True,
    eps: float = _F1_EPS,
    generator: torch.Generator | None = None,
) -> dict[str, Any]:
    """Mesh R-CNN's evaluation of predicted meshes against ground-truth meshes.

    Sampling, ``gt-10`` scaling, then one nearest-neighbour search per
    direction from which Chamfer-L2, NormalConsistency, AbsNormalConsistency
    and Precision/Recall/F1 at every threshold are derived -- exactly the
    protocol described in the module docstring.  Runs without autograd.

    Args:
        pred: :class:`geomgen.structures.Meshes` batch of ``N`` predicted meshes.
        gt: ``Meshes`` batch of ``N`` ground-truth meshes (pairs are
            ``(pred[n], gt[n])``).  Every mesh needs a face of positive area.
        num_samples: ``S >= 1`` points sampled per mesh (default 10000, as in
            Mesh R-CNN).
        scale: ``"gt-10"`` (default): both clouds of pair ``n`` are scaled so
            that the longest edge of the GT mesh's vertex bounding box is 10;
            ``"gt-<x>"`` or a positive number ``x``: the same with target
            length ``x``; ``None`` or ``"none"``: no scaling (e.g. meshes
            already normalised, or the Pixel2Mesh variant that scales by 0.57
            beforehand).  Scaling multiplies the sampled points, which equals
            sampling the scaled meshes; normals are unchanged.
        thresholds: positive, distinct F1 distance thresholds, in the scaled
            units (default 0.1, 0.2, 0.3, 0.4, 0.5; Mesh R-CNN reports
            0.1, 0.3, 0.5).
        reduce: ``True`` (default): means over the ``N`` pairs as Python
            floats; ``False``: ``(N,)`` tensors.
        eps: F1 denominator guard (default 1e-8).
        generator: optional ``torch.Generator`` for reproducible samples; the
            predicted meshes are sampled first, then the ground truth, both
            from this generator.

    Returns:
        dict with the keys ``"Chamfer-L2"``, ``"NormalConsistency"``,
        ``"AbsNormalConsistency"``, then ``"Precision@t"``, ``"Recall@t"``,
        ``"F1@t"`` for each threshold (see :func:`compare_point_clouds` for
        units).  Results are computed in the promoted dtype of the two
        meshes' vertices.

    Raises:
        InvalidInputError: ``pred`` / ``gt`` not Meshes, of different lengths
            or devices, empty, or with a mesh that cannot be sampled (no
            faces, zero area, NaN vertices; the message gives its index), bad
            ``num_samples``, ``scale``, ``thresholds`` or ``eps``.
    """
    fn = "compare_meshes"
    for name, m in (("pred", pred), ("gt", gt)):
        if not _is_meshes(m):
            raise V.fail(name, f"must be a geomgen.structures.Meshes batch, got {type(m).__name__}", fn)
    N = len(pred)
    if len(gt) != N:
        raise V.fail("gt", f"must hold as many meshes as 'pred' ({N}), got {len(gt)}", fn)
    if N == 0:
        raise V.fail("pred", "must hold at least one mesh, got an empty batch", fn)
    S = V.check_int(num_samples, "num_samples", min_value=1, fn=fn)
    target = _scale_target(scale, fn)
    ts = _check_thresholds(thresholds, fn)
    V.check_bool(reduce, "reduce", fn=fn)
    eps = V.check_float(eps, "eps", nonnegative=True, fn=fn)
    pv, gv = pred.verts_packed(), gt.verts_packed()
    if pv.device != gv.device:
        raise V.fail("gt", f"must be on the same device as 'pred' ({pv.device}), got {gv.device}", fn)

    with torch.no_grad():
        pp, pn = _sample(pred, "pred", S, generator, fn)
        gp, gn = _sample(gt, "gt", S, generator, fn)
        dtype = torch.promote_types(pp.dtype, gp.dtype)
        pp, pn, gp, gn = (t.to(dtype) for t in (pp, pn, gp, gn))
        if target is not None:
            verts = gt.verts_list()
            edge = torch.stack([(v.amax(0) - v.amin(0)).amax() for v in verts]).to(dtype)  # (N,)
            bad = (~(edge > 0)).nonzero()
            if bad.numel():
                i = int(bad[0, 0])
                raise V.fail("gt", f"mesh {i} has a zero-size bounding box; cannot scale it (use scale=None)", fn)
            factor = (target / edge)[:, None, None]
            pp, gp = pp * factor, gp * factor
        out = _compare(pp, pn, gp, gn, None, None, ts, eps)
    return _reduce(out, reduce)
