"""Generative-quality metrics of sets of shapes: MMD, COV and 1-NNA (PointFlow definitions).

Shapes: a generated set ``S_g`` of ``G`` shapes and a reference set ``S_r``
of ``R`` shapes; point clouds ``(G, P, 3)`` / ``(R, P', 3)``, voxel grids
``(G, D, H, W)`` / ``(R, D, H, W)``.

Distances between two shapes:

* ``"chamfer"``: the Chamfer-L2 distance of :func:`geomgen.losses.chamfer_distance`
  -- mean **squared** nearest-neighbour distance in each direction, the two
  directions **summed** (PyTorch3D's and PointFlow's convention);
* ``"iou"``: ``1 - voxel IoU`` of two occupancy grids (inside = ``>= 0.5``).

From the ``(R, G)`` matrix ``D[r, g]`` (PointFlow, Yang et al. 2019):

* **MMD** = mean over references of the distance to the closest sample
  (lower is better; fidelity);
* **COV** = fraction of references that are the closest reference of at least
  one sample (higher is better; diversity), in ``[0, 1]``;
* **1-NNA** = accuracy of the leave-one-out 1-nearest-neighbour classifier on
  ``S_g ∪ S_r`` labelled by set (0.5 is ideal: the sets are indistinguishable;
  1.0 is worst), in ``[0, 1]``.  Ties are broken towards the lower index of the
  concatenation ``[S_r, S_g]``.
"""

from __future__ import annotations

from typing import Any

import torch

from geomgen.errors import InvalidInputError

__all__ = ["pairwise_chamfer", "pairwise_voxel_distance", "mmd_cov", "one_nn_accuracy", "generative_metrics"]

_DISTANCES = ("chamfer", "iou")


def _clouds(x: Any, name: str, fn: str) -> torch.Tensor:
    if hasattr(x, "points_padded") and callable(x.points_padded):
        x = x.points_padded()
    if not isinstance(x, torch.Tensor) or x.dim() != 3 or x.shape[-1] != 3 or not x.is_floating_point():
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise InvalidInputError(f"{fn}: argument '{name}' must be (N, P, 3) float points, got {shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InvalidInputError(f"{fn}: argument '{name}' must hold at least one cloud of at least one point")
    if not torch.isfinite(x).all():
        raise InvalidInputError(f"{fn}: argument '{name}' holds NaN or Inf")
    return x


def pairwise_chamfer(x: Any, y: Any, *, chunk: int = 64) -> torch.Tensor:
    """``(N, M)`` Chamfer-L2 distances between every cloud of ``x`` and every cloud of ``y``.

    Args:
        x: ``(N, P, 3)`` float tensor or a PointClouds with equal counts.
        y: ``(M, Q, 3)`` float tensor (same dtype and device) or PointClouds.
        chunk: pairs per k-NN call (memory/speed trade-off).

    Returns:
        ``(N, M)`` tensor, ``D[i, j]`` = mean_x min_y |x-y|^2 + mean_y min_x |x-y|^2
        (squared distances, both directions summed); no autograd.
    """
    from geomgen.ops import knn_points

    fn = "pairwise_chamfer"
    x = _clouds(x, "x", fn)
    y = _clouds(y, "y", fn).to(x)
    n, m = x.shape[0], y.shape[0]
    ii, jj = torch.meshgrid(torch.arange(n), torch.arange(m), indexing="ij")
    ii, jj = ii.reshape(-1), jj.reshape(-1)
    out = torch.empty(n * m, dtype=x.dtype, device=x.device)
    with torch.no_grad():
        for s in range(0, n * m, max(1, int(chunk))):
            a, b = x[ii[s:s + chunk]], y[jj[s:s + chunk]]
            d_ab = knn_points(a, b, K=1).dists[..., 0].mean(1)
            d_ba = knn_points(b, a, K=1).dists[..., 0].mean(1)
            out[s:s + chunk] = d_ab + d_ba
    return out.reshape(n, m)


def pairwise_voxel_distance(a: Any, b: Any, threshold: float = 0.5) -> torch.Tensor:
    """``(N, M)`` ``1 - IoU`` between every grid of ``a`` ``(N, D, H, W)`` and of ``b`` ``(M, D, H, W)``
    (occupied = ``>= threshold``; two empty grids have IoU 1, distance 0)."""
    fn = "pairwise_voxel_distance"
    grids = []
    for name, g in (("a", a), ("b", b)):
        if hasattr(g, "grids") and not isinstance(g, torch.Tensor):
            g = g.grids
        if not isinstance(g, torch.Tensor) or g.dim() != 4 or g.shape[0] == 0:
            raise InvalidInputError(f"{fn}: argument '{name}' must be a non-empty (N, D, H, W) grid batch")
        grids.append((g >= threshold) if g.dtype != torch.bool else g)
    ga, gb = grids
    if ga.shape[1:] != gb.shape[1:]:
        raise InvalidInputError(f"{fn}: grids differ in resolution: {tuple(ga.shape[1:])} vs {tuple(gb.shape[1:])}")
    fa = ga.flatten(1).float()
    fb = gb.flatten(1).float().to(fa.device)
    inter = fa @ fb.T
    union = fa.sum(1)[:, None] + fb.sum(1)[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))
    return 1.0 - iou


