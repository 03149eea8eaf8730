"""geomgen.io.load_mesh / load_meshes / save_mesh."""

from __future__ import annotations

import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

from geomgen.errors import (
    FileFormatError,
    GeomgenError,
    InvalidInputError,
    MeshFileNotFoundError,
)
from geomgen.io import load_mesh, load_meshes, save_mesh
from geomgen.structures import Meshes

from _helpers import COLOR_ATOL, raises_naming, stored_normals, write

trimesh = pytest.importorskip("trimesh")


@pytest.fixture
def mesh() -> Meshes:
    """An open, asymmetric 6-vertex mesh with normals and RGBA colours."""
    g = torch.Generator().manual_seed(0)
    verts = torch.rand(6, 3, generator=g)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [1, 4, 5], [3, 4, 5]])
    normals = torch.nn.functional.normalize(torch.randn(6, 3, generator=g), dim=1)
    colors = torch.rand(6, 4, generator=g)
    return Meshes([verts], [faces], verts_normals=[normals], verts_colors=[colors])


# ---------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------

# (extension, binary, keeps normals, colour channels kept (0 = none))
FORMATS = [
    ("ply", True, True, 4),
    ("ply", False, True, 4),
    ("obj", True, True, 3),
    ("off", True, False, 0),
    ("glb", True, True, 4),
    ("gltf", True, True, 4),
]


@pytest.mark.parametrize("ext,binary,has_normals,channels", FORMATS)
def test_round_trip(tmp_path, mesh, ext, binary, has_normals, channels):
    path = tmp_path / f"m.{ext}"
    save_mesh(path, mesh, binary=binary)
    out = load_mesh(path)
    assert isinstance(out, Meshes) and len(out) == 1
    verts, faces = mesh.verts_list()[0], mesh.faces_list()[0]
    torch.testing.assert_close(out.verts_list()[0], verts, atol=1e-6, rtol=0)
    assert torch.equal(out.faces_list()[0], faces)  # same vertex order, same indices
    normals = stored_normals(out)
    if has_normals:
        torch.testing.assert_close(normals, stored_normals(mesh), atol=1e-6, rtol=0)
    else:
        assert normals is None
    colors = out.verts_colors_list()
    if channels:
        got = colors[0]
        assert got.shape == (6, channels)
        torch.testing.assert_close(
            got, mesh.verts_colors_list()[0][:, :channels], atol=COLOR_ATOL, rtol=0
        )
    else:
        assert colors is None


@pytest.mark.parametrize("binary", [True, False])
def test_round_trip_stl_triangle_soup(tmp_path, mesh, binary):
    """STL has no shared vertices: F triangles come back as 3F vertices."""
    path = tmp_path / "m.stl"
    save_mesh(path, mesh, binary=binary)
    out = load_mesh(path)
    verts, faces = mesh.verts_list()[0], mesh.faces_list()[0]
    got = out.verts_list()[0][out.faces_list()[0]]  # (F, 3, 3) triangle corners
    torch.testing.assert_close(got, verts[faces], atol=1e-6, rtol=0)
    assert out.verts_list()[0].shape == (3 * faces.shape[0], 3)
    assert stored_normals(out) is None and out.verts_colors_list() is None


def test_opaque_colors_read_back_as_rgb(tmp_path, mesh):
    opaque = Meshes(
        mesh.verts_list(), mesh.faces_list(), verts_colors=[mesh.verts_colors_list()[0][:, :3]]
    )
    save_mesh(tmp_path / "m.ply", opaque)
    out = load_mesh(tmp_path / "m.ply")
    assert out.verts_colors_list()[0].shape == (6, 3)


def test_save_verts_faces_pair(tmp_path):
    verts = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], dtype=np.float64)
    faces = torch.tensor([[0, 1, 2]])
    save_mesh(tmp_path / "t.off", (verts, faces))
    out = load_mesh(tmp_path / "t.off", dtype=torch.float64)
    assert out.verts_list()[0].dtype == torch.float64
    np.testing.assert_array_equal(out.verts_list()[0].numpy(), verts)


