"""geomgen.models.evaluate: the Mesh R-CNN protocol in the object frame, reports and tables."""

from __future__ import annotations

import json
import math

import pytest
import torch
from _models_dummy import CameraSphere, DummySphere, Oracle, PointsOnly, tiny_dataset, tiny_root

from geomgen.data import collate_samples
from geomgen.errors import InvalidInputError
from geomgen.models import EvalReport, evaluate, format_table, single_view

N_SAMPLES = 2000


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tiny_root(tmp_path_factory), view=0)


def _oracle(data, frame):
    o = Oracle(frame)
    o.show(single_view(collate_samples([data[i] for i in range(len(data))])))
    return o


@pytest.fixture(scope="module")
def oracle_report(data):
    return evaluate(_oracle(data, "object"), data, num_samples=N_SAMPLES, progress=False, batch_size=4)


def test_oracle_scores_near_perfect(oracle_report, data):
    r = oracle_report
    assert len(r) == len(data) and r.categories == [data.records[i].category for i in range(len(data))]
    m = r.instance_mean()
    assert m["F1@0.3"] > 70 and m["F1@0.5"] > 95 and m["F1@0.1"] < m["F1@0.3"]  # 2000 samples: sparse
    assert m["Chamfer-L2"] < 0.2
    assert m["AbsNormalConsistency"] > 0.95
    assert m["IoU"] > 0.85  # solid voxelization of the GT mesh vs the stored GT grid


def test_camera_frame_predictions_are_mapped_to_the_object_frame(oracle_report, data):
    cam = evaluate(_oracle(data, "camera"), data, num_samples=N_SAMPLES, progress=False, batch_size=4)
    for k in oracle_report.metrics:
        assert cam.values[k] == pytest.approx(oracle_report.values[k], rel=1e-3, abs=1e-3), k


def test_sphere_is_worse_than_the_oracle_and_frames_agree(oracle_report, data):
    obj = evaluate(DummySphere(), data, num_samples=N_SAMPLES, progress=False)
    cam = evaluate(CameraSphere(), data, num_samples=N_SAMPLES, progress=False)
    # the camera sphere sits at the object's centre once mapped back: same shape, same scores (rotated samples)
    assert obj.mean()["F1@0.3"] < oracle_report.mean()["F1@0.3"] - 20
    assert cam.mean()["F1@0.3"] == pytest.approx(obj.mean()["F1@0.3"], abs=3.0)
    assert cam.mean()["IoU"] == pytest.approx(obj.mean()["IoU"], abs=0.02)


def test_deterministic_and_independent_of_batch_size(data):
    a = evaluate(DummySphere(), data, num_samples=500, progress=False, batch_size=4, seed=3)
    b = evaluate(DummySphere(), data, num_samples=500, progress=False, batch_size=2, seed=3)
    c = evaluate(DummySphere(), data, num_samples=500, progress=False, batch_size=4, seed=4)
    assert a.values == b.values
    assert a.values["Chamfer-L2"] != c.values["Chamfer-L2"]


def test_model_without_normals_or_volume(data):
    model = PointsOnly()
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    r = evaluate(model, data, num_samples=500, progress=False)
    assert torch.equal(torch.rand(3), before)  # the caller's RNG state is untouched
    assert all(math.isnan(v) for v in r.values["AbsNormalConsistency"])
    assert "IoU" not in r.values
    assert r.mean()["AbsNormalConsistency"] is None and r.mean()["F1@0.3"] > 0
    d = json.loads(json.dumps(r.to_dict(), allow_nan=False))  # strict JSON
    assert d["mean"]["AbsNormalConsistency"] is None
    table = format_table({"points": r})
    assert "—" in table


def test_empty_prediction_scores_zero_iou(data):
    r = evaluate(Oracle("object"), data, num_samples=300, progress=False)  # has seen nothing: empty meshes
    assert r.values["IoU"] == [0.0] * len(data)
    assert all(math.isfinite(v) for v in r.values["Chamfer-L2"])
    assert r.mean()["F1@0.1"] < 5


def test_view_selection(data, tmp_path_factory):
    every = tiny_dataset(tiny_root(tmp_path_factory), view="all")
    a = evaluate(DummySphere(), every, view=0, num_samples=300, progress=False)
    b = evaluate(DummySphere(), data, view=0, num_samples=300, progress=False)
    assert a.values == b.values
    c = evaluate(DummySphere(), data, view=2, num_samples=300, progress=False)  # another view of a view-0 dataset
    assert c.config["view"] == 2 and data.view == 0


def test_report_means_dict_and_round_trip(oracle_report):
    r = oracle_report
    per = r.category_means()
    assert list(per) == ["box", "sphere", "mug"]
    mean = r.mean()
    for k in r.metrics:
        assert mean[k] == pytest.approx(sum(p[k] for p in per.values()) / 3)
    d = r.to_dict()
    assert d["per_category"]["box"]["count"] == 2 and d["num_instances"] == 6
    assert "instances" not in r.to_dict(instances=False)
    back = EvalReport.from_dict(json.loads(json.dumps(d)))
    assert back.values == r.values and back.categories == r.categories and back.name == r.name
    assert "6 instances" in repr(r)


def test_format_table(oracle_report, data):
    other = evaluate(DummySphere(), data, num_samples=300, progress=False)
    text = format_table({"oracle": oracle_report, "sphere": other})
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["Category", "Model", "Chamfer-L2"]
    for col in ("AbsNormal ↑", "F1@0.1 ↑", "F1@0.3 ↑", "F1@0.5 ↑", "IoU ↑"):
        assert col in lines[0]
    assert sum(line.startswith("box") for line in lines) == 1 and "mean" in text and "instances" in text
    f1 = f"{oracle_report.mean()['F1@0.3']:.1f}"
    assert any(line.startswith("mean") and "oracle" in line and f1 in line for line in lines)
    summary = format_table({"oracle": oracle_report, "sphere": other}, per_category=False)
    assert "box" not in summary and "mean" in summary
    md = format_table({"oracle": oracle_report, "sphere": other}, markdown=True)
    assert md.splitlines()[0].startswith("| Category | Model |") and "**" in md
    assert md.count("\n") == 1 + 2 * 5  # header rule + 2 models x (3 categories + 2 means)
    with pytest.raises(InvalidInputError):
        format_table({})


def test_bad_arguments(data):
    with pytest.raises(InvalidInputError, match="model"):
        evaluate(torch.nn.Linear(2, 2), data)
    with pytest.raises(InvalidInputError, match="num_samples"):
        evaluate(DummySphere(), data, num_samples=0)
    with pytest.raises(InvalidInputError, match="empty"):
        evaluate(DummySphere(), [])
    with pytest.raises(InvalidInputError, match="view"):
        evaluate(DummySphere(), data, view=6)
