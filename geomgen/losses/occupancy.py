"""Binary cross-entropy for occupancy predictions given as logits.

An occupancy function ``o: R^3 -> [0, 1]`` is predicted as a logit ``s``
with ``o = sigmoid(s)``; the surface is the level set ``o = 1/2``, i.e.
``s = 0``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from geomgen import checks as V

__all__ = ["occupancy_bce"]

_FN = "occupancy_bce"


def occupancy_bce(
    logits: torch.Tensor,
    labels: torch.Tensor,
    weights: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """Binary cross-entropy between occupancy logits and labels.

    Per query point ``l = -(y log sigmoid(s) + (1 - y) log(1 - sigmoid(s)))``,
    computed stably from the logit ``s`` (:func:`torch.nn.functional.binary_cross_entropy_with_logits`).
    Natural-log units (nats).

    Args:
        logits: ``(N, P)`` (any shape) occupancy logits; the predicted surface
            is ``logits == 0`` (occupancy 1/2).
        labels: same shape; 1 inside, 0 outside, soft labels in ``[0, 1]``
            allowed; bool accepted.
        weights: optional non-negative per-point weights broadcastable to
            ``logits`` (e.g. ``(N, 1)`` per shape or ``(N, P)`` per point).
        reduction: ``"mean"`` (default): ``sum(w l) / sum(w)`` - a weighted
            mean over all points (plain mean without weights; 0 when all
            weights are 0).  This differs from ``torch``'s ``weight``, which
            divides by the number of elements.  ``"sum"``: ``sum(w l)``.
            ``"none"``: the per-point ``w l`` in ``logits``' shape.

    Returns:
        0-dim tensor (or per-point tensor for ``"none"``), differentiable
        w.r.t. ``logits``.

    Raises:
        InvalidInputError: shape/device mismatch, labels outside ``[0, 1]``,
            negative weights, unknown ``reduction``.
    """
    V.check_tensor(logits, "logits", floating=True, fn=_FN)
    V.check_tensor(labels, "labels", shape=tuple(logits.shape), shape_desc=str(tuple(logits.shape)), fn=_FN)
    V.check_choice(reduction, "reduction", ("mean", "sum", "none"), fn=_FN)
    V.check_same_device({"logits": logits, "labels": labels, "weights": weights}, fn=_FN)
    y = labels.to(logits.dtype)
    if labels.dtype != torch.bool and labels.numel():
        lo, hi = float(y.detach().min()), float(y.detach().max())
        if not (lo >= 0.0 and hi <= 1.0):
            raise V.fail("labels", f"must lie in [0, 1], got values in [{lo:g}, {hi:g}]", _FN)
    loss = F.binary_cross_entropy_with_logits(logits, y, reduction="none")
    w = None
    if weights is not None:
        V.check_tensor(weights, "weights", fn=_FN)
        try:
            torch.broadcast_shapes(weights.shape, logits.shape)
        except RuntimeError:
            raise V.fail(
                "weights", f"must broadcast to {tuple(logits.shape)}, got shape {tuple(weights.shape)}", _FN
            ) from None
        w = weights.to(logits.dtype)
        if w.numel() and bool((w.detach() < 0).any()):
            raise V.fail("weights", "must be >= 0", _FN)
        loss = loss * w
        if loss.shape != logits.shape:
            raise V.fail("weights", f"must broadcast to {tuple(logits.shape)}, got shape {tuple(weights.shape)}", _FN)
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if w is None:
        return loss.sum() / max(loss.numel(), 1)
    wsum = torch.broadcast_to(w, logits.shape).sum()
    return loss.sum() / wsum.clamp(min=torch.finfo(loss.dtype).tiny)  # all-zero weights: 0 / tiny = 0