def test_save_index_and_normals_option(tmp_path, mesh):
    other = Meshes([mesh.verts_list()[0] * 2], mesh.faces_list())  # no normals
    batch = Meshes([mesh.verts_list()[0], other.verts_list()[0]], mesh.faces_list() * 2)
    save_mesh(tmp_path / "b.ply", batch, index=-1)
    out = load_mesh(tmp_path / "b.ply")
    torch.testing.assert_close(out.verts_list()[0], other.verts_list()[0])
    assert stored_normals(out) is None  # none stored -> none written
    save_mesh(tmp_path / "n.ply", batch, index=1, normals=True)
    assert stored_normals(load_mesh(tmp_path / "n.ply")) is not None  # computed ones written
    save_mesh(tmp_path / "x.ply", mesh, normals=False)
    assert stored_normals(load_mesh(tmp_path / "x.ply")) is None
    with pytest.raises(InvalidInputError, match="index"):
        save_mesh(tmp_path / "c.ply", batch, index=2)


def test_save_errors(tmp_path, mesh):
    with pytest.raises(FileFormatError, match=r"\.abc"):
        save_mesh(tmp_path / "m.abc", mesh)
    with pytest.raises(MeshFileNotFoundError, match="does not exist"):
        save_mesh(tmp_path / "missing" / "m.ply", mesh)
    (tmp_path / "dir.ply").mkdir()
    with pytest.raises(InvalidInputError, match="directory"):
        save_mesh(tmp_path / "dir.ply", mesh)
    with pytest.raises(InvalidInputError, match="Meshes"):
        save_mesh(tmp_path / "m.ply", "not a mesh")
    bad = (torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, float("nan"), 0]]), torch.tensor([[0, 1, 2]]))
    with pytest.raises(InvalidInputError):
        save_mesh(tmp_path / "m.ply", bad)


# ---------------------------------------------------------------------------
# what is kept from files
# ---------------------------------------------------------------------------

QUAD_OFF = "OFF\n5 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n0.5 2 0\n4 0 1 2 3\n3 3 2 4\n"
QUAD_OBJ = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 0.5 2 0\nf 1 2 3 4\nf 4 3 5\n"
QUAD_PLY = (
    "ply\nformat ascii 1.0\nelement vertex 5\nproperty float x\nproperty float y\nproperty float z\n"
    "element face 2\nproperty list uchar int vertex_indices\nend_header\n"
    "0 0 0\n1 0 0\n1 1 0\n0 1 0\n0.5 2 0\n4 0 1 2 3\n3 3 2 4\n"
)


def _triangle_set(faces: torch.Tensor) -> set:
    return {tuple(sorted(f)) for f in faces.tolist()}


@pytest.mark.parametrize("ext,text", [("off", QUAD_OFF), ("obj", QUAD_OBJ), ("ply", QUAD_PLY)])
def test_polygons_are_triangulated(tmp_path, ext, text):
    out = load_mesh(write(tmp_path / f"q.{ext}", text))
    faces = out.faces_list()[0]
    assert faces.shape == (3, 3)
    # the quad 0-1-2-3 is split along one diagonal; the triangle is kept
    tris = _triangle_set(faces)
    assert (2, 3, 4) in tris
    assert tris - {(2, 3, 4)} in ({(0, 1, 2), (0, 2, 3)}, {(0, 1, 3), (1, 2, 3)})
    assert out.verts_list()[0].shape == (5, 3)
    assert stored_normals(out) is None  # nothing in the file, nothing invented


