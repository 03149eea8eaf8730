"""Normal consistency between oriented point clouds (Mesh R-CNN evaluation protocol).

Shapes: ``N`` cloud pairs, ``P1`` / ``P2`` (padded) points per predicted /
ground-truth cloud, ``D`` point dimension (3 for 3-D points).

Convention (Mesh R-CNN ``compare_meshes``)::

    NC = 0.5 * ( mean_{p in pred} cos(n_p, n_{NN_gt(p)})
               + mean_{g in gt}   cos(n_g, n_{NN_pred(g)}) )

where ``NN_gt(p)`` is the ground-truth point nearest to ``p`` (squared
Euclidean K=1 search with :func:`geomgen.ops.knn_points`; among equally near
points the one the search returns) and vice versa.  ``abs=True`` uses
``|cos|`` (Mesh R-CNN's "AbsNormalConsistency", which ignores the
orientation of the normals).

It is a **similarity in [-1, 1]** (``[0, 1]`` with ``abs=True``): higher is
better, 1 means every nearest neighbour has a parallel normal.  This is the
opposite direction of the normal term of PyTorch3D's ``chamfer_distance``
(a *loss* ``1 - |cos|`` per point, summed over both directions, so in
``[0, 2]``); for the same neighbours ``loss_normals == 2 * (1 - AbsNC)``.

``cos(a, b) = a.b / (max(|a|, 1e-6) * max(|b|, 1e-6))``: normals need not be
unit length, and a zero normal gives cos 0.
"""

from __future__ import annotations

from typing import Any

import torch

from geomgen import checks as V
from geomgen.ops.knn import knn_points

__all__ = ["normal_consistency"]

_FN = "normal_consistency"
_COS_EPS = 1e-6


def _is_pointclouds(obj: Any) -> bool:
    return callable(getattr(obj, "points_padded", None)) and callable(
        getattr(obj, "num_points_per_cloud", None)
    )


def _resolve(
    pts: Any, normals: Any, lengths: Any, name: str, nname: str, lname: str, fn: str
) -> tuple[Any, Any, Any]:
    """Unpack a PointClouds into (points, normals, lengths); tensors pass through."""
    if not _is_pointclouds(pts):
        return pts, normals, lengths
    if lengths is not None:
        raise V.fail(lname, f"must be None when '{name}' is a PointClouds (its lengths come from the cloud)", fn)
    if normals is None:
        getter = getattr(pts, "normals_padded", None)
        normals = getter() if callable(getter) else None
        if normals is None:
            raise V.fail(nname, f"is None and the PointClouds '{name}' has no normals", fn)
    return pts.points_padded(), normals, pts.num_points_per_cloud()


