"""Tests of geomgen.data.shapenet (ShapeNetCore v1/v2) on tiny trees written by
geomgen.testing.shapenet_fixtures (official layouts, ShapeNet-style OBJ files)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from geomgen.data._synsets import category_name, normalize_synset_id, read_taxonomy
from geomgen.data.pipeline import SampleConfig
from geomgen.data.shapenet import ShapeNetCore, detect_shapenet_version, read_split_csv
from geomgen.errors import DatasetError, FileFormatError, InvalidInputError
from geomgen.testing.shapenet_fixtures import parts_mesh, parts_occupancy, write_shapenet_tree

CONFIG = SampleConfig(image_size=32, num_views=2, num_points=64, num_occupancy=64)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMGEN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def open_quietly(root, split="train", **kw):
    """Build a dataset, failing on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return ShapeNetCore(root, split, config=CONFIG, progress=False, **kw)


def open_warning(root, split="train", **kw):
    """Build a dataset that must emit exactly one warning; returns (dataset or error, text)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = ShapeNetCore(root, split, config=CONFIG, progress=False, **kw)
        except DatasetError as e:
            ds = e
    assert len(caught) == 1, [str(w.message) for w in caught]
    return ds, str(caught[0].message)


def normalised(parts):
    """The fixture model's mesh, normalised as the base does (bbox centred, longest edge 1)."""
    verts, faces = parts_mesh(parts)
    lo, hi = verts.min(0), verts.max(0)
    return (verts - (lo + hi) / 2) / (hi - lo).max(), faces, ((parts - (lo + hi) / 2) / (hi - lo).max())


@pytest.mark.parametrize("version", [1, 2])
def test_tree_is_read_normalised_and_sampled(tmp_path, version):
    tree = write_shapenet_tree(tmp_path / "sn", version, {"03001627": 3, "04379243": 2}, split_csv=True,
                               offset=(3.0, -1.0, 0.5), scale=7.0)
    assert detect_shapenet_version(tree.root) == version
    ds = open_quietly(tree.root, split_file=tree.split_file)
    assert ds.version == version and ds.categories == ["chair", "table"]
    assert [r.id for r in ds.records] == sorted(m.id for m in tree.models if m.split == "train")
    for i, record in enumerate(ds.records):
        s = ds[i]
        m = tree.model(record.id)
        assert s["id"] == m.id and s["category"] == ("chair" if m.synset == "03001627" else "table")
        assert s["label"] == ds.categories.index(s["category"])
        verts, faces, parts_n = normalised(m.parts)
        # vertices in file order, normalised (coordinates were written with 6 decimals)
        np.testing.assert_allclose(s["verts"].numpy(), verts, atol=1e-5)
        tri = {tuple(sorted(f)) for f in s["faces"].tolist()}
        assert tri == {tuple(sorted(f)) for f in faces.tolist()} and s["faces"].dtype == torch.int64
        # solid voxels: every voxel overlapping the solid, plus only boundary-touching ones
        inner = torch.from_numpy(parts_occupancy(parts_n, np.full(3, -0.5), 1 / 32, 32))
        grid = s["voxels"] > 0.5
        grown = torch.nn.functional.max_pool3d(inner.float()[None, None], 3, 1, 1)[0, 0] > 0
        assert bool((inner <= grid).all()) and bool((grid <= grown).all())
        assert s["images"].shape == (2, 3, 32, 32) and s["points"].shape == (64, 3)
        assert s["occ_labels"].shape == (64,) and s["masks"].any()
        # surface samples lie on the normalised model's surface (inside its box)
        assert s["points"].abs().max() <= 0.5 + 1e-5


def test_v1_and_v2_give_the_same_samples(tmp_path):
    a = open_quietly(write_shapenet_tree(tmp_path / "v1", 1).root, "all")
    b = open_quietly(write_shapenet_tree(tmp_path / "v2", 2, offset=(1, 2, 3), scale=0.1).root, "all")
    assert [r.id for r in a.records] == [r.id for r in b.records]
    for i in range(len(a)):
        torch.testing.assert_close(a[i]["verts"], b[i]["verts"], atol=2e-5, rtol=0)
        assert torch.equal(a[i]["faces"], b[i]["faces"])


def test_forced_version_mismatch_is_reported(tmp_path):
    tree = write_shapenet_tree(tmp_path / "sn", 2, {"03001627": 2}, binvox=False)
    err, text = open_warning(tree.root, "all", version=1)
    assert isinstance(err, DatasetError) and "split 'all' is empty" in str(err)
    assert "missing model.obj (it has models/model_normalized.obj: a ShapeNetCore v2 model?)" in text
    with pytest.raises(InvalidInputError, match="version"):
        ShapeNetCore(tree.root, version=3)


def test_categories_filter(tmp_path):
    tree = write_shapenet_tree(tmp_path / "sn", 1, {"03001627": 2, "04379243": 2, "02691156": 1})
    ds = open_quietly(tree.root, "all", categories=["chair", "2691156"])
    assert ds.categories == ["airplane", "chair"] and ds.synsets == ["03001627", "02691156"]
    assert {r.id.split("/")[0] for r in ds.records} == {"03001627", "02691156"}
    assert ds.synset_names["02691156"] == "airplane"  # "airplane,aeroplane,plane" -> first lemma
    with pytest.raises(InvalidInputError, match="'lamp' is neither a synset id nor a category name"):
        ShapeNetCore(tree.root, categories="lamp")


