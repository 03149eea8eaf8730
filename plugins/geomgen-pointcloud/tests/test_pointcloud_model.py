"""Tests of the 'pointcloud' representation: registration, decoders, loss, overfitting,
predictions (points, normals, watertight meshes), frames, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import geomgen
from geomgen.errors import InvalidInputError
from geomgen.models import ShapePredictor, load_model, save_model
from geomgen.structures import Meshes, PointClouds
from geomgen_pointcloud.decoders import FoldingPointDecoder, MLPPointDecoder, r2_sequence
from geomgen_pointcloud.model import PointCloudPredictor
from geomgen_pointcloud.config import PointCloudConfig

SMALL = {"code_dim": 64, "num_points": 256, "num_patches": 4, "hidden": 32, "mesh_points": 4000,
         "mesh_resolution": 24}


def _model(**kw) -> PointCloudPredictor:
    return geomgen.get_model("pointcloud", **{**SMALL, **kw})


def _closed(faces: torch.Tensor) -> bool:
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    u = torch.unique(e, dim=0)
    return u.shape[0] == e.shape[0] and torch.equal(u, torch.unique(e.flip(1), dim=0))


def test_registered_with_defaults():
    assert "pointcloud" in geomgen.list_models(kind="representation")
    m = geomgen.get_model("pointcloud")
    assert isinstance(m, PointCloudPredictor) and isinstance(m, ShapePredictor)
    assert (m.output, m.frame, m.has_volume) == ("pointcloud", "object", True)
    assert m.config == PointCloudConfig.defaults()
    assert sum(p.numel() for p in m.parameters()) * 4 <= 3.5 * 2 ** 20  # pretrained-weights budget
    code = "import sys, geomgen_pointcloud.plugin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr


def test_decoders():
    uv = r2_sequence(500)
    assert uv.shape == (500, 2) and (uv >= 0).all() and (uv < 1).all()
    assert torch.equal(uv, r2_sequence(500))
    assert torch.cdist(uv, uv).add(torch.eye(500) * 9).min() > 0.2 / 500 ** 0.5  # evenly spread
    dec = FoldingPointDecoder(16, num_patches=3, hidden=8)
    code = torch.randn(2, 16)
    assert dec.patch_sizes(10) == [4, 3, 3]
    assert dec(code, 10).shape == (2, 10, 3) and dec(code, 9).shape == (2, 9, 3)
    torch.testing.assert_close(dec(code, 9), dec(code, 9))  # deterministic parameters
    # more parameters sample the same patches: the first R2 points are shared
    torch.testing.assert_close(dec(code, 30)[:, :1], dec(code, 9)[:, :1])
    rnd = dec(code, 12, torch.rand(2, 3, 4, 2))
    assert rnd.shape == (2, 12, 3)
    mlp = MLPPointDecoder(16, 20, (8,))
    assert mlp(code).shape == (2, 20, 3)
    with pytest.raises(InvalidInputError, match="num_points"):
        mlp(code, 10)


@pytest.mark.parametrize("decoder", ["folding", "mlp"])
def test_loss_finite_and_backward(pointcloud_batch, decoder):
    m = _model(decoder=decoder).train()
    out = m(pointcloud_batch["images"])
    assert out.shape == (6, 256, 3)
    losses = m.compute_loss(pointcloud_batch)
    assert set(losses) == {"loss", "chamfer"} and torch.isfinite(losses["loss"]) and losses["loss"].dim() == 0
    losses["loss"].backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_loss_is_chamfer_to_the_object_frame_ground_truth(pointcloud_batch, monkeypatch):
    """Frame check: the ground-truth object-frame points score a zero loss and a high F1 (the base
    class's validation maps nothing, the model predicts in the object frame)."""
    m = _model().eval()
    gt = pointcloud_batch["pointclouds"].points_padded()
    monkeypatch.setattr(m, "forward", lambda images, K=None: gt[: images.shape[0]])
    assert float(m.compute_loss(pointcloud_batch)["loss"]) == 0.0
    monkeypatch.setattr(m, "decode", lambda code, num_points=None, random=False: gt[: code.shape[0]])
    metrics = m.validation_metrics(pointcloud_batch)  # 2000 of the 4096 GT points vs all of them
    assert float(metrics["F1@0.3"]) > 90.0
    # and a cloud shifted by 0.1 (3x the threshold at gt-10 scale) scores badly
    monkeypatch.setattr(m, "decode", lambda code, num_points=None, random=False: gt[: code.shape[0]] + 0.1)
    assert float(m.validation_metrics(pointcloud_batch)["F1@0.3"]) < 20.0


def test_overfits_four_samples(pointcloud_batch):
    b = {k: (v[:4] if isinstance(v, torch.Tensor) else v) for k, v in pointcloud_batch.items()}
    b["pointclouds"] = pointcloud_batch["pointclouds"][:4]
    m = _model().train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    first = float(m.compute_loss(b)["loss"].detach())
    for _ in range(40):
        loss = m.compute_loss(b)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    last = float(m.compute_loss(b)["loss"].detach())
    assert last < 0.3 * first, (first, last)


@pytest.mark.parametrize("decoder", ["folding", "mlp"])
def test_predictions_in_eval_mode(pointcloud_batch, decoder):
    m = _model(decoder=decoder).eval()
    imgs = pointcloud_batch["images"][:2]
    pc = m.predict(imgs)
    assert isinstance(pc, PointClouds) and pc.num_points_per_cloud().tolist() == [256, 256]
    n = pc.normals_padded()
    torch.testing.assert_close(n.norm(dim=-1), torch.ones(2, 256))
    assert not pc.points_padded().requires_grad
    dense = m.predict_points(imgs, num_points=3000)
    expected = 3000 if decoder == "folding" else 256  # the MLP's fixed set is never duplicated
    assert dense.num_points_per_cloud().tolist() == [expected] * 2
    assert m.predict_points(imgs, num_points=100).num_points_per_cloud().tolist() == [100] * 2
    torch.testing.assert_close(m.predict_points(imgs, num_points=100).points_padded(),
                               m.predict_points(imgs, num_points=100).points_padded())  # deterministic
    mesh = m.predict_meshes(imgs)
    assert isinstance(mesh, Meshes) and len(mesh) == 2
    for f in mesh.faces_list():
        assert f.shape[0] > 0 and _closed(f)
    assert (mesh.volume() > 0).all()


def test_save_and_load_round_trip(pointcloud_batch, tmp_path):
    m = _model().eval()
    m2 = load_model(save_model(m, "pointcloud", tmp_path / "model.pt"))
    assert isinstance(m2, PointCloudPredictor) and m2.config == m.config
    x = pointcloud_batch["images"][:2]
    torch.testing.assert_close(m2.predict(x).points_padded(), m.predict(x).points_padded())


@pytest.mark.parametrize("kwargs, match", [
    ({"decoder": "atlas"}, "decoder"), ({"num_points": 0}, "num_points"), ({"normal_k": 2}, "normal_k"),
    ({"mesh_level": 1.0}, "mesh_level"), ({"mesh_resolution": 2}, "mesh_resolution"),
    ({"encoder": "huge"}, "encoder"), ({"fov": 0}, "fov"), ({"num_patches": 1.5}, "num_patches"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(InvalidInputError, match=match):
        _model(**kwargs)


def test_bad_inputs():
    m = _model().eval()
    with pytest.raises(InvalidInputError, match="images"):
        m.predict(torch.rand(1, 3, 32, 32))
    with pytest.raises(InvalidInputError, match="images"):
        m.predict_meshes(torch.rand(1, 3, 64))
    with pytest.raises(InvalidInputError, match="num_points"):
        m.predict_points(torch.rand(1, 3, 64, 64), num_points=0)