def test_off_mixed_polygons_work_around_trimesh(tmp_path):
    """Triangles + pentagons in one OFF file (trimesh alone fails with NumPy 2)."""
    text = "OFF\n6 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n-1 0.5 0\n3 3 3\n5 0 1 2 3 4\n3 0 1 5\n"
    out = load_mesh(write(tmp_path / "mixed.off", text))
    assert out.faces_list()[0].shape == (4, 3)  # 3 from the pentagon + 1
    assert _triangle_set(out.faces_list()[0]) >= {(0, 1, 5)}
    # the temporary wrapper is gone afterwards
    assert trimesh.exchange.off.triangulate_quads is trimesh.geometry.triangulate_quads


def test_vertex_order_is_kept(tmp_path):
    """Duplicate and unreferenced vertices stay; process=True lets trimesh merge them."""
    text = "OFF\n5 2 0\n0 0 0\n1 0 0\n0 1 0\n1 0 0\n7 7 7\n3 0 1 2\n3 2 3 0\n"
    path = write(tmp_path / "dup.off", text)
    out = load_mesh(path)
    assert out.verts_list()[0].shape == (5, 3)
    assert out.faces_list()[0].tolist() == [[0, 1, 2], [2, 3, 0]]
    merged = load_mesh(path, process=True)
    assert merged.verts_list()[0].shape[0] == 3


def test_textured_ply_keeps_vertex_indices(tmp_path):
    """Per-face texture coordinates must not make trimesh split vertices."""
    text = (
        "ply\nformat ascii 1.0\nelement vertex 4\nproperty float x\nproperty float y\n"
        "property float z\nelement face 2\nproperty list uchar int vertex_indices\n"
        "property list uchar float texcoord\nend_header\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n"
        "3 0 1 2 6 0 0 1 0 1 1\n3 0 2 3 6 0.5 0.5 1 1 0 1\n"
    )
    out = load_mesh(write(tmp_path / "tex.ply", text))
    assert out.verts_list()[0].shape == (4, 3)
    assert out.faces_list()[0].tolist() == [[0, 1, 2], [0, 2, 3]]


def test_obj_groups_share_one_vertex_list(tmp_path):
    text = (
        "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 0 0 1\n"
        "o a\nusemtl red\nf 1 2 3\nf 1 3 4\no b\nusemtl blue\nf 1 2 5\n"
    )
    out = load_mesh(write(tmp_path / "groups.obj", text))
    assert out.verts_list()[0].shape == (5, 3)  # not duplicated per group
    assert _triangle_set(out.faces_list()[0]) == {(0, 1, 2), (0, 2, 3), (0, 1, 4)}


def test_obj_normals_and_colors(tmp_path):
    text = (
        "v 0 0 0 1 0 0\nv 1 0 0 0 1 0\nv 0 1 0 0 0 1\n"
        "vn 0 0 1\nvn 0 0 1\nvn 0 0 1\nf 1//1 2//2 3//3\n"
    )
    out = load_mesh(write(tmp_path / "nc.obj", text))
    torch.testing.assert_close(stored_normals(out), torch.tensor([[0.0, 0, 1]] * 3))
    torch.testing.assert_close(out.verts_colors_list()[0], torch.eye(3))


def test_obj_texture_references_keep_indices(tmp_path, recwarn):
    """`f v/vt` with an unused vertex in the middle: indices still match the file."""
    text = "v 0 0 0\nv 9 9 9\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 3/2 4/3\n"
    out = load_mesh(write(tmp_path / "vt.obj", text))
    assert out.verts_list()[0].shape == (4, 3)
    assert out.faces_list()[0].tolist() == [[0, 2, 3]]
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]


def test_obj_relative_indices(tmp_path):
    text = "v 0 0 0\nv 1 0 0\nv 0 1 0\nv 5 5 5\nf -4 -3 -2\n"
    out = load_mesh(write(tmp_path / "rel.obj", text))
    v, f = out.verts_list()[0], out.faces_list()[0]
    torch.testing.assert_close(v[f[0]], torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]]))