def test_split_csv_and_hash_split(tmp_path):
    tree = write_shapenet_tree(tmp_path / "sn", 1, {"03001627": 8}, split_csv=True)
    for split in ("train", "val", "test"):
        ds = open_quietly(tree.root, split, split_file=tree.split_file)
        assert [r.id for r in ds.records] == sorted(m.id for m in tree.models if m.split == split)
    # a model the CSV does not list is skipped and reported
    rows = tree.split_file.read_text().splitlines()
    dropped = tree.models[1]
    tree.split_file.write_text("\n".join(r for r in rows if dropped.model_id not in r) + "\n")
    ds, text = open_warning(tree.root, "all", split_file=tree.split_file)
    assert dropped.id in text and "not listed in split file" in text and "1 skipped, 7 kept" in text
    assert dropped.id not in {r.id for r in ds.records}
    # no CSV: a stable hash split that partitions the models
    ids = []
    for split in ("train", "val", "test"):
        try:
            ids.append({r.id for r in open_quietly(tree.root, split, splits=(0.5, 0.25, 0.25)).records})
        except DatasetError as e:
            assert "none of the 8 shapes found falls in this split" in str(e)
    assert sum(map(len, ids)) == len(set().union(*ids)) == 8


def test_broken_models_are_skipped_with_one_warning(tmp_path):
    tree = write_shapenet_tree(tmp_path / "sn", 1, {"03001627": 6})
    m = tree.models
    m[0].files["obj"].unlink()  # missing file
    m[1].files["obj"].write_text("")  # empty file
    with open(m[2].files["obj"], "a") as f:  # a face referencing a vertex that does not exist
        f.write("f 1/1/1 2/2/1 999/3/1\n")
    m[3].files["obj"].write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")  # vertices only
    ds, text = open_warning(tree.root, "all")
    assert "4 skipped, 2 kept" in text
    for model, reason in [(m[0], "missing model.obj"), (m[1], "empty file"), (m[2], "999"), (m[3], "no faces")]:
        assert model.model_id in text and reason in text
    assert [r.id for r in ds.records] == sorted([m[4].id, m[5].id])
    assert len(ds.skipped) == 4 and ds[1]["verts"].shape == (8 * len(tree.model(ds.records[1].id).parts), 3)
    # remembered in the cache: reported again, without re-reading
    again, text2 = open_warning(tree.root, "all")
    assert "4 skipped, 2 kept" in text2 and len(again) == 2


def test_empty_and_missing_trees(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"shapenet dataset \(root '.*empty'\): split 'train' is empty: no shapes"):
        ShapeNetCore(tmp_path / "empty", config=CONFIG, progress=False)
    with pytest.raises(InvalidInputError, match="is not a folder"):
        ShapeNetCore(tmp_path / "nope")
    assert detect_shapenet_version(tmp_path / "empty") is None


def test_category_names_without_taxonomy(tmp_path):
    tree = write_shapenet_tree(tmp_path / "sn", 1, {"04379243": 1, "09999999": 1}, taxonomy=False)
    ds = open_quietly(tree.root, "all")
    assert ds.categories == ["09999999", "table"]  # built-in table, else the synset id


def test_read_split_csv(tmp_path):
    p = tmp_path / "all.csv"
    p.write_text("id,synsetId,subSynsetId,modelId,split\n1,3001627,3001627,abc,train\n2,04379243,1,def,test\n")
    assert read_split_csv(p) == {("03001627", "abc"): "train", ("04379243", "def"): "test"}
    p.write_text("id,synset,modelId,split\n")
    with pytest.raises(FileFormatError, match=r"missing column\(s\) \['synsetId'\]"):
        read_split_csv(p)
    p.write_text("id,synsetId,subSynsetId,modelId,split\n1,3001627,3001627,abc,training\n")
    with pytest.raises(FileFormatError, match="line 2: split must be one of"):
        read_split_csv(p)


def test_synset_helpers(tmp_path):
    assert normalize_synset_id(3001627) == "03001627" and normalize_synset_id(" 04379243 ") == "04379243"
    assert category_name("airplane,aeroplane,plane") == "airplane"
    p = tmp_path / "taxonomy.json"
    p.write_text('[{"synsetId": "02691156", "name": "airplane,aeroplane,plane", "children": []}]')
    assert read_taxonomy(p) == {"02691156": "airplane"}
    p.write_text('{"synsetId": 1}')
    with pytest.raises(FileFormatError, match="JSON list"):
        read_taxonomy(p)
    p.write_text('[{"name": "x"}]')
    with pytest.raises(FileFormatError, match="entry 0"):
        read_taxonomy(p)


def test_registered_as_a_dataset(tmp_path):
    import geomgen

    get_dataset = getattr(geomgen, "get_dataset", None)
    if get_dataset is None:
        pytest.skip("geomgen.get_dataset not available")
    tree = write_shapenet_tree(tmp_path / "sn", 1, {"03001627": 2})
    try:
        ds = get_dataset("shapenet", root=str(tree.root), split="all", config=CONFIG, progress=False)
    except KeyError as e:  # registration is done by geomgen.builtin
        pytest.skip(f"'shapenet' not registered yet: {e}")
    assert isinstance(ds, ShapeNetCore) and len(ds) == 2