def _check_clouds(
    fn: str,
    pred_points: Any,
    pred_normals: Any,
    gt_points: Any,
    gt_normals: Any,
    pred_lengths: Any,
    gt_lengths: Any,
    *,
    normals_required: bool,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Validate a pred/gt pair of padded oriented clouds for the metrics of this package.

    Returns ``(pred_points, pred_normals, gt_points, gt_normals, pred_lengths,
    gt_lengths)`` with int64 lengths on the points' device.  Every cloud must
    hold at least one point.  Normals may be None on both sides only when
    ``normals_required`` is False.
    """
    # Name the lengths in errors only when the caller passed them (not for PointClouds).
    given = {"pred_lengths": pred_lengths is not None, "gt_lengths": gt_lengths is not None}
    pred_points, pred_normals, pred_lengths = _resolve(
        pred_points, pred_normals, pred_lengths, "pred_points", "pred_normals", "pred_lengths", fn
    )
    gt_points, gt_normals, gt_lengths = _resolve(
        gt_points, gt_normals, gt_lengths, "gt_points", "gt_normals", "gt_lengths", fn
    )
    V.check_tensor(pred_points, "pred_points", ndim=3, shape_desc="(N, P1, D)", floating=True, fn=fn)
    V.check_tensor(gt_points, "gt_points", ndim=3, shape_desc="(N, P2, D)", floating=True, fn=fn)
    N, P1, D = pred_points.shape
    P2 = gt_points.shape[1]
    if gt_points.shape[0] != N:
        raise V.fail("gt_points",
                     f"must have the same batch size N={N} as 'pred_points', got {gt_points.shape[0]}", fn)
    if gt_points.shape[2] != D:
        raise V.fail("gt_points",
                     f"must have the same point dimension D={D} as 'pred_points', got {gt_points.shape[2]}", fn)
    if gt_points.dtype != pred_points.dtype:
        raise V.fail("gt_points",
                     f"must have the same dtype as 'pred_points' ({pred_points.dtype}), got {gt_points.dtype}", fn)
    V.check_same_device({"pred_points": pred_points, "gt_points": gt_points}, fn=fn)

    if normals_required or pred_normals is not None or gt_normals is not None:
        for nm, t, P in (("pred_normals", pred_normals, P1), ("gt_normals", gt_normals, P2)):
            if t is None:
                other = "gt_normals" if nm == "pred_normals" else "pred_normals"
                why = "is required" if normals_required else f"must be given together with '{other}'"
                raise V.fail(nm, f"{why}, got None", fn)
            V.check_tensor(t, nm, shape=(N, P, D), shape_desc=f"({N}, {P}, {D})", floating=True, fn=fn)
            if t.dtype != pred_points.dtype:
                raise V.fail(nm, f"must have the same dtype as 'pred_points' ({pred_points.dtype}), got {t.dtype}",
                             fn)
        V.check_same_device(
            {"pred_points": pred_points, "pred_normals": pred_normals, "gt_normals": gt_normals}, fn=fn
        )

    dev = pred_points.device
    pred_lengths = V.check_lengths(pred_lengths, "pred_lengths", batch_size=N, max_len=P1, device=dev,
                                   fn=fn)
    gt_lengths = V.check_lengths(gt_lengths, "gt_lengths", batch_size=N, max_len=P2, device=dev, fn=fn)
    for pname, lname, lengths, P in (("pred_points", "pred_lengths", pred_lengths, P1),
                                     ("gt_points", "gt_lengths", gt_lengths, P2)):
        empty = (lengths == 0).nonzero()
        if empty.numel():
            i = int(empty[0, 0])
            raise V.fail(lname if P and given[lname] else pname,
                         f"must give every cloud at least one point; cloud {i} is empty", fn)
    V.check_finite(pred_points, "pred_points", fn=fn)
    V.check_finite(gt_points, "gt_points", fn=fn)
    if pred_normals is not None:
        V.check_finite(pred_normals, "pred_normals", fn=fn)
        V.check_finite(gt_normals, "gt_normals", fn=fn)
    return pred_points, pred_normals, gt_points, gt_normals, pred_lengths, gt_lengths


def _mean_cos_to_nearest(
    normals: torch.Tensor,
    other_normals: torch.Tensor,
    idx: torch.Tensor,
    lengths: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over the valid points of each cloud of cos and |cos| between a
    point's normal and its nearest neighbour's normal.

    ``normals`` ``(N, P1, D)``, ``other_normals`` ``(N, P2, D)``, ``idx``
    ``(N, P1)`` nearest-neighbour indices (-1 on padded rows), ``lengths``
    ``(N,)`` >= 1.  Returns two ``(N,)`` tensors (signed, absolute).
    """
    N, P1, D = normals.shape
    valid = idx >= 0
    g = idx.clamp(min=0).unsqueeze(-1).expand(N, P1, D)
    near = torch.gather(other_normals, 1, g)  # (N, P1, D)
    dot = (normals * near).sum(-1)
    den = torch.linalg.vector_norm(normals, dim=-1).clamp(min=_COS_EPS) * torch.linalg.vector_norm(
        near, dim=-1
    ).clamp(min=_COS_EPS)
    cos = torch.where(valid, dot / den, dot.new_zeros(()))
    n = lengths.to(cos.dtype)
    return cos.sum(1) / n, cos.abs().sum(1) / n


def normal_consistency(
    pred_points: torch.Tensor | Any,
    pred_normals: torch.Tensor | None,
    gt_points: torch.Tensor | Any,
    gt_normals: torch.Tensor | None,
    *,
    abs: bool = False,  # noqa: A002 - the name of the option in the protocol
    pred_lengths: torch.Tensor | None = None,
    gt_lengths: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normal consistency of a predicted and a ground-truth oriented point cloud, per pair.

    ``0.5 * (mean cos pred -> GT nearest neighbour + mean cos GT -> pred
    nearest neighbour)``: a similarity, **higher is better** (see the module
    docstring; Mesh R-CNN's ``NormalConsistency``, or its
    ``AbsNormalConsistency`` with ``abs=True``).

    Args:
        pred_points: ``(N, P1, D)`` floating tensor, or a PointClouds with
            normals (then ``pred_normals`` may be None and ``pred_lengths``
            must be None).
        pred_normals: ``(N, P1, D)`` normals of ``pred_points`` (any length;
            they are normalised in the cosine).
        gt_points: ``(N, P2, D)`` floating tensor (same N, D, dtype, device),
            or a PointClouds with normals.
        gt_normals: ``(N, P2, D)`` normals of ``gt_points``.
        abs: use ``|cos|`` (orientation-free) instead of ``cos``.
        pred_lengths: optional ``(N,)`` number of valid leading points of each
            predicted cloud, in ``[1, P1]`` (padding is ignored).
        gt_lengths: likewise for ``gt_points``, in ``[1, P2]``.

    Returns:
        ``(N,)`` tensor in the points' dtype, in ``[-1, 1]`` (``[0, 1]`` with
        ``abs=True``).  Differentiable w.r.t. the normals (the neighbour
        choice is not).

    Raises:
        InvalidInputError: bad shapes, dtypes or lengths, an empty cloud,
            NaN/Inf values, missing normals; the message names the argument.
    """
    V.check_bool(abs, "abs", fn=_FN)
    pp, pn, gp, gn, pl, gl = _check_clouds(
        _FN, pred_points, pred_normals, gt_points, gt_normals, pred_lengths, gt_lengths,
        normals_required=True,
    )
    with torch.no_grad():
        i_pg = knn_points(pp.detach(), gp.detach(), pl, gl, K=1).idx[..., 0]
        i_gp = knn_points(gp.detach(), pp.detach(), gl, pl, K=1).idx[..., 0]
    c1, a1 = _mean_cos_to_nearest(pn, gn, i_pg, pl)
    c2, a2 = _mean_cos_to_nearest(gn, pn, i_gp, gl)
    return 0.5 * (a1 + a2) if abs else 0.5 * (c1 + c2)