def test_ply_file_normals_and_colors(tmp_path):
    text = (
        "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
        "property float nx\nproperty float ny\nproperty float nz\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        "element face 1\nproperty list uchar int vertex_indices\nend_header\n"
        "0 0 0 0 0 1 255 0 0\n1 0 0 0 0 1 0 255 0\n0 1 0 0 0 1 0 0 255\n3 0 1 2\n"
    )
    out = load_mesh(write(tmp_path / "nc.ply", text))
    torch.testing.assert_close(stored_normals(out), torch.tensor([[0.0, 0, 1]] * 3))
    torch.testing.assert_close(out.verts_colors_list()[0], torch.eye(3))


@pytest.mark.parametrize("ext", ["ply", "obj", "glb", "off", "stl"])
def test_normals_are_not_invented(tmp_path, ext):
    tm = trimesh.Trimesh(
        vertices=[[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]],
        faces=[[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]],
        process=False,
    )
    assert "vertex_normals" not in tm._cache
    tm.export(str(tmp_path / f"t.{ext}"))
    out = load_mesh(tmp_path / f"t.{ext}")
    assert stored_normals(out) is None


def test_glb_scene_transforms(tmp_path):
    """Parts of a scene are placed by their node transforms (mirrors flip faces)."""
    a = trimesh.creation.box()
    b = trimesh.creation.icosphere(subdivisions=1)
    scene = trimesh.Scene()
    shift = trimesh.transformations.translation_matrix([3.0, 0, 0])
    mirror = np.diag([-1.0, 1.0, 1.0, 1.0])
    mirror[:3, 3] = [0, 5, 0]
    scene.add_geometry(a, node_name="a", transform=shift)
    scene.add_geometry(b, node_name="b", transform=mirror)
    path = tmp_path / "scene.glb"
    scene.export(str(path))
    out = load_mesh(path)
    expected = trimesh.util.concatenate(scene.dump())
    v, f = out.verts_list()[0].double(), out.faces_list()[0]
    assert v.shape[0] == len(expected.vertices) and f.shape[0] == len(expected.faces)
    got_tris = np.sort(v[f].numpy().reshape(-1, 9), axis=0)
    want_tris = np.sort(np.asarray(expected.triangles).reshape(-1, 9), axis=0)
    np.testing.assert_allclose(got_tris, want_tris, atol=1e-5)
    # outward orientation survives the mirror: the closed parts have positive volume
    loaded = trimesh.Trimesh(v.numpy(), f.numpy(), process=False)
    assert loaded.volume > 0


def test_glb_scene_normals_follow_transform(tmp_path):
    """Normals of a transformed part use the inverse transpose (here: non-uniform scale)."""
    sphere = trimesh.creation.icosphere(subdivisions=1)
    normals = np.asarray(sphere.vertex_normals).copy()  # unit sphere: normal == position
    part = trimesh.Trimesh(sphere.vertices, sphere.faces, vertex_normals=normals, process=False)
    matrix = trimesh.transformations.rotation_matrix(0.7, [0, 0, 1]) @ np.diag([2.0, 1.0, 0.5, 1.0])
    scene = trimesh.Scene()
    scene.add_geometry(part, node_name="p", transform=matrix)
    path = tmp_path / "n.glb"
    path.write_bytes(trimesh.exchange.gltf.export_glb(scene, include_normals=True))
    out = load_mesh(path, dtype=torch.float64)
    lin = matrix[:3, :3]
    want = normals @ np.linalg.inv(lin)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(stored_normals(out).numpy(), want, atol=1e-5)
    np.testing.assert_allclose(out.verts_list()[0].numpy(), sphere.vertices @ lin.T, atol=1e-5)


def test_gltf_with_external_buffer(tmp_path):
    box = trimesh.creation.box()
    files = trimesh.exchange.gltf.export_gltf(trimesh.Scene(box))
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    gltf = tmp_path / "model.gltf"
    out = load_mesh(gltf)
    assert out.verts_list()[0].shape == (8, 3) and out.faces_list()[0].shape == (12, 3)
    for name in files:
        if name != "model.gltf":
            (tmp_path / name).unlink()
    raises_naming(FileFormatError, gltf, lambda: load_mesh(gltf), "does not exist")


