"""geomgen.io.load_pointcloud / save_pointcloud."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from geomgen.errors import FileFormatError, InvalidInputError, MeshFileNotFoundError
from geomgen.io import load_pointcloud, save_pointcloud
from geomgen.structures import PointClouds

from _helpers import COLOR_ATOL, raises_naming, write


def cloud(
    features: int | None = 3, normals: bool = True, dtype=torch.float32, n: int = 50
) -> PointClouds:
    g = torch.Generator().manual_seed(3)
    pts = torch.randn(n, 3, generator=g, dtype=torch.float64).to(dtype)
    nrm = torch.nn.functional.normalize(
        torch.randn(n, 3, generator=g, dtype=torch.float64), dim=1
    ).to(dtype)
    feats = (
        None
        if features is None
        else torch.rand(n, features, generator=g, dtype=torch.float64).to(dtype)
    )
    return PointClouds(
        [pts], normals=[nrm] if normals else None, features=None if feats is None else [feats]
    )


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------


def test_ply_round_trip_colors(tmp_path):
    pc = cloud(features=3)
    save_pointcloud(tmp_path / "p.ply", pc)
    out = load_pointcloud(tmp_path / "p.ply")
    torch.testing.assert_close(out.points_list()[0], pc.points_list()[0])  # float32 file
    torch.testing.assert_close(out.normals_list()[0], pc.normals_list()[0])
    torch.testing.assert_close(
        out.features_list()[0], pc.features_list()[0], atol=COLOR_ATOL, rtol=0
    )


def test_ply_round_trip_rgba_and_generic_features(tmp_path):
    rgba = cloud(features=4)
    save_pointcloud(tmp_path / "rgba.ply", rgba)
    out = load_pointcloud(tmp_path / "rgba.ply")
    assert out.features_list()[0].shape == (50, 4)
    torch.testing.assert_close(
        out.features_list()[0], rgba.features_list()[0], atol=COLOR_ATOL, rtol=0
    )

    generic = PointClouds(rgba.points_list(), features=[torch.randn(50, 5)])
    save_pointcloud(tmp_path / "f.ply", generic)
    out = load_pointcloud(tmp_path / "f.ply")
    torch.testing.assert_close(out.features_list()[0], generic.features_list()[0])  # float32 exact
    assert out.normals_list() is None

    # colour-like features kept exactly when asked not to quantise them
    save_pointcloud(tmp_path / "exact.ply", rgba, features_as_colors=False)
    torch.testing.assert_close(
        load_pointcloud(tmp_path / "exact.ply").features_list()[0], rgba.features_list()[0]
    )
    with pytest.raises(InvalidInputError, match="colours"):
        save_pointcloud(tmp_path / "bad.ply", generic, features_as_colors=True)


@pytest.mark.parametrize("ext", ["xyz", "pwn"])
def test_text_round_trip(tmp_path, ext):
    pc = cloud(features=None, dtype=torch.float64)
    save_pointcloud(tmp_path / f"p.{ext}", pc)
    out = load_pointcloud(tmp_path / f"p.{ext}", dtype=torch.float64)
    assert torch.equal(out.points_list()[0], pc.points_list()[0])  # 17 digits: exact
    assert torch.equal(out.normals_list()[0], pc.normals_list()[0])


def test_xyz_points_only_and_feature_warning(tmp_path):
    pts = torch.rand(10, 3)
    save_pointcloud(tmp_path / "p.xyz", pts)  # a bare (P, 3) tensor is accepted
    out = load_pointcloud(tmp_path / "p.xyz")
    assert torch.equal(out.points_list()[0], pts)  # float32 written with 9 digits: exact
    assert out.normals_list() is None and out.features_list() is None
    with pytest.warns(UserWarning, match="features"):
        save_pointcloud(tmp_path / "q.xyz", cloud(features=3))
    with pytest.raises(InvalidInputError, match="normals"):
        save_pointcloud(tmp_path / "p.pwn", pts)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_npz_round_trip_is_exact(tmp_path, dtype):
    pc = cloud(features=7, dtype=dtype)
    save_pointcloud(tmp_path / "p.npz", pc)
    with np.load(tmp_path / "p.npz") as z:
        assert sorted(z.files) == ["features", "normals", "points"]
        assert z["points"].dtype == (np.float32 if dtype == torch.float32 else np.float64)
    out = load_pointcloud(tmp_path / "p.npz", dtype=dtype)
    for a, b in [
        (out.points_list(), pc.points_list()),
        (out.normals_list(), pc.normals_list()),
        (out.features_list(), pc.features_list()),
    ]:
        assert torch.equal(a[0], b[0])


def test_npz_colors_key_and_index(tmp_path):
    buf = io.BytesIO()
    np.savez(buf, points=np.zeros((4, 3)), colors=np.full((4, 3), 0.5))
    out = load_pointcloud(write(tmp_path / "c.npz", buf.getvalue()))
    assert out.features_list()[0].shape == (4, 3)
    batch = PointClouds([torch.zeros(2, 3), torch.ones(5, 3)])
    save_pointcloud(tmp_path / "b.npz", batch, index=-1)
    assert load_pointcloud(tmp_path / "b.npz").points_list()[0].shape == (5, 3)
    with pytest.raises(InvalidInputError, match="index"):
        save_pointcloud(tmp_path / "b.npz", batch, index=5)


# ---------------------------------------------------------------------------
# reading other layouts
# ---------------------------------------------------------------------------


def test_xyz_comments_and_blank_lines(tmp_path):
    text = "# header comment\n0 0 0 0 0 1\n\n1 2 3 0 1 0  # trailing\n"
    out = load_pointcloud(write(tmp_path / "c.xyz", text))
    torch.testing.assert_close(out.points_list()[0], torch.tensor([[0.0, 0, 0], [1, 2, 3]]))
    torch.testing.assert_close(out.normals_list()[0], torch.tensor([[0.0, 0, 1], [0, 1, 0]]))


def test_ply_with_faces_gives_vertices(tmp_path):
    text = (
        "ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\nproperty int label\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
        "0 0 0 255 0 0 1\n1 0 0 0 255 0 2\n0 1 0 0 0 255 3\n5 5 5 255 255 255 4\n3 0 1 2\n"
    )
    out = load_pointcloud(write(tmp_path / "m.ply", text))
    assert out.points_list()[0].shape == (4, 3)  # the unreferenced vertex too
    torch.testing.assert_close(out.features_list()[0][:3], torch.eye(3))


def test_mesh_file_vertices(tmp_path):
    text = "OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n"  # a point set stored as OFF
    out = load_pointcloud(write(tmp_path / "p.off", text))
    assert out.points_list()[0].shape == (3, 3)
    obj = "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n"
    assert load_pointcloud(write(tmp_path / "m.obj", obj)).points_list()[0].shape == (3, 3)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------


def test_missing_directory_empty_unknown(tmp_path):
    raises_naming(
        MeshFileNotFoundError, tmp_path / "no.ply", lambda: load_pointcloud(tmp_path / "no.ply")
    )
    (tmp_path / "d.xyz").mkdir()
    raises_naming(
        MeshFileNotFoundError, tmp_path / "d.xyz", lambda: load_pointcloud(tmp_path / "d.xyz")
    )
    for ext in ("ply", "xyz", "pwn", "npz"):
        path = write(tmp_path / f"e.{ext}", b"")
        raises_naming(FileFormatError, path, lambda p=path: load_pointcloud(p), "empty")
    path = write(tmp_path / "p.las", "x")
    raises_naming(FileFormatError, path, lambda: load_pointcloud(path), "supported formats")
    with pytest.raises(FileFormatError, match="supported"):
        save_pointcloud(tmp_path / "p.las", torch.zeros(1, 3))
    with pytest.raises(MeshFileNotFoundError):
        save_pointcloud(tmp_path / "nodir" / "p.ply", torch.zeros(1, 3))
    with pytest.raises(InvalidInputError, match="PointClouds"):
        save_pointcloud(tmp_path / "p.ply", [1, 2, 3])


BAD_TEXT = [
    ("four.xyz", "0 0 0 1\n1 1 1 1\n", "4 columns"),
    ("three.pwn", "0 0 0\n1 1 1\n", "6 columns"),
    ("ragged.xyz", "0 0 0\n1 1 1 1 1 1\n", "XYZ"),
    ("words.xyz", "a b c\n", "XYZ"),
    ("nan.xyz", "0 0 nan\n1 1 1\n", "NaN"),
    ("inf.pwn", "0 0 0 0 0 inf\n", "NaN/Inf"),
    ("comments.xyz", "# nothing here\n\n", "no points"),
]


@pytest.mark.parametrize("name,text,match", BAD_TEXT, ids=[b[0] for b in BAD_TEXT])
def test_bad_text_files(tmp_path, name, text, match):
    path = write(tmp_path / name, text)
    raises_naming(FileFormatError, path, lambda: load_pointcloud(path), match)


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


BAD_NPZ = [
    ("nokey.npz", _npz(xyz=np.zeros((3, 3))), "'points'"),
    ("shape.npz", _npz(points=np.zeros((3, 2))), "shape"),
    ("normals.npz", _npz(points=np.zeros((3, 3)), normals=np.zeros((2, 3))), "normals"),
    ("objects.npz", _npz(points=np.array([object()] * 3)), "NPZ"),
    ("nan.npz", _npz(points=np.full((2, 3), np.nan)), "NaN"),
    ("garbage.npz", b"PK\x03\x04 definitely not a zip file", "NPZ"),
    ("empty_points.npz", _npz(points=np.zeros((0, 3))), "no points"),
]


@pytest.mark.parametrize("name,data,match", BAD_NPZ, ids=[b[0] for b in BAD_NPZ])
def test_bad_npz(tmp_path, name, data, match):
    path = write(tmp_path / name, data)
    raises_naming(FileFormatError, path, lambda: load_pointcloud(path), match)


def test_bad_ply(tmp_path):
    save_pointcloud(tmp_path / "g.ply", cloud())
    data = (tmp_path / "g.ply").read_bytes()
    path = write(tmp_path / "trunc.ply", data[: len(data) - 100])
    raises_naming(FileFormatError, path, lambda: load_pointcloud(path))
    path = write(tmp_path / "garbage.ply", np.random.default_rng(0).bytes(500))
    raises_naming(FileFormatError, path, lambda: load_pointcloud(path))
    head = "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\nend_header\n"
    path = write(tmp_path / "short.ply", head + "0 0 0\n1 1 1\n")
    raises_naming(FileFormatError, path, lambda: load_pointcloud(path), "truncated")
    path = write(tmp_path / "nan.ply", head + "0 0 0\n1 nan 1\n2 2 2\n")
    raises_naming(FileFormatError, path, lambda: load_pointcloud(path), "NaN")