def _check_matrix(d: Any, name: str, fn: str) -> torch.Tensor:
    if not isinstance(d, torch.Tensor) or d.dim() != 2 or d.shape[0] == 0 or d.shape[1] == 0:
        raise InvalidInputError(f"{fn}: argument '{name}' must be a non-empty 2-D distance matrix")
    if torch.isnan(d).any():
        raise InvalidInputError(f"{fn}: argument '{name}' holds NaN")
    return d


def mmd_cov(d_ref_gen: torch.Tensor) -> tuple[float, float]:
    """``(MMD, COV)`` from the ``(R, G)`` reference-to-sample distance matrix (module docstring)."""
    d = _check_matrix(d_ref_gen, "d_ref_gen", "mmd_cov")
    mmd = d.min(dim=1).values.mean()
    nearest_ref = d.argmin(dim=0)                       # for each sample, its closest reference
    cov = nearest_ref.unique().numel() / d.shape[0]
    return float(mmd), float(cov)


def one_nn_accuracy(d_rr: torch.Tensor, d_rg: torch.Tensor, d_gg: torch.Tensor) -> float:
    """Leave-one-out 1-NN accuracy on ``S_r ∪ S_g`` from the three distance blocks
    ``(R, R)``, ``(R, G)``, ``(G, G)`` (module docstring); in ``[0, 1]``."""
    fn = "one_nn_accuracy"
    d_rr, d_rg, d_gg = (_check_matrix(m, n, fn) for m, n in ((d_rr, "d_rr"), (d_rg, "d_rg"), (d_gg, "d_gg")))
    r, g = d_rg.shape
    if d_rr.shape != (r, r) or d_gg.shape != (g, g):
        raise InvalidInputError(f"{fn}: blocks must be (R, R), (R, G), (G, G); got {tuple(d_rr.shape)}, "
                                f"{tuple(d_rg.shape)}, {tuple(d_gg.shape)}")
    full = torch.cat([torch.cat([d_rr, d_rg], 1), torch.cat([d_rg.T, d_gg], 1)], 0).clone().double()
    full.fill_diagonal_(float("inf"))
    labels = torch.cat([torch.zeros(r, dtype=torch.bool), torch.ones(g, dtype=torch.bool)]).to(full.device)
    nn_idx = full.argmin(dim=1)
    return float((labels[nn_idx] == labels).double().mean())


def generative_metrics(samples: Any, references: Any, distance: str = "chamfer") -> dict[str, float]:
    """MMD, COV and 1-NNA of generated ``samples`` against ``references``.

    Args:
        samples: ``S_g``: ``(G, P, 3)`` points (or PointClouds) for ``"chamfer"``,
            ``(G, D, H, W)`` grids (or Voxels) for ``"iou"``.
        references: ``S_r`` in the same form.
        distance: ``"chamfer"`` (Chamfer-L2, squared, summed) or ``"iou"`` (1 - IoU).

    Returns:
        ``{"MMD": float, "COV": float, "1-NNA": float}``; COV and 1-NNA are
        fractions in ``[0, 1]`` (1-NNA: 0.5 ideal).
    """
    if distance not in _DISTANCES:
        raise InvalidInputError(f"generative_metrics: argument 'distance' must be one of {_DISTANCES}, "
                                f"got {distance!r}")
    pair = pairwise_chamfer if distance == "chamfer" else pairwise_voxel_distance
    d_rg = pair(references, samples)
    d_rr = pair(references, references)
    d_gg = pair(samples, samples)
    mmd, cov = mmd_cov(d_rg)
    return {"MMD": mmd, "COV": cov, "1-NNA": one_nn_accuracy(d_rr, d_rg, d_gg)}
