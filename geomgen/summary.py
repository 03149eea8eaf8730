"""Human-readable statistics of meshes and point clouds (used by ``geomgen info``).

Letters: V vertices, F faces, E unique undirected edges, P points.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["mesh_summary", "pointcloud_summary"]


def _bbox(points: torch.Tensor) -> dict[str, list[float]]:
    if points.numel() == 0:
        return {"min": [], "max": [], "extent": []}
    lo, hi = points.min(0).values, points.max(0).values
    return {"min": lo.tolist(), "max": hi.tolist(), "extent": (hi - lo).tolist()}


def _edge_counts(faces: torch.Tensor) -> torch.Tensor:
    """Number of faces sharing each unique undirected edge: faces (F, 3) -> (E,)."""
    if faces.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long)
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], 0)
    e = torch.sort(e, dim=1).values
    _, counts = torch.unique(e, dim=0, return_counts=True)
    return counts


def mesh_summary(verts: torch.Tensor, faces: torch.Tensor) -> dict[str, Any]:
    """Statistics of one triangle mesh.

    Args:
        verts: (V, 3) float vertex positions (any units; reported in the same units).
        faces: (F, 3) int64 vertex indices, already validated to lie in [0, V).

    Returns:
        dict with ``num_verts``, ``num_faces``, ``num_edges``, ``bbox`` (min/max/extent
        per axis), ``surface_area`` (sum of triangle areas, units²), ``volume`` (signed
        volume by the divergence theorem, units³; only meaningful when ``watertight``),
        ``boundary_edges`` (edges used by one face), ``non_manifold_edges`` (edges used
        by more than two), ``watertight`` (every edge used by exactly two faces),
        ``degenerate_faces`` (zero area or repeated vertex), ``unreferenced_verts`` and
        ``euler_characteristic`` (V - E + F over referenced vertices).
    """
    verts64 = verts.detach().to(torch.float64).cpu()
    faces = faces.detach().cpu().long()
    counts = _edge_counts(faces)
    if faces.shape[0]:
        a, b, c = verts64[faces[:, 0]], verts64[faces[:, 1]], verts64[faces[:, 2]]
        cross = torch.linalg.cross(b - a, c - a)
        areas = 0.5 * cross.norm(dim=1)
        volume = float((a * torch.linalg.cross(b, c)).sum() / 6.0)
        repeated = (faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])
        scale = float((verts64.max(0).values - verts64.min(0).values).norm()) or 1.0
        degenerate = int((repeated | (areas <= 1e-12 * scale * scale)).sum())
        referenced = int(torch.unique(faces).numel())
    else:
        areas = torch.zeros(0, dtype=torch.float64)
        volume, degenerate, referenced = 0.0, 0, 0
    boundary = int((counts == 1).sum())
    non_manifold = int((counts > 2).sum())
    return {
        "num_verts": int(verts.shape[0]),
        "num_faces": int(faces.shape[0]),
        "num_edges": int(counts.numel()),
        "bbox": _bbox(verts64),
        "surface_area": float(areas.sum()),
        "volume": volume,
        "watertight": bool(faces.shape[0] > 0 and boundary == 0 and non_manifold == 0),
        "boundary_edges": boundary,
        "non_manifold_edges": non_manifold,
        "degenerate_faces": degenerate,
        "unreferenced_verts": int(verts.shape[0]) - referenced,
        "euler_characteristic": referenced - int(counts.numel()) + int(faces.shape[0]),
    }


def pointcloud_summary(points: torch.Tensor, normals: torch.Tensor | None = None) -> dict[str, Any]:
    """Statistics of one point cloud: points (P, 3), optional normals (P, 3)."""
    pts = points.detach().to(torch.float64).cpu()
    out: dict[str, Any] = {"num_points": int(pts.shape[0]), "bbox": _bbox(pts), "has_normals": normals is not None}
    if pts.shape[0]:
        out["centroid"] = pts.mean(0).tolist()
    return out
