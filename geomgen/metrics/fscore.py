"""Precision / recall / F1 at distance thresholds (Mesh R-CNN evaluation protocol).

Convention (Mesh R-CNN ``compare_meshes``; differs from Kaolin's ``f_score``):

* distances are **unsquared** Euclidean distances to the nearest neighbour;
* a point counts as a hit when its distance is **strictly less** than the
  threshold (``dist < t``; a point exactly at ``t`` is not counted -- Kaolin
  uses ``<=``);
* ``Precision@t`` = 100 * fraction of *predicted* points within ``t`` of the
  ground truth, ``Recall@t`` = 100 * fraction of *ground-truth* points within
  ``t`` of the prediction (Kaolin's recall counts predicted points instead);
* ``F1@t = 2 * P * R / (P + R + 1e-8)``, all in **percent** (0..100; Kaolin
  returns fractions in [0, 1]).

The protocol's default thresholds are 0.1, 0.3 and 0.5 on meshes scaled so the
ground truth's longest bounding-box edge is 10 (see
``/work/shared/reference/conventions.md``); this function does no scaling.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from geomgen import checks as V
from geomgen.ops.knn import knn_points_unchecked

__all__ = ["f1_score"]

_FN = "f1_score"
_F1_EPS = 1e-8


def _cloud(pts: Any, lengths: Any, name: str, lname: str) -> tuple[torch.Tensor, Any]:
    if callable(getattr(pts, "points_padded", None)) and callable(
        getattr(pts, "num_points_per_cloud", None)
    ):
        if lengths is not None:
            raise V.fail(lname, f"must be None when '{name}' is a PointClouds", _FN)
        return pts.points_padded(), pts.num_points_per_cloud()
    if not isinstance(pts, torch.Tensor):
        raise V.fail(
            name,
            f"must be a (N, P, 3) tensor or a geomgen.structures.PointClouds, got "
            f"{type(pts).__name__}",
            _FN,
        )
    return pts, lengths


def _threshold_key(t: float) -> str:
    # repr of a float round-trips: float(key.split("@")[1]) == t; 0.1 -> "0.1".
    return repr(float(t))


def f1_score(
    pred: torch.Tensor | Any,
    gt: torch.Tensor | Any,
    thresholds: Sequence[float] = (0.1, 0.3, 0.5),
    pred_lengths: torch.Tensor | None = None,
    gt_lengths: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Precision, recall and F1 (in percent) of ``pred`` against ``gt`` per batch element.

    See the module docstring for the exact convention (unsquared distances,
    strict ``<``, percentages, F1 eps 1e-8).

    Args:
        pred: ``(N, P1, D)`` floating tensor of predicted points, or a PointClouds.
        gt: ``(N, P2, D)`` floating tensor of ground-truth points, or a PointClouds.
        thresholds: positive, finite, distinct distance thresholds.
        pred_lengths: optional ``(N,)`` valid sizes of ``pred`` (must be None
            for a PointClouds).
        gt_lengths: optional ``(N,)`` valid sizes of ``gt``.

    Returns:
        dict with, for each threshold ``t`` in the given order, the keys
        ``f"Precision@{t}"``, ``f"Recall@{t}"`` and ``f"F1@{t}"`` (``t``
        written as ``repr(float(t))``, e.g. ``"F1@0.1"``, ``"F1@1.0"``), each
        an ``(N,)`` tensor (dtype of ``pred``, no autograd) of percentages.

        Empty clouds: the distance to an empty cloud is taken as +inf, and
        the precision of an empty prediction (recall of an empty ground truth)
        as 0, so any empty side gives P = R = F1 = 0 for that element instead
        of NaN.

    Raises:
        InvalidInputError: bad shapes, dtypes, lengths, NaN/Inf points, or bad
            thresholds; the message names the argument.
    """
    pred, pred_lengths = _cloud(pred, pred_lengths, "pred", "pred_lengths")
    gt, gt_lengths = _cloud(gt, gt_lengths, "gt", "gt_lengths")
    pred_lengths, gt_lengths = V.check_point_cloud_pair(pred, gt, pred_lengths, gt_lengths,
                                                        ("pred", "gt", "pred_lengths", "gt_lengths"), fn=_FN)
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Sequence):
        raise V.fail("thresholds", f"must be a sequence of positive numbers, got {thresholds!r}", _FN)
    if len(thresholds) == 0:
        raise V.fail("thresholds", "must contain at least one threshold", _FN)
    ts = [V.check_float(t, "thresholds", positive=True, fn=_FN) for t in thresholds]
    if len(set(ts)) != len(ts):
        raise V.fail("thresholds", f"must be distinct, got {list(thresholds)!r}", _FN)

    with torch.no_grad():
        p2g = knn_points_unchecked(pred.detach(), gt.detach(), pred_lengths, gt_lengths, K=1)
        g2p = knn_points_unchecked(gt.detach(), pred.detach(), gt_lengths, pred_lengths, K=1)
        inf = torch.tensor(float("inf"), dtype=pred.dtype, device=pred.device)
        # idx == -1 marks padded rows and rows whose target cloud is empty.
        d_pred = torch.where(p2g.idx[..., 0] >= 0, p2g.dists[..., 0].sqrt(), inf)  # (N, P1)
        d_gt = torch.where(g2p.idx[..., 0] >= 0, g2p.dists[..., 0].sqrt(), inf)  # (N, P2)
        n_pred = pred_lengths.to(pred.dtype)
        n_gt = gt_lengths.to(pred.dtype)

        out: dict[str, torch.Tensor] = {}
        for t in ts:
            hits_p = (d_pred < t).sum(1).to(pred.dtype)
            hits_g = (d_gt < t).sum(1).to(pred.dtype)
            precision = torch.where(n_pred > 0, 100.0 * hits_p / n_pred.clamp(min=1), 0.0)
            recall = torch.where(n_gt > 0, 100.0 * hits_g / n_gt.clamp(min=1), 0.0)
            f1 = 2.0 * precision * recall / (precision + recall + _F1_EPS)
            key = _threshold_key(t)
            out[f"Precision@{key}"] = precision
            out[f"Recall@{key}"] = recall
            out[f"F1@{key}"] = f1
    return out
