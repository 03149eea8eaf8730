"""Tests of geomgen_pointcloud.normals (PCA normals)."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen_pointcloud.normals import estimate_normals


def _sphere(n: int, r: float, seed: int = 0, centre=(0.0, 0.0, 0.0)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    p = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return (p / p.norm(dim=1, keepdim=True) * r + torch.tensor(centre, dtype=torch.float64)).float()



def test_pca_normals():
    g = torch.Generator().manual_seed(0)
    plane = torch.cat([torch.rand(1, 200, 2, generator=g) - 0.5, torch.zeros(1, 200, 1)], -1)
    n = estimate_normals(plane, k=8)
    assert n.shape == (1, 200, 3)
    torch.testing.assert_close(n[..., 2].abs(), torch.ones(1, 200))
    s = _sphere(2000, 0.4)[None]
    n = estimate_normals(s, k=12)
    cos = (n * s / 0.4).sum(-1)
    assert cos.min() > 0.95  # radial and, for a convex shape, outward
    pad = torch.cat([s, torch.full((1, 10, 3), 7.0)], 1)
    n2 = estimate_normals(pad, torch.tensor([2000]), k=12)
    torch.testing.assert_close(n2[:, :2000], n)
    assert (n2[:, 2000:] == 0).all()
    few = estimate_normals(torch.tensor([[[0.0, 0, 1], [0, 0, -1]]]), k=3)  # < 3 points: direction from centroid
    torch.testing.assert_close(few, torch.tensor([[[0.0, 0, 1], [0, 0, -1]]]))


@pytest.mark.parametrize("call, match", [
    (lambda: estimate_normals(torch.zeros(1, 5, 2)), "points"),
    (lambda: estimate_normals(torch.zeros(1, 5, 3), k=2), "k"),
])
def test_bad_arguments(call, match):
    with pytest.raises(InvalidInputError, match=match):
        call()
