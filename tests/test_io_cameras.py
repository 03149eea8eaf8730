"""geomgen.io.save_cameras / load_cameras: the JSON cameras file of geomgen render / fit."""

from __future__ import annotations

import json

import pytest
import torch

from geomgen.errors import FileFormatError, InvalidInputError, MeshFileNotFoundError
from geomgen.io import CAMERAS_FORMAT, load_cameras, save_cameras
from geomgen.render import PerspectiveCameras, orbit_poses


def _cams(n: int = 4) -> PerspectiveCameras:
    az = torch.linspace(0, 300, n, dtype=torch.float64)
    poses = orbit_poses(az, torch.full_like(az, 25.0), torch.full_like(az, 2.5))
    return PerspectiveCameras.from_fov(40.0, (24, 32), poses)


def test_round_trip_is_exact(tmp_path):
    cams = _cams()
    path = tmp_path / "cameras.json"
    save_cameras(path, cams, names=["a", "b", "c", "d"], masks=["a.png", None, "c.png", "d.png"])
    f = load_cameras(path)
    assert len(f) == 4 and f.image_size == (24, 32)
    assert torch.equal(f.K, cams.K.double()) and torch.equal(f.world_from_camera, cams.world_from_camera.double())
    assert f.names == ["a", "b", "c", "d"]
    assert f.masks == [str(tmp_path / "a.png"), None, str(tmp_path / "c.png"), str(tmp_path / "d.png")]
    back = PerspectiveCameras(f.K, f.world_from_camera, f.image_size)
    assert torch.equal(back.project(torch.zeros(4, 1, 3, dtype=torch.float64)),
                       cams.project(torch.zeros(4, 1, 3, dtype=torch.float64)))
    doc = json.loads(path.read_text())
    assert doc["format"] == CAMERAS_FORMAT and doc["version"] == 1 and doc["image_size"] == [24, 32]
    assert "mask" not in doc["views"][1]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_pair_and_default_names(tmp_path):
    cams = _cams(2)
    save_cameras(tmp_path / "c.json", (cams.K, cams.world_from_camera), (24, 32))
    f = load_cameras(tmp_path / "c.json")
    assert f.names == ["view_000", "view_001"] and f.masks == [None, None]


def test_save_rejects_bad_cameras(tmp_path):
    cams = _cams(2)
    pose = cams.world_from_camera.clone()
    pose[0, :3, :3] *= 2.0
    with pytest.raises(InvalidInputError, match="rigid"):
        save_cameras(tmp_path / "c.json", (cams.K, pose), (24, 32))
    with pytest.raises(InvalidInputError, match="image_size"):
        save_cameras(tmp_path / "c.json", (cams.K, cams.world_from_camera))
    with pytest.raises(InvalidInputError, match="names"):
        save_cameras(tmp_path / "c.json", cams, names=["one"])
    with pytest.raises(FileFormatError, match="json"):
        save_cameras(tmp_path / "c.txt", cams)
    assert not list(tmp_path.iterdir())


def _doc(tmp_path, **changes):
    cams = _cams(2)
    path = tmp_path / "cams.json"
    save_cameras(path, cams)
    doc = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            del doc[key]
        else:
            doc[key] = value
    path.write_text(json.dumps(doc))
    return path, doc


@pytest.mark.parametrize("changes, match", [
    ({"version": 2}, "unsupported version 2"),
    ({"format": "other"}, "'format' is 'other'"),
    ({"views": None}, "missing key 'views'"),
    ({"image_size": None}, "missing key 'image_size'"),
    ({"image_size": [0, 4]}, "image_size"),
    ({"views": []}, "non-empty"),
])
def test_load_rejects_bad_documents(tmp_path, changes, match):
    path, _ = _doc(tmp_path, **changes)
    with pytest.raises(FileFormatError, match=match) as info:
        load_cameras(path)
    assert str(path) in str(info.value)


def test_load_rejects_bad_views(tmp_path):
    path, doc = _doc(tmp_path)
    for mutate, match in [
        (lambda v: v[1].pop("K"), "view 1 has no 'K'"),
        (lambda v: v[0].__setitem__("K", [[1, 0], [0, 1]]), "view 0: 'K' must be a 3 x 3"),
        (lambda v: v[1]["K"][0].__setitem__(0, -5.0), "fx"),
        (lambda v: v[1]["world_from_camera"][0].__setitem__(0, 3.0), "rigid"),
        (lambda v: v[0].__setitem__("mask", 3), "'mask' must be a file name"),
    ]:
        views = json.loads(json.dumps(doc["views"]))
        mutate(views)
        path.write_text(json.dumps({**doc, "views": views}))
        with pytest.raises(FileFormatError, match=match) as info:
            load_cameras(path)
        assert str(path) in str(info.value)


def test_load_missing_and_not_json(tmp_path):
    with pytest.raises(MeshFileNotFoundError):
        load_cameras(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(FileFormatError, match="not a valid JSON"):
        load_cameras(tmp_path / "bad.json")
