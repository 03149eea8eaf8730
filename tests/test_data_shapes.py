"""The ``shapes`` dataset: records, splits, determinism, labels, views, registry, errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import geomgen
from geomgen.data.pipeline import SampleConfig
from geomgen.data.procedural import CATEGORIES, shape_sdf
from geomgen.data.shapes import ShapesDataset
from geomgen.errors import DatasetError, InvalidInputError

TINY = SampleConfig(image_size=24, num_views=3, num_points=128, num_occupancy=1024, voxel_resolution=16)
CATS = ["mug", "box", "chair"]
COUNTS = {"train": 2, "val": 1, "test": 1}


def shapes(root, split="train", **kw):
    kw.setdefault("categories", CATS)
    kw.setdefault("per_category", COUNTS)
    kw.setdefault("config", TINY)
    kw.setdefault("resolution", 24)
    kw.setdefault("progress", False)
    return ShapesDataset(root, split, **kw)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("shapes-cache")


@pytest.fixture(scope="module")
def splits(root):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean build warns about nothing
        return {s: shapes(root, s) for s in ("train", "val", "test")}


def test_records_categories_and_labels(splits):
    train = splits["train"]
    assert len(train) == 6 and len(splits["val"]) == 3 and len(splits["test"]) == 3
    assert train.categories == ["box", "chair", "mug"]  # CATEGORIES order, not the given order
    assert [r.id for r in train.records] == ["box/train/0000", "box/train/0001", "chair/train/0000",
                                             "chair/train/0001", "mug/train/0000", "mug/train/0001"]
    for i in range(len(train)):
        s = train[i]
        assert s["label"] == train.categories.index(s["category"]) and s["id"].startswith(s["category"] + "/")
    assert splits["val"].categories == train.categories


def test_sample_dict_types_and_normalisation(splits):
    s = splits["val"][1]
    assert s["images"].dtype == torch.float32 and s["images"].shape == (3, 3, 24, 24)
    assert 0.0 <= float(s["images"].min()) and float(s["images"].max()) <= 1.0
    assert s["depths"].shape == s["masks"].shape == (3, 24, 24) and s["masks"].dtype == torch.bool
    assert torch.equal(s["masks"], s["depths"] > 0)
    assert s["K"].shape == (3, 3, 3) and s["world_from_camera"].shape == (3, 4, 4)
    assert s["voxels"].shape == (16, 16, 16) and s["voxels"].dtype == torch.float32
    assert set(s["voxels"].unique().tolist()) <= {0.0, 1.0} and float(s["voxels"].sum()) > 0
    assert s["faces"].dtype == torch.int64 and s["verts"].dtype == torch.float32
    lo, hi = s["verts"].min(0).values, s["verts"].max(0).values
    assert float((hi - lo).max()) == pytest.approx(1.0, abs=1e-5)
    assert torch.allclose((lo + hi) / 2, torch.zeros(3), atol=1e-5)
    assert s["points"].shape == s["normals"].shape == (128, 3)
    assert torch.allclose(s["normals"].norm(dim=1), torch.ones(128), atol=1e-4)
    assert s["occ_points"].shape == (1024, 3) and s["occ_labels"].shape == (1024,)
    assert s["occ_labels"].dtype == torch.float32 and set(s["occ_labels"].unique().tolist()) == {0.0, 1.0}


def test_splits_are_disjoint_and_differ_in_geometry(splits):
    ids = {s: {r.id for r in ds.records} for s, ds in splits.items()}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])
    seeds = [r.source[2] for ds in splits.values() for r in ds.records]
    assert len(set(seeds)) == len(seeds)
    meshes = [ds[i]["verts"] for ds in splits.values() for i in range(len(ds))]
    for a in range(len(meshes)):
        for b in range(a + 1, len(meshes)):
            assert meshes[a].shape != meshes[b].shape or not torch.equal(meshes[a], meshes[b])


def test_occupancy_labels_agree_with_the_procedural_sdf(splits):
    ds = splits["train"]
    for i in range(0, len(ds), 2):
        s = ds[i]
        category, _, shape_seed, resolution = ds.records[i].source
        d = shape_sdf(category, shape_seed, resolution=resolution)(s["occ_points"].double())
        far = d.abs() > 0.03  # beyond marching cubes' chord error at resolution 24
        assert int(far.sum()) > 400
        assert torch.equal(s["occ_labels"][far].bool(), (d < 0)[far]), s["id"]


def test_deterministic_across_cache_folders_and_shared_by_selections(splits, root, tmp_path):
    other = shapes(tmp_path, "val")
    for i in range(len(other)):
        a, b = other.load_arrays(i), splits["val"].load_arrays(i)
        assert all(np.array_equal(a[k], b[k]) for k in a)
    # selecting fewer categories or counts reuses the same folder and the same samples
    sub = shapes(root, "train", categories="mug", per_category=1)
    assert sub.cache.path == splits["train"].cache.path and sub.categories == ["mug"] and sub[0]["label"] == 0
    ref = splits["train"].load_arrays(4)  # mug/train/0000
    got = sub.load_arrays(0)
    assert all(np.array_equal(ref[k], got[k]) for k in ref)


def test_growing_per_category_keeps_old_samples(tmp_path):
    a = shapes(tmp_path, "test", categories=["torus"], per_category={"test": 1})
    first = a.load_arrays(0)
    b = shapes(tmp_path, "test", categories=["torus"], per_category={"test": 2})
    assert len(b) == 2 and all(np.array_equal(first[k], b.load_arrays(0)[k]) for k in first)
    manifest = json.loads((b.cache.path / "manifest.json").read_text())
    assert sorted(manifest["entries"]) == ["torus/test/0000", "torus/test/0001"]
    c = shapes(tmp_path, "test", categories=["torus"], per_category={"test": 1}, seed=1)
    assert c.cache.path != a.cache.path and not np.array_equal(c.load_arrays(0)["verts"][:5], first["verts"][:5])


def test_view_selection(root, splits):
    full = splits["val"][0]
    one = shapes(root, "val", view=2)[0]
    assert one["images"].shape[0] == 1 and torch.equal(one["images"][0], full["images"][2])
    assert torch.equal(one["world_from_camera"][0], full["world_from_camera"][2])
    assert one["view_indices"].tolist() == [2]
    rnd = shapes(root, "val", view="random")
    torch.manual_seed(0)
    drawn = []
    for _ in range(12):
        s = rnd[0]
        v = int(s["view_indices"][0])
        assert torch.equal(s["depths"][0], full["depths"][v]) and torch.equal(s["K"][0], full["K"][v])
        drawn.append(v)
    assert len(set(drawn)) > 1
    with pytest.raises(InvalidInputError, match="view"):
        shapes(root, "val", view=3)
    with pytest.raises(InvalidInputError, match="view"):
        shapes(root, "val", view="first")


def test_split_all_is_the_union(root, splits):
    everything = shapes(root, "all")
    assert {r.id for r in everything.records} == {r.id for ds in splits.values() for r in ds.records}


def test_registered_and_built_through_the_registry(root):
    assert "shapes" in geomgen.list_datasets()
    ds = geomgen.get_dataset("shapes", root=str(root), split="test", categories=CATS, per_category=COUNTS,
                             config=TINY, resolution=24, progress=False)
    assert isinstance(ds, ShapesDataset) and len(ds) == 3
    assert "samples" in repr(ds) and ds.info()["categories"] == {"box": 1, "chair": 1, "mug": 1}


def test_empty_split_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match=r"shapes dataset \(generated\): split 'val' is empty"):
        shapes(tmp_path, "val", per_category={"val": 0})


@pytest.mark.parametrize("kwargs, match", [
    ({"categories": ["chiar"]}, "did you mean 'chair'"),
    ({"categories": []}, "empty"),
    ({"categories": 3}, "categories"),
    ({"per_category": {"training": 3}}, "training"),
    ({"per_category": -1}, "per_category"),
    ({"seed": -1}, "seed"),
    ({"resolution": 8}, "resolution"),
    ({"split": "dev"}, "split"),
    ({"config": {"image_size": 0}}, "image_size"),
    ({"cache_dir": "/tmp/x"}, "not both"),
])
def test_bad_arguments(tmp_path, kwargs, match):
    split = kwargs.pop("split", "train")
    with pytest.raises(InvalidInputError, match=match):
        shapes(tmp_path, split, **kwargs)


def test_all_categories_build(tmp_path):
    ds = shapes(tmp_path, "val", categories=None, per_category={"val": 1},
                config=SampleConfig(image_size=16, num_views=1, num_points=16, num_occupancy=16, voxel_resolution=8))
    assert ds.categories == list(CATEGORIES) and len(ds) == len(CATEGORIES) and ds.skipped == []
