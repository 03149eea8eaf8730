"""``geomgen train``, ``geomgen eval`` and ``geomgen predict`` run in-process through geomgen.cli.main."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from _models_dummy import TINY, tiny_dataset, tiny_root, use_dummy_plugin

from geomgen.cli import main
from geomgen.io import load_binvox, load_depthmaps, load_image, load_mesh, load_pointcloud, save_image
from geomgen.models import load_model, save_model


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    r = tiny_root(tmp_path_factory)
    tiny_dataset(r)  # built once
    return r


@pytest.fixture
def dummy(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOMGEN_ASSETS", str(tmp_path / "no-assets"))
    from geomgen.models.predict import clear_cache

    clear_cache()
    with use_dummy_plugin():
        yield
    clear_cache()


def _data_config(root) -> str:
    return json.dumps(dict(TINY, root=str(root)))


@pytest.fixture(scope="module")
def images(root, tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-images")
    ds = tiny_dataset(root)
    paths = []
    for i in (0, 2):
        p = folder / f"{ds.records[i].category}.png"
        save_image(p, ds[i]["images"][0])
        paths.append(p)
    return paths


def test_train_writes_model_metrics_and_plot(dummy, root, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "dummy-sphere", "--data-config", _data_config(root), "--model-config", '{"radius": 0.1}',
                 "--set", "radius=0.2",
                 "--max-steps", "4", "--batch-size", "3", "--lr", "0.05", "--early-stopping-metric", "none",
                 "--no-progress", "--out-dir", str(out), "--log-every", "1"])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "trained dummy-sphere: 4 steps" in text and str(out / "model.pt") in text
    assert str(out / "metrics.csv") in text
    model = load_model(out / "model.pt")
    assert model.config["radius"] == 0.2 and float(model.log_scale.detach()) != 0.0  # it learned something
    assert (out / "metrics.csv").is_file()


def test_train_errors_are_clean(dummy, capsys):
    assert main(["train", "no-such-repr", "--max-steps", "1"]) == 1
    assert "no-such-repr" in capsys.readouterr().err
    assert main(["train", "dummy-sphere", "--model-config", "[1,"]) == 1
    assert "--model-config" in capsys.readouterr().err


def test_eval_prints_the_table_with_the_baseline(dummy, root, tmp_path, capsys):
    weights = save_model(__import__("_models_dummy").DummySphere(), "dummy-sphere", tmp_path / "m.pt")
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    code = main(["eval", "dummy-sphere", "--weights", str(weights), "--data-config", _data_config(root),
                 "--split", "train", "--num-samples", "300", "--no-progress", "--json", str(js),
                 "--markdown", str(md)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "Chamfer-L2 ↓" in text and "mean-shape" in text and "dummy-sphere" in text and "mug" in text
    reports = json.loads(js.read_text())
    assert set(reports) == {"dummy-sphere", "mean-shape"} and reports["mean-shape"]["num_instances"] == 6
    assert md.read_text().startswith("| Category | Model |")
    code = main(["eval", "dummy-sphere", "--weights", str(weights), "--data-config", _data_config(root),
                 "--split", "train", "--num-samples", "300", "--no-progress", "--summary", "--no-baseline"])
    text = capsys.readouterr().out
    assert code == 0 and "mean-shape" not in text and "mug" not in text and "instances" in text


def test_eval_errors_are_clean(dummy, capsys):
    assert main(["eval", "all"]) == 1
    assert "no pretrained weights" in capsys.readouterr().err
    assert main(["eval", "dummy-sphere", "--no-progress"]) == 1
    assert "geomgen train dummy-sphere" in capsys.readouterr().err
    assert main(["eval", "dummy-sphere", "dummy-camera", "--weights", "x.pt"]) == 1
    assert "--weights" in capsys.readouterr().err


def test_predict_writes_files_and_renders(dummy, images, tmp_path, capsys):
    from _models_dummy import DummySphere

    weights = save_model(DummySphere(), "dummy-sphere", tmp_path / "m.pt")
    out = tmp_path / "one.obj"
    code = main(["predict", str(images[0]), "--weights", str(weights), "-o", str(out),
                 "--render", str(tmp_path / "r.png")])
    text = capsys.readouterr().out
    assert code == 0, text
    mesh = load_mesh(out)
    assert mesh.faces_list()[0].shape[0] == 320  # icosphere level 2
    sheet = load_image(tmp_path / "r.png")
    assert sheet.shape[1] >= 128 and sheet.shape[2] >= 256
    assert float(sheet.std()) > 0.01  # something was drawn

    folder = tmp_path / "many"
    code = main(["predict", *map(str, images), "--repr", "dummy-sphere", "--weights", str(weights), "-o",
                 str(folder), "--format", "ply", "--render", str(tmp_path / "renders")])
    assert code == 0
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(f"{p.stem}.ply" for p in images)
    assert len(list((tmp_path / "renders").glob("*.png"))) == 2

    code = main(["predict", str(images[0]), "--weights", str(weights), "-o", str(tmp_path / "p.ply"), "--points"])
    assert code != 0 or load_pointcloud(tmp_path / "p.ply") is not None


def test_predict_points_and_errors(dummy, images, tmp_path, capsys):
    from _models_dummy import PointsOnly

    weights = save_model(PointsOnly(), "dummy-points", tmp_path / "p.pt")
    code = main(["predict", str(images[0]), "--weights", str(weights), "-o", str(tmp_path / "pts.ply"), "--points"])
    assert code == 0, capsys.readouterr().err
    assert load_pointcloud(tmp_path / "pts.ply").points_list()[0].shape == (162, 3)
    assert main(["predict", str(images[0]), "--weights", str(weights), "-o", str(tmp_path / "v.binvox")]) == 1
    assert ".binvox needs a voxel representation" in capsys.readouterr().err
    assert main(["predict", str(images[0]), "--repr", "dummy-sphere", "--weights", str(weights),
                 "-o", str(tmp_path / "x.obj")]) == 1
    assert "'dummy-points' model, not 'dummy-sphere'" in capsys.readouterr().err
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert main(["predict", str(bad), "--weights", str(weights), "-o", str(tmp_path / "y.obj")]) == 1
    assert "bad.png" in capsys.readouterr().err
    assert main(["predict", *map(str, images), "--weights", str(weights), "-o", str(tmp_path / "z.obj")]) == 1
    assert "must be a folder" in capsys.readouterr().err
    assert main(["predict", str(images[0]), "--repr", "nope", "-o", str(tmp_path / "z.obj")]) == 1
    assert "Available" in capsys.readouterr().err


def test_predict_voxels_and_depth_outputs(dummy, images, tmp_path, capsys):
    """Structures other than meshes: a model returning Voxels / DepthMaps (patched in)."""
    from _models_dummy import DummySphere

    from geomgen.structures import DepthMaps, Voxels

    class VoxelSphere(DummySphere):
        output = "voxels"

        def predict(self, images, K=None):
            g = torch.zeros(len(images), 8, 8, 8)
            g[:, 2:6, 2:6, 2:6] = 1
            return Voxels(g, origin=(-0.5,) * 3, voxel_size=1 / 8)

    class DepthSphere(DummySphere):
        output = "depth"
        frame = "camera"

        def predict(self, images, K=None):
            d = torch.zeros(len(images), 64, 64)
            d[:, 20:40, 20:40] = 2.5
            return DepthMaps(d, self.intrinsics(len(images), K))

    for cls, name, ext in ((VoxelSphere, "vox", ".binvox"), (DepthSphere, "depth", ".npz")):
        model = cls().eval()
        from geomgen.models.predict import _CACHE

        weights = tmp_path / f"{name}.pt"
        save_model(model, "dummy-sphere", weights)
        key = ("file", str(weights.resolve()), weights.stat().st_mtime_ns, "cpu")
        _CACHE[key] = ("dummy-sphere", model)  # the registry would rebuild a DummySphere
        out = tmp_path / f"out{ext}"
        assert main(["predict", str(images[0]), "--weights", str(weights), "-o", str(out)]) == 0
        if ext == ".binvox":
            assert int(load_binvox(out).grids.sum()) == 64
        else:
            z = np.load(out)
            assert z["depth"].shape == (64, 64) and int(z["mask"].sum()) == 400 and z["K"].shape == (3, 3)
            back = load_depthmaps(out)  # the reader of geomgen view reads what predict wrote
            assert back.depth.shape == (1, 64, 64) and int(back.masks.sum()) == 400
            assert torch.allclose(back.depth[0, 30, 30], torch.tensor(2.5))
            assert main(["predict", str(images[0]), "--weights", str(weights), "-o", str(tmp_path / "d.ply"),
                         "--points"]) == 0
            assert load_pointcloud(tmp_path / "d.ply").points_list()[0].shape == (400, 3)
    capsys.readouterr()


def test_train_defaults_come_from_the_shipped_recipe(dummy, monkeypatch, tmp_path):
    """`geomgen train NAME` reuses the manifest's recipe; given flags win over it."""
    from geomgen.cli import train as train_command
    from geomgen.weights import manifest_path

    seen = {}

    def fake_train(name, config, **kw):
        seen["config"] = config
        raise SystemExit(0)

    folder = manifest_path().parent
    folder.mkdir(parents=True)
    save_model(__import__("_models_dummy").DummySphere(), "dummy-sphere", folder / "dummy-sphere.pt")
    from geomgen.weights import write_manifest_entry

    write_manifest_entry("dummy-sphere", folder / "dummy-sphere.pt", {},
                         train={"recipe": {"max_steps": 77, "lr": 0.123, "batch_size": 5}, "wall_s": 1.0})
    monkeypatch.setattr("geomgen.models.training.train_representation", fake_train)
    with pytest.raises(SystemExit):
        main(["train", "dummy-sphere", "--lr", "0.5", "--out-dir", str(tmp_path / "r")])
    cfg = seen["config"]
    assert (cfg.max_steps, cfg.lr, cfg.batch_size) == (77, 0.5, 5)
    assert cfg.early_stopping_metric == "F1@0.3" and cfg.out_dir == str(tmp_path / "r")
    assert train_command.recipe("nothing-shipped") == {}
