"""geomgen.io converters: trimesh, Open3D, PyTorch3D."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from geomgen.errors import BackendUnavailableError, GeomgenError, InvalidInputError
from geomgen.io import (
    from_open3d,
    from_pytorch3d,
    from_trimesh,
    to_open3d,
    to_pytorch3d,
    to_trimesh,
)
from geomgen.structures import Meshes, PointClouds

from _helpers import COLOR_ATOL, stored_normals

trimesh = pytest.importorskip("trimesh")


@pytest.fixture
def mesh() -> Meshes:
    g = torch.Generator().manual_seed(5)
    verts = torch.rand(5, 3, generator=g)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3], [0, 3, 4]])
    normals = torch.nn.functional.normalize(torch.randn(5, 3, generator=g), dim=1)
    colors = torch.rand(5, 3, generator=g)
    return Meshes([verts], [faces], verts_normals=[normals], verts_colors=[colors])


@pytest.fixture
def cloud() -> PointClouds:
    g = torch.Generator().manual_seed(6)
    pts = torch.randn(20, 3, generator=g)
    nrm = torch.nn.functional.normalize(torch.randn(20, 3, generator=g), dim=1)
    return PointClouds([pts], normals=[nrm], features=[torch.rand(20, 3, generator=g)])


# ---------------------------------------------------------------------------
# trimesh
# ---------------------------------------------------------------------------


def test_trimesh_round_trip(mesh):
    tm = to_trimesh(mesh)
    assert isinstance(tm, trimesh.Trimesh)
    np.testing.assert_allclose(tm.vertices, mesh.verts_list()[0].numpy(), atol=1e-7)
    np.testing.assert_array_equal(tm.faces, mesh.faces_list()[0].numpy())
    assert tm.visual.kind == "vertex"
    back = from_trimesh(tm)
    torch.testing.assert_close(back.verts_list()[0], mesh.verts_list()[0])
    assert torch.equal(back.faces_list()[0], mesh.faces_list()[0])
    torch.testing.assert_close(stored_normals(back), stored_normals(mesh))
    torch.testing.assert_close(
        back.verts_colors_list()[0], mesh.verts_colors_list()[0], atol=COLOR_ATOL, rtol=0
    )


def test_from_trimesh_keeps_only_given_normals():
    tm = trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], process=False)
    out = from_trimesh(tm, dtype=torch.float64)
    assert stored_normals(out) is None and out.verts_colors_list() is None
    assert out.verts_list()[0].dtype == torch.float64


def test_from_trimesh_list_scene_pointcloud():
    a = trimesh.creation.box()
    b = trimesh.creation.icosphere(subdivisions=1)
    batch = from_trimesh([a, b])
    assert len(batch) == 2
    assert [v.shape[0] for v in batch.verts_list()] == [len(a.vertices), len(b.vertices)]

    scene = trimesh.Scene()
    scene.add_geometry(a, transform=trimesh.transformations.translation_matrix([5.0, 0, 0]))
    scene.add_geometry(b)
    one = from_trimesh(scene)
    assert len(one) == 1 and one.verts_list()[0].shape[0] == len(a.vertices) + len(b.vertices)
    assert one.verts_list()[0][:, 0].max().item() == pytest.approx(5.5)

    pc = trimesh.PointCloud(
        np.random.default_rng(0).random((7, 3)), colors=np.full((7, 4), 255, np.uint8)
    )
    clouds = from_trimesh(pc)
    assert isinstance(clouds, PointClouds)
    torch.testing.assert_close(clouds.features_list()[0], torch.ones(7, 3))


def test_to_trimesh_pointcloud_and_index(cloud):
    batch = PointClouds([torch.zeros(2, 3), cloud.points_list()[0]])
    tp = to_trimesh(batch, index=1)
    assert isinstance(tp, trimesh.PointCloud) and len(tp.vertices) == 20
    tc = to_trimesh(cloud)
    np.testing.assert_allclose(
        tc.colors[:, :3] / 255, cloud.features_list()[0].numpy(), atol=COLOR_ATOL
    )
    with pytest.warns(UserWarning, match="features"):
        to_trimesh(PointClouds([torch.zeros(3, 3)], features=[torch.full((3, 2), 7.0)]))
    with pytest.raises(InvalidInputError, match="index"):
        to_trimesh(batch, index=2)


def test_trimesh_bad_input():
    with pytest.raises(InvalidInputError, match="Meshes or PointClouds"):
        to_trimesh(np.zeros((3, 3)))
    with pytest.raises(InvalidInputError, match="trimesh.Trimesh"):
        from_trimesh("mesh.obj")
    bad = trimesh.Trimesh(
        [[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 5]], process=False, validate=False
    )
    with pytest.raises(InvalidInputError):
        from_trimesh(bad)
    nan = trimesh.Trimesh([[0, 0, np.nan], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]], process=False)
    with pytest.raises(InvalidInputError, match="verts"):
        from_trimesh(nan)
    with pytest.raises(InvalidInputError, match="no mesh"):
        from_trimesh(trimesh.Scene())


# ---------------------------------------------------------------------------
# Open3D
# ---------------------------------------------------------------------------


def test_open3d_mesh_round_trip(mesh):
    o3d = pytest.importorskip("open3d")
    tm = to_open3d(mesh)
    assert isinstance(tm, o3d.geometry.TriangleMesh)
    assert tm.has_vertex_normals() and tm.has_vertex_colors()
    np.testing.assert_array_equal(np.asarray(tm.triangles), mesh.faces_list()[0].numpy())
    back = from_open3d(tm)
    torch.testing.assert_close(back.verts_list()[0], mesh.verts_list()[0])
    assert torch.equal(back.faces_list()[0], mesh.faces_list()[0])
    torch.testing.assert_close(stored_normals(back), stored_normals(mesh))
    torch.testing.assert_close(back.verts_colors_list()[0], mesh.verts_colors_list()[0])


def test_open3d_mesh_without_extras_and_rgba():
    o3d = pytest.importorskip("open3d")
    m = Meshes(
        [torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])],
        [torch.tensor([[0, 1, 2]])],
        verts_colors=[torch.tensor([[1.0, 0, 0, 0.5]] * 3)],
    )
    tm = to_open3d(m)
    assert not tm.has_vertex_normals()
    np.testing.assert_allclose(np.asarray(tm.vertex_colors), [[1, 0, 0]] * 3)  # alpha dropped
    plain = o3d.geometry.TriangleMesh()
    plain.vertices = o3d.utility.Vector3dVector(np.eye(3))
    plain.triangles = o3d.utility.Vector3iVector(np.array([[0, 1, 2]], dtype=np.int32))
    out = from_open3d(plain)
    assert stored_normals(out) is None and out.verts_colors_list() is None


def test_open3d_pointcloud_round_trip(cloud):
    o3d = pytest.importorskip("open3d")
    pc = to_open3d(cloud)
    assert isinstance(pc, o3d.geometry.PointCloud) and pc.has_normals() and pc.has_colors()
    back = from_open3d(pc, dtype=torch.float64)
    torch.testing.assert_close(back.points_list()[0], cloud.points_list()[0].double())
    torch.testing.assert_close(back.normals_list()[0], cloud.normals_list()[0].double())
    torch.testing.assert_close(back.features_list()[0], cloud.features_list()[0].double())


def test_open3d_bad_input():
    o3d = pytest.importorskip("open3d")
    with pytest.raises(InvalidInputError, match="TriangleMesh"):
        from_open3d(o3d.geometry.LineSet())
    with pytest.raises(InvalidInputError):
        to_open3d("nope")
    bad = o3d.geometry.TriangleMesh()
    bad.vertices = o3d.utility.Vector3dVector(np.eye(3))
    bad.triangles = o3d.utility.Vector3iVector(np.array([[0, 1, 9]], dtype=np.int32))
    with pytest.raises(InvalidInputError, match="faces"):
        from_open3d(bad)


def test_open3d_missing(monkeypatch, mesh):
    monkeypatch.setitem(sys.modules, "open3d", None)  # makes `import open3d` fail
    with pytest.raises(BackendUnavailableError, match="pip install open3d"):
        to_open3d(mesh)
    with pytest.raises(BackendUnavailableError):
        from_open3d(object())


# ---------------------------------------------------------------------------
# PyTorch3D
# ---------------------------------------------------------------------------


def test_pytorch3d_missing(monkeypatch, mesh, cloud):
    monkeypatch.setitem(sys.modules, "pytorch3d", None)
    monkeypatch.setitem(sys.modules, "pytorch3d.structures", None)
    for call in (
        lambda: to_pytorch3d(mesh),
        lambda: to_pytorch3d(cloud),
        lambda: from_pytorch3d(object()),
    ):
        with pytest.raises(BackendUnavailableError, match="PyTorch3D") as info:
            call()
        assert isinstance(info.value, (GeomgenError, ImportError))


def test_pytorch3d_round_trip(mesh, cloud):
    pytest.importorskip("pytorch3d")
    p3 = to_pytorch3d(mesh)
    back = from_pytorch3d(p3)
    torch.testing.assert_close(back.verts_list()[0], mesh.verts_list()[0])
    assert torch.equal(back.faces_list()[0], mesh.faces_list()[0])
    torch.testing.assert_close(back.verts_colors_list()[0], mesh.verts_colors_list()[0])
    pc = from_pytorch3d(to_pytorch3d(cloud))
    torch.testing.assert_close(pc.points_list()[0], cloud.points_list()[0])
    torch.testing.assert_close(pc.normals_list()[0], cloud.normals_list()[0])
    torch.testing.assert_close(pc.features_list()[0], cloud.features_list()[0])


@pytest.fixture
def fake_pytorch3d(monkeypatch):
    """A minimal stand-in with PyTorch3D's constructor signatures, to run the
    conversion code where the real package is not installed."""
    if "pytorch3d" in sys.modules and sys.modules["pytorch3d"] is not None:
        pytest.skip("real PyTorch3D installed; covered by test_pytorch3d_round_trip")

    class FakeMeshes:
        def __init__(self, verts, faces, textures=None, *, verts_normals=None):
            self._v, self._f, self.textures, self.given_normals = (
                verts,
                faces,
                textures,
                verts_normals,
            )

        def verts_list(self):
            return self._v

        def faces_list(self):
            return self._f

    class FakePointclouds:
        def __init__(self, points, normals=None, features=None):
            self._p, self._n, self._f = points, normals, features

        def points_list(self):
            return self._p

        def normals_list(self):
            return self._n

        def features_list(self):
            return self._f

    class TexturesVertex:
        def __init__(self, verts_features):
            self._feats = verts_features

        def verts_features_list(self):
            return self._feats

    root = types.ModuleType("pytorch3d")
    structures = types.ModuleType("pytorch3d.structures")
    structures.Meshes, structures.Pointclouds = FakeMeshes, FakePointclouds
    textures = types.ModuleType("pytorch3d.renderer.mesh.textures")
    textures.TexturesVertex = TexturesVertex
    root.structures = structures
    for name, mod in {
        "pytorch3d": root,
        "pytorch3d.structures": structures,
        "pytorch3d.renderer": types.ModuleType("pytorch3d.renderer"),
        "pytorch3d.renderer.mesh": types.ModuleType("pytorch3d.renderer.mesh"),
        "pytorch3d.renderer.mesh.textures": textures,
    }.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return structures


def test_pytorch3d_conversion_logic(fake_pytorch3d, mesh, cloud):
    p3 = to_pytorch3d(mesh)
    assert isinstance(p3, fake_pytorch3d.Meshes)
    assert p3.given_normals is not None  # stored normals are passed on
    assert p3.verts_list()[0] is mesh.verts_list()[0]  # shared, not copied
    back = from_pytorch3d(p3, dtype=torch.float64)
    assert back.verts_list()[0].dtype == torch.float64
    torch.testing.assert_close(back.verts_colors_list()[0], mesh.verts_colors_list()[0].double())
    plain = Meshes(mesh.verts_list(), mesh.faces_list())
    assert to_pytorch3d(plain).given_normals is None and to_pytorch3d(plain).textures is None
    pc = from_pytorch3d(to_pytorch3d(cloud))
    torch.testing.assert_close(pc.features_list()[0], cloud.features_list()[0])
    with pytest.raises(InvalidInputError, match="pytorch3d"):
        from_pytorch3d(mesh)
    bad = fake_pytorch3d.Meshes([torch.zeros(3, 3)], [torch.tensor([[0, 1, 3]])])
    with pytest.raises(InvalidInputError, match="from_pytorch3d"):
        from_pytorch3d(bad)
