"""Tests of the 'depth' representation: registration, shapes, loss, overfitting, predictions, frames, errors."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

import geomgen
from geomgen.errors import InvalidInputError
from geomgen.losses import chamfer_distance
from geomgen.models import ShapePredictor, camera_to_world, default_distance, load_model, save_model
from geomgen.structures import DepthMaps, Meshes, PointClouds
from geomgen_depth.model import DepthPredictor
from geomgen_depth.config import DepthConfig

SMALL = {"encoder": "tiny", "decoder_widths": [16, 16, 8, 8]}


def _model(**kw) -> DepthPredictor:
    return geomgen.get_model("depth", **{**SMALL, **kw})


def test_registered_with_defaults():
    assert "depth" in geomgen.list_models(kind="representation")
    m = geomgen.get_model("depth")
    assert isinstance(m, DepthPredictor) and isinstance(m, ShapePredictor)
    assert (m.output, m.frame, m.has_volume) == ("depth", "camera", False)
    assert m.config == DepthConfig.defaults()
    n = sum(p.numel() for p in m.parameters())
    assert n * 4 <= 3.5 * 2 ** 20  # float32 weights within the pretrained-model budget


def test_plugin_module_is_cheap_to_import():
    code = "import sys, geomgen_depth.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_forward_shapes_and_initial_depth(depth_batch):
    m = _model().eval()
    out = m(depth_batch["images"][:2])
    assert out["log_depth"].shape == (2, 64, 64) and out["mask_logits"].shape == (2, 64, 64)
    # starts near the renders' camera distance (the object centre's depth)
    assert (out["log_depth"] - math.log(default_distance(40.0))).abs().max() < 0.5


def test_loss_finite_and_backward_reaches_every_parameter(depth_batch):
    m = _model().train()
    losses = m.compute_loss(depth_batch)
    assert set(losses) == {"loss", "si", "l1", "mask"}
    assert all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    losses["loss"].backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_overfits_four_samples(depth_batch):
    b = {k: (v[:4] if isinstance(v, torch.Tensor) else v) for k, v in depth_batch.items()}
    m = _model().train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = m.compute_loss(b)
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
        first = first if first is not None else {k: float(v.detach()) for k, v in loss.items()}
    last = {k: float(v.detach()) for k, v in m.compute_loss(b).items()}
    assert last["loss"] < 0.7 * first["loss"], (first, last)
    assert last["l1"] < 0.2 * first["l1"] and last["si"] < 0.2 * first["si"], (first, last)
    assert last["mask"] < 0.8 * first["mask"], (first, last)


def test_predictions_in_eval_mode(depth_batch):
    m = _model().eval()
    imgs, K = depth_batch["images"][:3], depth_batch["K"][:3]
    dm = m.predict(imgs, K)
    assert isinstance(dm, DepthMaps) and len(dm) == 3 and dm.image_size == (64, 64)
    assert torch.equal(dm.K, K)
    assert (dm.depth[~dm.masks] == 0).all() and (dm.depth[dm.masks] > 0).all()
    assert not dm.depth.requires_grad
    dm0 = m.predict(imgs)  # default intrinsics = the renders'
    torch.testing.assert_close(dm0.K, K)
    pc = m.predict_points(imgs, K, num_points=300)  # default: samples of the 2.5D mesh
    assert isinstance(pc, PointClouds) and len(pc) == 3 and pc.normals_list() is not None
    assert pc.num_points_per_cloud().tolist() == [300] * 3
    mesh = m.predict_meshes(imgs, K)
    assert isinstance(mesh, Meshes) and len(mesh) == 3
    mp = _model(points_from="pixels").eval()
    mp.load_state_dict(m.state_dict())
    pc = mp.predict_points(imgs, K, num_points=500)
    assert ((pc.num_points_per_cloud() >= 1) & (pc.num_points_per_cloud() <= 500)).all()


def _oracle(m: DepthPredictor, batch, monkeypatch) -> None:
    """Make the network output the batch's ground truth (log depth, +-10 mask logits)."""
    gt, masks = batch["depths"], batch["masks"]

    def fake_forward(images, K=None):
        n = images.shape[0]
        z = torch.where(masks[:n], gt[:n], torch.full_like(gt[:n], default_distance(40.0)))
        return {"log_depth": z.log(), "mask_logits": masks[:n].float() * 20 - 10}

    monkeypatch.setattr(m, "forward", fake_forward)


