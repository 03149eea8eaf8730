"""geomgen.models.baseline: the mean-shape baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _models_dummy import tiny_dataset, tiny_root

import geomgen
from geomgen.data import collate_samples
from geomgen.errors import GeomgenError
from geomgen.models import MeanShape, fit_mean_shape, load_model, save_model, single_view
from geomgen.models.baseline import THRESHOLDS
from geomgen.testing.models import check_representation


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tiny_root(tmp_path_factory), view=0)


@pytest.fixture(scope="module")
def fitted(data):
    return MeanShape().fit(data).eval()


def test_fit_averages_the_grids_and_picks_the_best_threshold(data, fitted):
    grids = np.stack([data.load_arrays(i)["voxels"] >= 0.5 for i in range(len(data))])
    mean = grids.mean(0)
    assert np.allclose(fitted.mean_occupancy.numpy(), mean, atol=1e-6)

    def miou(t):
        pred = mean >= t
        inter = (grids & pred).reshape(len(grids), -1).sum(1)
        union = (grids | pred).reshape(len(grids), -1).sum(1)
        return float(np.mean(inter / np.maximum(union, 1)))

    best = max(THRESHOLDS, key=miou)
    assert float(fitted.threshold) == pytest.approx(best)
    assert fitted.train_iou == pytest.approx(miou(best), abs=1e-6)
    assert fitted.fitted_on == len(data)


def test_mesh_is_closed_and_inside_the_unit_cube(fitted):
    v, f = fitted.mesh()
    assert f.shape[0] > 100
    h = 1.0 / fitted.resolution
    assert float(v.abs().max()) <= 0.5 + h
    m = geomgen.structures.Meshes([v], [f])
    assert float(m.volume()[0]) > 0.05  # closed, outward faces: positive volume
    edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    fwd = {tuple(e) for e in edges.tolist()}
    assert all((b, a) in fwd for a, b in fwd)  # every directed edge has its opposite: closed surface


def test_predictions_repeat_the_mean_shape(data, fitted):
    batch = single_view(collate_samples([data[0], data[4]]))
    pred = fitted.predict(batch["images"])
    assert isinstance(pred, geomgen.structures.Meshes) and len(pred) == 2
    assert torch.equal(pred.verts_list()[0], pred.verts_list()[1])
    assert fitted(batch["images"]).shape == (2, 32, 32, 32)
    pts = fitted.predict_points(batch["images"], num_points=100)
    assert pts.points_padded().shape == (2, 100, 3)
    check_representation(fitted, batch, check_train_mode=False)
    with pytest.raises(GeomgenError, match="nothing to train"):
        fitted.compute_loss(batch)


def test_registered_and_saved_like_any_representation(tmp_path, fitted):
    spec_names = geomgen.list_models(kind="representation")
    assert "mean-shape" in spec_names
    assert isinstance(geomgen.get_model("mean-shape"), MeanShape)
    path = save_model(fitted, "mean-shape", tmp_path / "mean.pt")
    back = load_model(path)
    assert isinstance(back, MeanShape) and float(back.threshold) == float(fitted.threshold)
    assert torch.equal(back.mean_occupancy, fitted.mean_occupancy)
    small = MeanShape(resolution=8)
    small.load_state_dict(fitted.state_dict())  # resolution follows the weights
    assert small.resolution == 32


def test_unfitted_model_predicts_empty_meshes_and_fit_accepts_plain_datasets():
    m = MeanShape(resolution=8)
    assert m.predict_meshes(torch.ones(1, 3, 64, 64)).faces_list()[0].shape[0] == 0
    grids = [torch.zeros(8, 8, 8) for _ in range(3)]
    for g in grids:
        g[2:6, 2:6, 2:6] = 1
    grids[0][1, 1, 1] = 1
    m.fit([{"voxels": g} for g in grids])
    v, _ = m.mesh()
    assert v.shape[0] > 0 and float(v.abs().max()) < 0.5


def test_fit_mean_shape_helper(tmp_path_factory):
    from _models_dummy import TINY

    cfg = dict(TINY, root=str(tiny_root(tmp_path_factory)))
    m = fit_mean_shape("shapes", cfg)
    assert isinstance(m, MeanShape) and not m.training and m.fitted_on == 6
