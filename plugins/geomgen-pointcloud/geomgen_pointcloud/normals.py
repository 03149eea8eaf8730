"""Normals of unstructured point clouds by local PCA.

Shape letters: ``N`` clouds, ``P`` (padded) points, ``k`` neighbours.
"""

from __future__ import annotations

import torch

from geomgen import checks as V
from geomgen.errors import InvalidInputError
from geomgen.ops import knn_points

__all__ = ["estimate_normals"]


def estimate_normals(points: torch.Tensor, lengths: torch.Tensor | None = None, k: int = 16) -> torch.Tensor:
    """Unit normals of ``(N, P, 3)`` clouds: the eigenvector of the smallest eigenvalue of
    the covariance of each point's ``k`` nearest neighbours (itself included;
    :func:`geomgen.ops.knn_points`), computed in float64.

    The sign of a PCA normal is arbitrary; it is made to point away from the
    cloud's centroid (``n . (p - c) >= 0``), which is outward for roughly
    convex parts and arbitrary elsewhere (fine for sign-free metrics such as
    the absolute normal consistency).  Clouds with fewer than 3 points get the
    direction from the centroid (or +Z).

    Args:
        points: ``(N, P, 3)`` floating padded clouds.
        lengths: ``(N,)`` valid points per cloud (default all ``P``).
        k: neighbours per point (>= 3).

    Returns:
        ``(N, P, 3)`` unit normals in the points' dtype (zeros on padded rows).

    Raises:
        InvalidInputError: bad shapes or ``k``.
    """
    fn = "estimate_normals"
    if not isinstance(points, torch.Tensor) or points.dim() != 3 or points.shape[-1] != 3 \
            or not points.is_floating_point():
        desc = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise InvalidInputError(f"{fn}: argument 'points' must be an (N, P, 3) floating tensor, got {desc}")
    k = V.check_int(k, "k", min_value=3, fn=fn)
    N, P, _ = points.shape
    if lengths is None:
        lengths = torch.full((N,), P, dtype=torch.int64, device=points.device)
    pts = points.detach()
    knn = knn_points(pts, pts, lengths, lengths, K=min(k, max(P, 1)), return_nn=True)
    w = (knn.idx >= 0).to(torch.float64)[..., None]  # (N, P, k, 1)
    nb = knn.knn.to(torch.float64)
    cnt = w.sum(2, keepdim=True).clamp(min=1)
    mean = (nb * w).sum(2, keepdim=True) / cnt
    d = (nb - mean) * w
    cov = d.transpose(2, 3) @ d  # (N, P, 3, 3)
    _, vecs = torch.linalg.eigh(cov)
    n = vecs[..., 0]  # eigenvalues ascending
    valid = torch.arange(P, device=points.device)[None, :] < lengths[:, None]  # (N, P)
    vw = valid.to(torch.float64)[..., None]
    centroid = (pts.to(torch.float64) * vw).sum(1, keepdim=True) / vw.sum(1, keepdim=True).clamp(min=1)
    out = pts.to(torch.float64) - centroid
    few = (lengths < 3)[:, None, None]
    radial = out / out.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    radial = torch.where(out.norm(dim=-1, keepdim=True) > 1e-12, radial, torch.tensor([0.0, 0.0, 1.0],
                                                                                     dtype=torch.float64,
                                                                                     device=points.device))
    n = torch.where(few, radial, n)
    n = torch.where((n * out).sum(-1, keepdim=True) < 0, -n, n)
    return (n * vw).to(points.dtype)