def test_load_meshes_batch(tmp_path, mesh):
    save_mesh(tmp_path / "a.ply", mesh)
    write(tmp_path / "b.off", QUAD_OFF)
    batch = load_meshes([tmp_path / "a.ply", str(tmp_path / "b.off")], dtype=torch.float64)
    assert len(batch) == 2 and batch.verts_list()[1].dtype == torch.float64
    assert [v.shape[0] for v in batch.verts_list()] == [6, 5]
    # b.off has neither normals nor colours, so the batch has none
    assert stored_normals(batch, 0) is None and batch.verts_colors_list() is None
    with pytest.raises(InvalidInputError, match="sequence"):
        load_meshes(str(tmp_path / "a.ply"))
    with pytest.raises(MeshFileNotFoundError, match="nope.ply"):
        load_meshes([tmp_path / "a.ply", tmp_path / "nope.ply"])


def test_load_mesh_device_dtype(tmp_path, mesh):
    save_mesh(tmp_path / "a.ply", mesh)
    out = load_mesh(tmp_path / "a.ply", device="cpu", dtype=torch.float64)
    assert out.verts_list()[0].dtype == torch.float64
    assert out.faces_list()[0].dtype == torch.int64
    with pytest.raises(InvalidInputError, match="dtype"):
        load_mesh(tmp_path / "a.ply", dtype=torch.int32)


# ---------------------------------------------------------------------------
# bad input: clear errors naming the file
# ---------------------------------------------------------------------------


def test_missing_file_and_directory(tmp_path):
    raises_naming(
        MeshFileNotFoundError, tmp_path / "nope.obj", lambda: load_mesh(tmp_path / "nope.obj")
    )
    d = tmp_path / "folder.obj"
    d.mkdir()
    raises_naming(MeshFileNotFoundError, d, lambda: load_mesh(d), "directory")
    with pytest.raises(InvalidInputError, match="path"):
        load_mesh(123)


@pytest.mark.parametrize("ext", ["obj", "ply", "off", "stl", "glb", "gltf"])
def test_empty_file(tmp_path, ext):
    path = write(tmp_path / f"empty.{ext}", b"")
    raises_naming(FileFormatError, path, lambda: load_mesh(path), "empty")


@pytest.mark.parametrize("ext", ["obj", "ply", "off", "stl", "glb", "gltf"])
def test_garbage_bytes(tmp_path, ext):
    data = np.random.default_rng(1).integers(0, 256, 600, dtype=np.uint8).tobytes()
    path = write(tmp_path / f"garbage.{ext}", data)
    raises_naming(FileFormatError, path, lambda: load_mesh(path))


def test_unknown_and_point_extensions(tmp_path):
    path = write(tmp_path / "m.dae2", "x")
    raises_naming(FileFormatError, path, lambda: load_mesh(path), "supported formats")
    path = write(tmp_path / "p.xyz", "0 0 0\n")
    raises_naming(FileFormatError, path, lambda: load_mesh(path), "load_pointcloud")
    path = write(tmp_path / "noext", "OFF\n")
    raises_naming(FileFormatError, path, lambda: load_mesh(path), "no file extension")


def _icosphere_bytes(ext: str, **kw) -> bytes:
    data = trimesh.creation.icosphere(subdivisions=2).export(file_type=ext, **kw)
    return data if isinstance(data, bytes) else data.encode()


