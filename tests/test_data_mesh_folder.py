"""The ``mesh-folder`` dataset on libcgal-demo meshes plus broken files: skip+warn, categories, rebuilds."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

import geomgen
from geomgen.data.mesh_folder import MeshFolderDataset
from geomgen.data.pipeline import SampleConfig
from geomgen.errors import DatasetError, InvalidInputError

TINY = SampleConfig(image_size=16, num_views=2, num_points=64, num_occupancy=256, voxel_resolution=8)
GOOD = {
    "closed": ["cube.off", "sphere.off", "cow.off", "anchor.off", "sphere.stl", "colored_tetra.ply"],
    "open": ["elephant-with-holes.off", "cube-ouvert.off", "cube_quad.off"],
}
BROKEN = {
    "truncated.off": None,  # written below from cow.off
    "empty.off": "",
    "points.ply": "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
                  "end_header\n0 0 0\n1 0 0\n0 1 0\n",
    "nan.off": "OFF\n3 1 0\n0 0 0\nnan 0 0\n0 1 0\n3 0 1 2\n",
    "bad_index.off": "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n",
    "degenerate.off": "OFF\n3 1 0\n0 0 0\n1 1 1\n2 2 2\n3 0 1 2\n",
    "collapsed.off": "OFF\n3 1 0\n1 1 1\n1 1 1\n1 1 1\n3 0 1 2\n",
}


class Counting(MeshFolderDataset):
    """Counts the files it reads."""

    def __init__(self, *args, **kwargs):
        self.loads: list[str] = []
        super().__init__(*args, **kwargs)

    def load_mesh(self, record):
        self.loads.append(record.id)
        return super().load_mesh(record)


@pytest.fixture
def folder(cgal_data, tmp_path):
    root = tmp_path / "meshes"
    for category, names in GOOD.items():
        (root / category).mkdir(parents=True)
        for name in names:
            os.symlink(cgal_data / "meshes" / name, root / category / name)
    broken = root / "broken"
    broken.mkdir()
    for name, text in BROKEN.items():
        data = (cgal_data / "meshes" / "cow.off").read_bytes()[:400] if text is None else text.encode()
        (broken / name).write_bytes(data)
    (broken / "README.txt").write_text("not a mesh")  # other extensions are ignored
    (root / ".hidden").mkdir()
    os.symlink(cgal_data / "meshes" / "cube.off", root / ".hidden" / "cube.off")  # hidden folders too
    os.symlink(tmp_path / "nowhere.off", broken / "dangling.off")
    return root


def build(root, **kw):
    kw.setdefault("config", TINY)
    kw.setdefault("progress", False)
    kw.setdefault("cache_dir", root.parent / "cache")
    return Counting(root, **kw)


def test_broken_files_are_skipped_with_one_warning(folder):
    with pytest.warns(UserWarning) as rec:
        ds = build(folder)
    msgs = [str(w.message) for w in rec if "skipped" in str(w.message)]
    assert len(msgs) == 1
    msg = msgs[0]
    n_broken = len(BROKEN) + 1  # + the dangling link
    assert f"skipped {n_broken} item(s)" in msg and f"{n_broken} skipped, 9 kept" in msg
    for name in [*BROKEN, "dangling.off"]:
        assert name in msg, name
    reasons = dict((os.path.basename(item), why) for item, why in ds.skipped)
    assert reasons["empty.off"] == "empty file"
    assert "truncated" in reasons["truncated.off"] and "no faces" in reasons["points.ply"]
    assert "NaN" in reasons["nan.off"] or "nan" in reasons["nan.off"].lower()
    assert "zero area" in reasons["degenerate.off"] and "zero size" in reasons["collapsed.off"]
    assert "cannot stat" in reasons["dangling.off"]
    assert sorted(r.id for r in ds.records) == sorted(f"{c}/{n}" for c, names in GOOD.items() for n in names)
    assert ds.categories == ["broken", "closed", "open"]
    assert ds.info()["categories"] == {"broken": 0, "closed": 6, "open": 3}


def test_samples_are_normalised_and_sampled(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = build(folder)
    for i in range(len(ds)):
        s = ds[i]
        lo, hi = s["verts"].min(0).values, s["verts"].max(0).values
        assert float((hi - lo).max()) == pytest.approx(1.0, abs=1e-5), s["id"]
        assert torch.allclose((lo + hi) / 2, torch.zeros(3), atol=1e-5), s["id"]
        assert s["label"] == ds.categories.index(s["id"].split("/")[0])
        assert bool(s["masks"].any()) and torch.equal(s["masks"], s["depths"] > 0)
    cube = ds[[r.id for r in ds.records].index("closed/cube.off")]
    assert bool((cube["voxels"] == 1).all())  # CGAL's cube [-1, 1]^3 fills the unit cube
    assert float(cube["occ_labels"][:128].mean()) == pytest.approx((1 / 1.1) ** 3, abs=0.12)


def test_reopen_reads_nothing_and_reports_the_same_failures(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = build(folder)
    assert len(first.loads) == 9 + len(BROKEN) - 1  # every file but the empty one (and the dangling link)
    with pytest.warns(UserWarning, match="skipped 8 item"):
        again = build(folder)
    assert again.loads == [] and sorted(again.skipped) == sorted(first.skipped)


def test_edited_files_are_rebuilt_or_retried(folder, cgal_data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first = build(folder)
        before = first.load_arrays([r.id for r in first.records].index("closed/cow.off"))
    fixed = folder / "broken" / "truncated.off"
    fixed.write_bytes((cgal_data / "meshes" / "tetrahedron.off").read_bytes())
    with pytest.warns(UserWarning, match="skipped 7 item"):
        ds = build(folder)
    assert ds.loads == ["broken/truncated.off"] and "broken/truncated.off" in [r.id for r in ds.records]
    # replacing a good file rebuilds that file only
    link = folder / "closed" / "cow.off"
    link.unlink()
    link.write_bytes((cgal_data / "meshes" / "cow.off").read_bytes() + b"\n")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = build(folder)
    assert ds.loads == ["closed/cow.off"]
    after = ds.load_arrays([r.id for r in ds.records].index("closed/cow.off"))
    assert np.array_equal(before["verts"], after["verts"])  # same mesh, same sample


def test_splits_partition_the_folder(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        everything = {r.id for r in build(folder).records}
        parts = {}
        for split in ("train", "val", "test"):
            try:
                parts[split] = {r.id for r in build(folder, split=split, splits=(0.5, 0.25, 0.25)).records}
            except DatasetError:
                parts[split] = set()
    assert set().union(*parts.values()) == everything
    assert sum(len(p) for p in parts.values()) == len(everything)


def test_options(folder, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stl = build(folder, extensions=["STL"])
        assert [r.id for r in stl.records] == ["closed/sphere.stl"]
        flat = build(folder, category_from=None)
        assert flat.categories == ["mesh"] and len(flat) == 9
        with pytest.raises(DatasetError, match="no shapes were found"):
            build(folder, recursive=False)
    top = tmp_path / "top"
    top.mkdir()
    (top / "tet.off").write_bytes((folder / "closed" / "cube.off").read_bytes())
    ds = build(top)
    assert ds.categories == ["top"] and ds[0]["id"] == "tet.off"


def test_empty_and_bad_roots(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match=r"mesh-folder dataset \(root '.*empty'\): split 'all' is empty: no shapes"):
        build(tmp_path / "empty")
    with pytest.raises(InvalidInputError, match="not a folder"):
        build(tmp_path / "missing")
    with pytest.raises(InvalidInputError, match="extensions"):
        build(tmp_path / "empty", extensions=[".xyz"])
    with pytest.raises(InvalidInputError, match="category_from"):
        build(tmp_path / "empty", category_from="grandparent")
    only_bad = tmp_path / "bad"
    only_bad.mkdir()
    (only_bad / "x.off").write_text("OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n")
    with pytest.raises(DatasetError, match="skipped"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            build(only_bad)


def test_through_the_registry(folder):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = geomgen.get_dataset("mesh-folder", root=str(folder), config=TINY, progress=False,
                                 cache_dir=str(folder.parent / "cache"), view=1)
    assert isinstance(ds, MeshFolderDataset) and ds.split == "all" and ds[0]["images"].shape == (1, 3, 16, 16)
