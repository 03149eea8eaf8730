"""geomgen.models.base: frames helpers, single_view, default intrinsics/distance vs the shapes dataset."""

from __future__ import annotations

import math

import pytest
import torch
from _models_dummy import tiny_dataset, tiny_root

from geomgen.data import collate_samples
from geomgen.errors import InvalidInputError
from geomgen.models import (
    camera_to_world,
    default_distance,
    default_intrinsics,
    rigid_inverse,
    single_view,
    transform_points,
    world_to_camera,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tiny_root(tmp_path_factory), view="all")


def _random_pose(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, 3, 3, generator=g, dtype=torch.float64))
    q = q * torch.sign(torch.linalg.det(q))[:, None, None]  # proper rotations
    T = torch.eye(4, dtype=torch.float64).repeat(n, 1, 1)
    T[:, :3, :3] = q
    T[:, :3, 3] = torch.randn(n, 3, generator=g, dtype=torch.float64)
    return T


def test_rigid_inverse_and_round_trips():
    T = _random_pose(4)
    assert torch.allclose(rigid_inverse(T) @ T, torch.eye(4, dtype=torch.float64).expand(4, 4, 4), atol=1e-12)
    p = torch.randn(4, 50, 3, dtype=torch.float64)
    assert torch.allclose(camera_to_world(world_to_camera(p, T), T), p, atol=1e-12)
    assert torch.allclose(transform_points(p, T), camera_to_world(p, T))
    n = torch.nn.functional.normalize(torch.randn(4, 50, 3, dtype=torch.float64), dim=-1)
    nc = world_to_camera(n, T, normals=True)
    assert torch.allclose(nc.norm(dim=-1), torch.ones(4, 50, dtype=torch.float64))  # directions: no translation
    assert torch.allclose(camera_to_world(nc, T, normals=True), n, atol=1e-12)


def test_default_intrinsics_and_distance_match_the_shapes_dataset(data):
    s = data[0]
    K = s["K"]  # (S, 3, 3)
    assert torch.allclose(K, default_intrinsics(K.shape[0], 64, 64, 40.0), atol=1e-4)
    assert default_distance(40.0) == pytest.approx(2.659, abs=1e-3)
    dist = s["world_from_camera"][:, :3, 3].norm(dim=-1)
    assert torch.allclose(dist, torch.full_like(dist, default_distance(40.0)), atol=1e-4)
    f = 0.5 * 64 / math.tan(math.radians(20.0))
    expected = torch.tensor([[f, 0, 32], [0, f, 32], [0, 0, 1]])
    assert torch.allclose(default_intrinsics(2, 64, 64)[1], expected)


def test_world_to_camera_matches_the_rendered_depth(data):
    """GT surface points moved into the camera frame project inside the mask, at the rendered depth."""
    b = single_view(collate_samples([data[0], data[3]]), 2)
    pts = world_to_camera(b["pointclouds"].points_padded(), b["world_from_camera"])
    assert bool((pts[..., 2] > 0).all())
    uv = pts @ b["K"].transpose(1, 2)
    uv = uv[..., :2] / uv[..., 2:]
    for i in range(2):
        ij = uv[i].floor().long().clamp(0, 63)
        inside = b["masks"][i][ij[:, 1], ij[:, 0]]
        assert inside.float().mean() > 0.9
        # the mask is sampled at pixel centres: points outside it are within a pixel of one inside
        ys, xs = torch.nonzero(b["masks"][i], as_tuple=True)
        centres = torch.stack([xs, ys], 1).float() + 0.5
        assert float(torch.cdist(uv[i][~inside], centres).min(1).values.max()) < 1.1
        # visible points (nearest along their pixel) sit at the rendered depth
        depth = b["depths"][i][ij[:, 1], ij[:, 0]]
        close = (pts[i, :, 2] - depth).abs() < 0.03
        assert close.float().mean() > 0.3  # the front half is visible
        # (almost) nothing in front of the rendered surface (pixel-sized slack at silhouettes and slopes)
        assert (pts[i, inside, 2] >= depth[inside] - 0.03).float().mean() > 0.95


def test_single_view(data):
    batch = collate_samples([data[0], data[1]])
    S = batch["images"].shape[1]
    one = single_view(batch, 1)
    assert one["images"].shape == (2, 3, 64, 64) and one["K"].shape == (2, 3, 3)
    assert one["world_from_camera"].shape == (2, 4, 4) and one["depths"].shape == (2, 64, 64)
    assert torch.equal(one["images"], batch["images"][:, 1])
    assert torch.equal(one["view_indices"], batch["view_indices"][:, 1])
    assert "cameras" not in one and one["mesh"] is batch["mesh"]
    assert torch.equal(single_view(batch, -1)["images"], batch["images"][:, S - 1])
    again = single_view(one, 0)
    assert again is not one and torch.equal(again["images"], one["images"])
    with pytest.raises(InvalidInputError, match="view"):
        single_view(batch, S)
    with pytest.raises(InvalidInputError, match="batch"):
        single_view({"mesh": None})


# ----------------------------------------------------------------------------- conformance checker
def test_check_representation_accepts_conforming_models(data):
    from _models_dummy import use_dummy_plugin

    from geomgen.testing.models import check_representation

    batch = single_view(collate_samples([data[0], data[2]]), 1)
    with use_dummy_plugin():
        for name in ("dummy-sphere", "dummy-camera", "dummy-points"):
            model = check_representation(name, batch, config={"level": 1})
            assert not model.training


def test_check_representation_catches_broken_models(data):
    from _models_dummy import CameraSphere, DummySphere

    from geomgen.testing.models import check_representation

    batch = single_view(collate_samples([data[0], data[2]]), 0)

    class WrongN(DummySphere):
        def predict(self, images, K=None):
            return super().predict(images[:1], K)

    class NoGrad(DummySphere):
        def compute_loss(self, batch):
            return {"loss": torch.tensor(1.0, requires_grad=True)}

    class BadConfig(DummySphere):
        def __init__(self):
            super().__init__(extra=object())

    class WrongFrame(CameraSphere):
        frame = "object"

    class NoCheck(DummySphere):
        def check_images(self, images, fn="predict"):
            return images

    for cls, msg in ((WrongN, "1 items for 2 images"), (NoGrad, "does not reach any parameter"),
                     (BadConfig, "JSON"), (WrongFrame, "object-frame"), (NoCheck, "check_images")):
        with pytest.raises(AssertionError, match=msg):
            check_representation(cls(), batch)
