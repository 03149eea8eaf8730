"""geomgen.predict: every image form, model sources, and clean errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _models_dummy import DummySphere, use_dummy_plugin
from PIL import Image

import geomgen
from geomgen.errors import FileFormatError, InvalidInputError, MeshFileNotFoundError, UnknownComponentError
from geomgen.models.predict import clear_cache, load_images
from geomgen.structures import Meshes
from geomgen.weights import PretrainedNotFoundError, manifest_path, save_model, write_manifest_entry


class Recorder(DummySphere):
    """Remembers the images and K it was given."""

    def predict(self, images, K=None):
        self.seen = (images.clone(), None if K is None else K.clone())
        return super().predict(images, K)


@pytest.fixture
def model():
    return Recorder().eval()


@pytest.fixture
def rgb():
    g = np.random.default_rng(0)
    return g.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)


def test_lazy_top_level_name():
    assert geomgen.predict is geomgen.models.predict.predict
    assert "predict" in dir(geomgen)


def test_image_forms_give_the_same_input(model, rgb, tmp_path):
    ref = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    Image.fromarray(rgb).save(tmp_path / "a.png")
    forms = [str(tmp_path / "a.png"), tmp_path / "a.png", Image.fromarray(rgb), rgb, rgb.astype(np.float32) / 255,
             ref, ref.permute(1, 2, 0), ref[None]]
    for form in forms:
        out = geomgen.predict(form, model=model)
        assert isinstance(out, Meshes) and len(out) == 1
        assert torch.allclose(model.seen[0][0], ref, atol=1e-6), type(form)
    out = geomgen.predict([rgb, ref, str(tmp_path / "a.png")], model=model)
    assert len(out) == 3 and model.seen[0].shape == (3, 3, 64, 64)
    assert len(geomgen.predict(torch.stack([ref, ref]), model=model)) == 2


def test_alpha_grey_and_resizing(model, rgb):
    rgba = np.concatenate([rgb, np.zeros((64, 64, 1), np.uint8)], axis=2)  # fully transparent
    geomgen.predict(rgba, model=model)
    assert torch.allclose(model.seen[0], torch.ones(1, 3, 64, 64))  # composited on white
    geomgen.predict(rgb[:, :, 0], model=model)  # grey (H, W)
    assert torch.equal(model.seen[0][0, 0], model.seen[0][0, 1])
    big = np.kron(rgb, np.ones((2, 3, 1), np.uint8))  # 128 x 192
    geomgen.predict(big, model=model)
    assert model.seen[0].shape == (1, 3, 64, 64)
    K = torch.tensor([[100.0, 0, 96], [0, 100.0, 64], [0, 0, 1]])
    geomgen.predict(big, model=model, K=K)
    assert torch.allclose(model.seen[1][0], torch.tensor([[100 / 3, 0, 32], [0, 50.0, 32], [0, 0, 1]]))


def test_bad_images(model, rgb, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    with pytest.raises(FileFormatError, match="bad.png"):
        geomgen.predict(tmp_path / "bad.png", model=model)
    Image.fromarray(rgb).save(tmp_path / "t.png")
    (tmp_path / "trunc.png").write_bytes((tmp_path / "t.png").read_bytes()[:200])
    with pytest.raises(FileFormatError, match="trunc.png"):
        geomgen.predict(str(tmp_path / "trunc.png"), model=model)
    with pytest.raises(MeshFileNotFoundError, match="nope.png"):
        geomgen.predict(tmp_path / "nope.png", model=model)
    with pytest.raises(InvalidInputError, match="2-channel"):
        geomgen.predict(rgb[:, :, :2], model=model)
    with pytest.raises(InvalidInputError, match="channel"):
        geomgen.predict(np.zeros((64, 64, 5), np.uint8), model=model)
    with pytest.raises(InvalidInputError, match="channel|shape"):
        geomgen.predict(torch.zeros(2, 5, 64, 64), model=model)
    with pytest.raises(InvalidInputError, match="empty"):
        geomgen.predict(np.zeros((0, 64, 3), np.uint8), model=model)
    with pytest.raises(InvalidInputError, match="empty"):
        geomgen.predict([], model=model)
    with pytest.raises(InvalidInputError, match="must be a path"):
        geomgen.predict(42, model=model)
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        geomgen.predict(np.full((64, 64, 3), 2.0), model=model)
    with pytest.raises(InvalidInputError, match="K"):
        geomgen.predict(rgb, model=model, K=torch.eye(2))
    with pytest.raises(InvalidInputError, match="ShapePredictor"):
        geomgen.predict(rgb, model=torch.nn.Linear(1, 1))


def test_weights_and_pretrained(rgb, tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMGEN_ASSETS", str(tmp_path / "assets"))
    clear_cache()
    with use_dummy_plugin():
        m = DummySphere(radius=0.2)
        path = save_model(m, "dummy-sphere", tmp_path / "model.pt")
        out = geomgen.predict(rgb, "dummy-sphere", weights=path)
        assert float(out.verts_list()[0].norm(dim=1).max()) == pytest.approx(0.2, rel=1e-5)
        assert len(geomgen.predict(rgb, None, weights=str(path))) == 1  # any representation
        with pytest.raises(InvalidInputError, match="'dummy-sphere' model, not 'dummy-camera'"):
            geomgen.predict(rgb, "dummy-camera", weights=path)
        with pytest.raises(MeshFileNotFoundError):
            geomgen.predict(rgb, "dummy-sphere", weights=tmp_path / "missing.pt")
        with pytest.raises(UnknownComponentError, match=r"'dummy-spere'.*Did you mean 'dummy-sphere'.*Available"):
            geomgen.predict(rgb, "dummy-spere")
        with pytest.raises(PretrainedNotFoundError, match="geomgen train dummy-sphere"):
            geomgen.predict(rgb, "dummy-sphere")
        folder = manifest_path().parent
        folder.mkdir(parents=True)
        save_model(DummySphere(radius=0.4), "dummy-sphere", folder / "dummy-sphere.pt")
        write_manifest_entry("dummy-sphere", folder / "dummy-sphere.pt", {"radius": 0.4})
        out = geomgen.predict([rgb, rgb], "dummy-sphere")
        assert len(out) == 2 and float(out.verts_list()[1].norm(dim=1).max()) == pytest.approx(0.4, rel=1e-5)
        from geomgen.models.predict import _CACHE

        assert any(k[0] == "pretrained" for k in _CACHE)  # loaded once, then cached
    clear_cache()


def test_load_images_reports_sizes(rgb):
    images, sizes = load_images([rgb, np.zeros((32, 48, 3), np.uint8)], 64)
    assert images.shape == (2, 3, 64, 64) and sizes == [(64, 64), (32, 48)]
