"""Tests of train_generator, evaluate_generator and the `geomgen sample` / `train` / `eval` commands for generators."""

from __future__ import annotations

import json
import math

import pytest
import torch

from _generative_dummy import IndependentVoxels, use_generator_plugin
from geomgen.cli import main
from geomgen.generative import ShapeGenerator, train_generator
from geomgen.generative.evaluate import evaluate_generator, format_generator_table
from geomgen.io import load_binvox, load_image, load_mesh, load_pointcloud
from geomgen.testing.generative import toy_batch
from geomgen.weights import load_model, save_model


@pytest.fixture
def plugin(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOMGEN_ASSETS", str(tmp_path / "no-assets"))
    with use_generator_plugin():
        yield


class Memorizer(ShapeGenerator):
    """Returns the given grids in order (a generator that memorised its training set)."""

    output = "voxels"

    def __init__(self, grids: torch.Tensor) -> None:
        super().__init__({"resolution": int(grids.shape[-1])})
        self.register_buffer("grids", grids.float())

    def generate(self, n, labels, generator, **options):
        return self.grids[torch.arange(n) % len(self.grids)]


def test_train_generator_lowers_the_nll_and_resumes(plugin, tmp_path):
    val = toy_batch(8, 8, 64, seed=9)
    untrained = IndependentVoxels(8)
    nll0 = -float(untrained.log_prob(val["voxels"]).detach().mean())
    cfg = {"max_steps": 30, "batch_size": 8, "lr": 0.2, "optimizer": "adamw", "out_dir": str(tmp_path / "run"),
           "checkpoint_every": 15, "progress": False, "log_every": 5}
    result = train_generator("indep-voxels", cfg, dataset="toy", dataset_config={"n": 16})
    nll = -float(result.model.log_prob(val["voxels"]).detach().mean())
    assert nll < nll0 - 100, (nll0, nll)  # 512 voxels: from 355 nats to well under 255
    assert result.model_path is not None and result.model_path.is_file()
    loaded = load_model(result.model_path)
    assert torch.equal(loaded.logits, result.model.logits)
    again = train_generator("indep-voxels", {**cfg, "max_steps": 40, "resume": True}, dataset="toy",
                            dataset_config={"n": 16})
    assert again.summary.resumed_from is not None and again.summary.steps == 40
    with pytest.raises(Exception, match="representation, not a generator|not a generator"):
        train_generator("mean-shape", cfg)


def test_evaluate_generator_protocol(plugin):
    ref = toy_batch(8, 8, 512, seed=4)
    mem = Memorizer(ref["voxels"].grids)
    rep = evaluate_generator(mem, ref, num_points=256, seed=0, name="mem")
    assert rep.metrics["iou"]["MMD"] == 0 and rep.metrics["iou"]["COV"] == 1
    assert rep.metrics["chamfer"]["COV"] == 1 and rep.metrics["chamfer"]["MMD"] < 0.02
    assert rep.nll is None and rep.num_samples == rep.num_references == 8
    empty = Memorizer(torch.zeros(1, 8, 8, 8))
    bad = evaluate_generator(empty, ref, num_points=64)
    assert bad.empty_samples == 8 and bad.metrics["iou"]["MMD"] == 1 and bad.metrics["iou"]["1-NNA"] > 0.9
    m = IndependentVoxels(8)
    r2 = evaluate_generator(m, ref, num_samples=4, distances=["iou"])
    assert r2.num_samples == 4 and set(r2.metrics) == {"iou"}
    assert math.isclose(r2.bits_per_voxel, 1.0, rel_tol=1e-6) and math.isclose(r2.nll, 512 * math.log(2), rel_tol=1e-6)
    table = format_generator_table({"mem": rep, "indep": r2})
    assert "CD-1NNA%" in table and "mem" in table and "1.0000" in table
    assert format_generator_table({"mem": rep}, markdown=True).startswith("| model |")
    with pytest.raises(Exception, match="distances"):
        evaluate_generator(m, ref, distances=["emd"])


def test_cli_train_sample_eval(plugin, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "indep-voxels", "--dataset", "toy", "--data-config", '{"n": 16}', "--max-steps", "6",
                 "--batch-size", "8", "--out-dir", str(out), "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0 and "trained indep-voxels: 6 steps" in text and "geomgen sample --weights" in text
    weights = out / "model.pt"
    samples = tmp_path / "samples"
    code = main(["sample", "--weights", str(weights), "-n", "5", "-o", str(samples), "--raw", "--seed", "1"])
    text = capsys.readouterr().out
    assert code == 0 and "indep-voxels: 5 samples" in text
    files = sorted(p.name for p in samples.iterdir())
    assert files == ["grid.png"] + [f"sample-{i:03d}.{e}" for i in range(5) for e in ("binvox", "obj")]
    mesh = load_mesh(samples / "sample-000.obj")
    assert mesh.verts_padded().abs().max() <= 0.5 + 1e-5
    vox = load_binvox(samples / "sample-000.binvox")
    model = load_model(weights)
    again = model.sample(5, seed=1).grids[0]
    assert torch.equal(vox.grids[0].bool(), again.bool())  # the CLI's seed is the API's seed
    grid = load_image(samples / "grid.png")
    assert grid.shape[0] == 3 and (grid < 0.9).any()  # something was drawn
    code = main(["eval", "indep-voxels", "--weights", str(weights), "--dataset", "toy", "--data-config",
                 '{"n": 6}', "--generate", "4", "--json", str(tmp_path / "e.json"), "--no-progress"])
    text = capsys.readouterr().out
    assert code == 0 and "IoU-1NNA%" in text and "6 reference shapes, 4 samples" in text
    rep = json.loads((tmp_path / "e.json").read_text())["indep-voxels"]
    assert rep["num_samples"] == 4 and rep["bits_per_voxel"] is not None


def test_cli_point_samples(plugin, tmp_path, capsys):
    from _generative_dummy import JitterPoints

    m = JitterPoints(300)
    with torch.no_grad():
        m.log_radius.fill_(math.log(0.3))
    w = save_model(m, "jitter-points", tmp_path / "p.pt")
    code = main(["sample", "-g", "jitter-points", "--weights", str(w), "-n", "2", "-o", str(tmp_path / "s"), "--raw",
                 "--format", "ply", "--no-grid"])
    assert code == 0
    pc = load_pointcloud(tmp_path / "s" / "sample-000.points.ply")
    assert pc.points_padded().shape == (1, 300, 3)
    assert (tmp_path / "s" / "sample-001.ply").is_file() and not (tmp_path / "s" / "grid.png").exists()


def test_cli_errors_are_clean(plugin, tmp_path, capsys):
    assert main(["sample", "--generator", "indep-voxel", "-o", str(tmp_path / "x")]) == 1
    assert "Did you mean 'indep-voxels'" in capsys.readouterr().err
    assert main(["sample", "--generator", "mean-shape", "-o", str(tmp_path / "x")]) == 1
    assert "representation: use geomgen predict" in capsys.readouterr().err
    assert main(["sample", "--generator", "indep-voxels", "-o", str(tmp_path / "x")]) == 1
    assert "no pretrained weights for 'indep-voxels'" in capsys.readouterr().err
    w = save_model(IndependentVoxels(4), "indep-voxels", tmp_path / "m.pt")
    assert main(["sample", "--weights", str(w), "-n", "0", "-o", str(tmp_path / "x")]) == 1
    assert "-n: must be >= 1" in capsys.readouterr().err
    assert main(["sample", "--weights", str(w), "--condition", "box", "-o", str(tmp_path / "x")]) == 1
    assert "unconditional" in capsys.readouterr().err
    assert main(["sample", "-g", "jitter-points", "--weights", str(w), "-o", str(tmp_path / "x")]) == 1
    assert "'indep-voxels' model, not 'jitter-points'" in capsys.readouterr().err
    assert main(["eval", "indep-voxels", "mean-shape", "--dataset", "toy"]) == 1
    assert "separate calls" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sample", "-g", "indep-voxels"])  # -o is required
    assert "-o/--output" in capsys.readouterr().err
