"""geomgen.train.fit_mesh_to_silhouettes: an ico-sphere deformed to multi-view masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.ops import ico_sphere
from geomgen.render import PerspectiveCameras, render_meshes
from geomgen.structures import Meshes
from geomgen.train import FitResult, fit_mesh_to_silhouettes, silhouette_iou
from geomgen.viewer.offscreen import fit_cameras


def _box() -> Meshes:
    lo, hi = torch.tensor([-0.5, -0.3, -0.2]), torch.tensor([0.5, 0.3, 0.2])
    corners = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=torch.float32)
    verts = lo + corners * (hi - lo)
    faces = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                          [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return Meshes([verts], [faces])


@pytest.fixture(scope="module")
def scene() -> tuple[torch.Tensor, PerspectiveCameras]:
    cams = fit_cameras(np.array([-0.5, -0.3, -0.2]), np.array([0.5, 0.3, 0.2]), 32, 32, 6)
    masks = render_meshes(_box(), cams.to(dtype=torch.float32)).mask
    return masks, cams


def test_fit_improves_silhouette_iou(scene):
    masks, cams = scene
    seen = []
    result = fit_mesh_to_silhouettes(masks, cams, level=2, iterations=40, lr=0.01,
                                     callback=lambda i, row: seen.append(i))
    assert isinstance(result, FitResult) and seen == list(range(40))
    assert set(result.losses) == {"total", "silhouette", "edge", "laplacian", "normal"}
    assert all(len(v) == 40 for v in result.losses.values())
    assert result.losses["silhouette"][-1] < 0.25 * result.losses["silhouette"][0]
    assert result.iou_init < 0.6 and result.iou > 0.85, (result.iou_init, result.iou)
    assert result.iou == pytest.approx(float(silhouette_iou(result.mesh, cams.to(dtype=torch.float32), masks).mean()))
    assert result.mesh.num_verts_per_mesh().tolist() == [162] and not result.mesh.verts_packed().requires_grad


def test_fit_from_a_given_mesh_and_view_subsets(scene):
    masks, cams = scene
    start = ico_sphere(1)
    result = fit_mesh_to_silhouettes(masks.float(), cams, init=start, iterations=3, views_per_iteration=2, seed=1)
    assert result.mesh.faces_list()[0].shape == start.faces_list()[0].shape
    again = fit_mesh_to_silhouettes(masks.float(), cams, init=start, iterations=3, views_per_iteration=2, seed=1)
    assert torch.equal(result.mesh.verts_packed(), again.mesh.verts_packed())


@pytest.mark.parametrize("change, match", [
    (lambda m, c: (m[:, :16], c), "image_size"),
    (lambda m, c: (m[:5], c), "6 cameras but there are 5 masks"),
    (lambda m, c: (torch.cat([m[:5], torch.zeros_like(m[:1])]), c), "mask 5 is empty"),
    (lambda m, c: (m.float() * 2, c), r"\[0, 1\]"),
    (lambda m, c: (m[0], c), "masks"),
    (lambda m, c: (m, "cams"), "PerspectiveCameras"),
])
def test_fit_rejects_bad_input(scene, change, match):
    masks, cams = change(*scene)
    with pytest.raises(InvalidInputError, match=match):
        fit_mesh_to_silhouettes(masks, cams, iterations=1)


def test_fit_rejects_bad_options(scene):
    masks, cams = scene
    for kw, match in [({"init": "cube"}, "init"), ({"level": 9}, "level"), ({"lr": 0.0}, "lr"),
                      ({"w_edge": -1.0}, "w_edge"), ({"views_per_iteration": 7}, "views_per_iteration"),
                      ({"radius": 0}, "radius")]:
        with pytest.raises(InvalidInputError, match=match):
            fit_mesh_to_silhouettes(masks, cams, iterations=1, **kw)
