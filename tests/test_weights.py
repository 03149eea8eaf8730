"""geomgen.weights: the pretrained manifest, checksums, loading."""

from __future__ import annotations

import json

import pytest
import torch
from _models_dummy import DummySphere, use_dummy_plugin

from geomgen.errors import FileFormatError, GeomgenError, MeshFileNotFoundError
from geomgen.weights import (
    PRETRAINED_FORMAT,
    PretrainedNotFoundError,
    assets_dir,
    list_pretrained,
    load_pretrained,
    manifest_path,
    pretrained_info,
    save_model,
    write_manifest_entry,
    write_manifest_section,
)


@pytest.fixture
def assets(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMGEN_ASSETS", str(tmp_path / "assets"))
    with use_dummy_plugin():
        yield tmp_path / "assets"


def _ship(name: str = "dummy-sphere", scale: float = 0.5) -> tuple[DummySphere, dict]:
    model = DummySphere(radius=0.25)
    with torch.no_grad():
        model.log_scale.fill_(scale)
    path = manifest_path().parent / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(model, name, path)
    entry = write_manifest_entry(name, path, model.config, train={"max_steps": 3, "lr": 1e-3},
                                 eval={"mean": {"F1@0.3": 42.0, "AbsNormalConsistency": float("nan")}})
    return model, entry


def test_assets_dir_default_is_next_to_the_package(monkeypatch):
    import geomgen

    monkeypatch.delenv("GEOMGEN_ASSETS", raising=False)
    from pathlib import Path

    assert assets_dir() == Path(geomgen.__file__).resolve().parents[1] / "assets"


def test_round_trip(assets):
    assert list_pretrained() == []
    model, entry = _ship()
    assert list_pretrained() == ["dummy-sphere"]
    data = json.loads(manifest_path().read_text())
    assert data["format"] == PRETRAINED_FORMAT
    assert data["models"]["dummy-sphere"]["eval"]["mean"]["AbsNormalConsistency"] is None  # NaN -> null
    assert list(data) == sorted(data)  # sorted keys
    info = pretrained_info("dummy-sphere")
    assert info["bytes"] == (assets / "pretrained" / "dummy-sphere.pt").stat().st_size
    assert info["config"]["radius"] == 0.25 and info["train"]["max_steps"] == 3
    loaded = load_pretrained("dummy-sphere")
    assert isinstance(loaded, DummySphere) and not loaded.training
    assert float(loaded.log_scale.detach()) == pytest.approx(0.5) and loaded.config == model.config
    write_manifest_section("dataset", {"name": "shapes", "config": {"per_category": 2}})
    assert json.loads(manifest_path().read_text())["dataset"]["config"] == {"per_category": 2}
    assert list_pretrained() == ["dummy-sphere"]
    with pytest.raises(GeomgenError):
        write_manifest_section("models", {})


def test_checksum_and_size_mismatch(assets):
    _ship()
    path = assets / "pretrained" / "dummy-sphere.pt"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(FileFormatError, match=r"dummy-sphere\.pt.*SHA-256"):
        load_pretrained("dummy-sphere")
    path.write_bytes(bytes(raw[:-10]))
    with pytest.raises(FileFormatError, match=r"dummy-sphere\.pt.*bytes"):
        load_pretrained("dummy-sphere")


def test_corrupt_file_with_matching_manifest_is_a_file_format_error(assets):
    folder = assets / "pretrained"
    folder.mkdir(parents=True)
    (folder / "dummy-sphere.pt").write_bytes(b"not a torch file at all")
    write_manifest_entry("dummy-sphere", folder / "dummy-sphere.pt", {"radius": 0.3})
    with pytest.raises(FileFormatError, match="dummy-sphere.pt"):
        load_pretrained("dummy-sphere")


def test_missing_file_entry_and_manifest(assets):
    with pytest.raises(PretrainedNotFoundError, match=r"'voxel'.*available: none.*geomgen train voxel"):
        load_pretrained("voxel")
    _ship()
    with pytest.raises(PretrainedNotFoundError, match=r"available: 'dummy-sphere'"):
        pretrained_info("voxel")
    (assets / "pretrained" / "dummy-sphere.pt").unlink()
    with pytest.raises(MeshFileNotFoundError, match="dummy-sphere.pt"):
        load_pretrained("dummy-sphere")
    manifest_path().write_text("{not json")
    with pytest.raises(FileFormatError, match="manifest"):
        list_pretrained()
    manifest_path().write_text(json.dumps({"format": "other/1"}))
    with pytest.raises(FileFormatError, match="geomgen-pretrained/1"):
        list_pretrained()


def test_write_entry_checks_its_file(assets, tmp_path):
    with pytest.raises(MeshFileNotFoundError):
        write_manifest_entry("x", tmp_path / "nope.pt", {})
    outside = tmp_path / "elsewhere.pt"
    outside.write_bytes(b"x")
    with pytest.raises(GeomgenError, match="pretrained folder"):
        write_manifest_entry("x", outside, {})


def test_train_model_checks_kind_and_config():
    from geomgen.errors import InvalidInputError
    from geomgen.weights import train_model

    with pytest.raises(InvalidInputError, match=r"train_model: argument 'kind' must be one of"):
        train_model("dummy-sphere", "predictor", None, {})
    with pytest.raises(InvalidInputError, match=r"train_representation: argument 'config' must be a TrainConfig"):
        train_model("dummy-sphere", "representation", None, 42)
    with pytest.raises(InvalidInputError, match=r"train_generator: argument 'config' must be a TrainConfig"):
        train_model("dummy-sphere", "generator", None, 42)


def test_models_reexports_are_the_weights_functions():
    """``geomgen.models`` re-exports the names users call today; they are the same objects."""
    import geomgen.models
    import geomgen.weights

    for name in ("save_model", "load_model", "TrainedModel", "MODEL_FORMAT", "list_pretrained",
                 "pretrained_info", "load_pretrained", "write_manifest_entry"):
        assert getattr(geomgen.models, name) is getattr(geomgen.weights, name), name


def test_weights_imports_neither_models_nor_generative():
    """geomgen.weights is below both model packages (it rebuilds models through the registry)."""
    import ast
    from pathlib import Path

    import geomgen.weights

    tree = ast.parse(Path(geomgen.weights.__file__).read_text(encoding="utf-8"))
    imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    bad = [m for m in imported if m.split(".")[:2] in (["geomgen", "models"], ["geomgen", "generative"])]
    assert not bad, bad