def test_ground_truth_output_maps_onto_the_object(depth_batch, monkeypatch):
    """End-to-end frame check: a perfect depth/mask gives camera-frame points and meshes that
    the pose maps onto the object-frame ground truth, normals facing the camera."""
    m = _model(points_from="pixels").eval()
    _oracle(m, depth_batch, monkeypatch)
    b = depth_batch
    dm = m.predict(b["images"], b["K"])
    assert torch.equal(dm.masks, b["masks"])
    torch.testing.assert_close(dm.depth, b["depths"] * b["masks"])
    pc = m.predict_points(b["images"], b["K"], num_points=10000)
    assert torch.equal(pc.num_points_per_cloud(), b["masks"].flatten(1).sum(1))
    pts = pc.points_padded()
    assert ((pc.normals_padded() * pts).sum(-1) <= 1e-6).all()  # facing the camera at the origin
    world = camera_to_world(pts, b["world_from_camera"])
    gt = b["pointclouds"]
    d, _ = chamfer_distance(world, gt.points_padded(), x_lengths=pc.num_points_per_cloud(),
                            y_lengths=gt.num_points_per_cloud(), single_directional=True, batch_reduction=None)
    assert (d < 0.02 ** 2).all()
    mesh = m.predict_meshes(b["images"], b["K"])
    v = camera_to_world(mesh.verts_padded(), b["world_from_camera"])
    d, _ = chamfer_distance(v, gt.points_padded(), x_lengths=mesh.num_verts_per_mesh(),
                            y_lengths=gt.num_points_per_cloud(), single_directional=True, batch_reduction=None)
    assert (d < 0.02 ** 2).all()
    metrics = m.validation_metrics(b)  # the trainer's early-stopping metric, on the visible surface
    assert 30 < float(metrics["F1@0.3"]) <= 100


def test_empty_mask_keeps_one_pixel(depth_batch, monkeypatch):
    m = _model().eval()

    def fake_forward(images, K=None):
        n = images.shape[0]
        logits = torch.full((n, 64, 64), -10.0)
        logits[:, 10, 20] = -5.0
        return {"log_depth": torch.full((n, 64, 64), 1.0), "mask_logits": logits}

    monkeypatch.setattr(m, "forward", fake_forward)
    dm = m.predict(depth_batch["images"][:2])
    assert dm.masks.flatten(1).sum(1).tolist() == [1, 1] and dm.masks[:, 10, 20].all()
    assert m.predict_points(depth_batch["images"][:2]).num_points_per_cloud().tolist() == [1, 1]
    assert m.predict_meshes(depth_batch["images"][:2]).num_faces_per_mesh().tolist() == [0, 0]


def test_save_and_load_round_trip(depth_batch, tmp_path):
    m = _model().eval()
    path = save_model(m, "depth", tmp_path / "model.pt")
    m2 = load_model(path)
    assert isinstance(m2, DepthPredictor) and m2.config == m.config
    x = depth_batch["images"][:2]
    torch.testing.assert_close(m2.predict(x).depth, m.predict(x).depth)


@pytest.mark.parametrize("kwargs, match", [
    ({"si_lambda": 1.5}, "si_lambda"), ({"mask_threshold": 1.0}, "mask_threshold"),
    ({"mask_threshold": 0}, "mask_threshold"), ({"rel_threshold": 0}, "rel_threshold"),
    ({"points_from": "voxels"}, "points_from"), ({"l1_weight": -1}, "l1_weight"),
    ({"encoder": "huge"}, "encoder"), ({"upsample": "cubic"}, "upsample"), ({"image_size": 4}, "image_size"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        _model(**kwargs)


def test_bad_inputs(depth_batch):
    m = _model().eval()
    with pytest.raises(InvalidInputError, match="images"):
        m.predict(torch.rand(1, 3, 32, 32))
    with pytest.raises(InvalidInputError, match="images"):
        m.predict(torch.rand(1, 1, 64, 64))
    with pytest.raises(InvalidInputError, match="images"):
        m.predict_meshes(torch.rand(64, 64))
    with pytest.raises(InvalidInputError, match="K"):
        m.predict(torch.rand(2, 3, 64, 64), torch.eye(3).expand(3, 3, 3))
    with pytest.raises(InvalidInputError, match="num_points"):
        m.predict_points(torch.rand(1, 3, 64, 64), num_points=0)