@pytest.mark.parametrize(
    "ext,kw", [("ply", {}), ("ply", {"encoding": "ascii"}), ("stl", {}), ("off", {}), ("glb", {})]
)
def test_truncated(tmp_path, ext, kw):
    data = _icosphere_bytes(ext, **kw)
    for keep in (len(data) * 2 // 3, 60):
        path = write(tmp_path / f"trunc{keep}.{ext}", data[:keep])
        raises_naming(FileFormatError, path, lambda p=path: load_mesh(p))


def test_truncated_ascii_stl(tmp_path):
    text = trimesh.exchange.stl.export_stl_ascii(trimesh.creation.box())
    path = write(tmp_path / "t.stl", text[: len(text) // 2])
    raises_naming(FileFormatError, path, lambda: load_mesh(path))


PLY_HEAD = (
    "ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
    "element face {nf}\nproperty list uchar int vertex_indices\nend_header\n"
)


@pytest.mark.parametrize(
    "name,text",
    [
        ("pts.off", "OFF\n3 0 0\n0 0 0\n1 0 0\n0 1 0\n"),
        ("pts.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\n"),
        ("pts.ply", PLY_HEAD.format(nf=0) + "0 0 0\n1 0 0\n0 1 0\n"),
    ],
)
def test_vertices_without_faces(tmp_path, name, text):
    path = write(tmp_path / name, text)
    err = raises_naming(FileFormatError, path, lambda: load_mesh(path), "has no faces")
    assert "load_pointcloud" in str(err)


BAD_CONTENT = [
    ("nan.off", "OFF\n3 1 0\n0 0 nan\n1 0 0\n0 1 0\n3 0 1 2\n", "NaN"),
    ("inf.off", "OFF\n3 1 0\n0 0 0\n1 inf 0\n0 1 0\n3 0 1 2\n", "NaN/Inf"),
    ("nan.obj", "v 0 0 nan\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", "NaN"),
    ("inf.obj", "v 0 0 0\nv -inf 0 0\nv 0 1 0\nf 1 2 3\n", "NaN/Inf"),
    ("nan.ply", PLY_HEAD.format(nf=1) + "0 0 nan\n1 0 0\n0 1 0\n3 0 1 2\n", "NaN"),
    ("oor.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", "range"),
    ("neg.off", "OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 -1 2\n", "range"),
    ("oor.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "out of range"),
    ("neg.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf -4 1 2\n", "out of range"),
    ("zero.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 1 2\n", "index 0"),
    ("late.obj", "v 0 0 0\nv 1 0 0\nf -2 -1 1\nv 0 1 0\n", "relative"),
    ("word.obj", "v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n", "non-integer"),
    ("oor.ply", PLY_HEAD.format(nf=1) + "0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n", "out of range"),
    ("neg.ply", PLY_HEAD.format(nf=1) + "0 0 0\n1 0 0\n0 1 0\n3 0 -1 2\n", "out of range"),
    ("short.off", "OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "truncated"),
    ("short.ply", PLY_HEAD.format(nf=2) + "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "truncated"),
]


@pytest.mark.parametrize("name,text,match", BAD_CONTENT, ids=[b[0] for b in BAD_CONTENT])
def test_bad_content(tmp_path, name, text, match):
    path = write(tmp_path / name, text)
    raises_naming(FileFormatError, path, lambda: load_mesh(path), match)


def test_binary_stl_with_nan(tmp_path):
    tri = struct.pack("<12f", 0, 0, 1, 0, 0, 0, 1, 0, float("nan"), 0, 1, 0) + b"\0\0"
    path = write(tmp_path / "nan.stl", b"\0" * 80 + struct.pack("<I", 1) + tri)
    raises_naming(FileFormatError, path, lambda: load_mesh(path), "NaN")


def test_keyboard_interrupt_is_not_swallowed(tmp_path, monkeypatch):
    path = write(tmp_path / "t.ply", PLY_HEAD.format(nf=1) + "0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(trimesh, "load_scene", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_mesh(path)


def test_every_error_is_a_geomgen_error(tmp_path):
    for call in (
        lambda: load_mesh(tmp_path / "x.obj"),
        lambda: load_mesh(write(tmp_path / "e.ply", "")),
    ):
        with pytest.raises(GeomgenError):
            call()


def test_import_geomgen_is_light():
    code = (
        "import sys, geomgen, geomgen.io\n"
        "heavy = [m for m in ('trimesh', 'open3d', 'pytorch3d') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
