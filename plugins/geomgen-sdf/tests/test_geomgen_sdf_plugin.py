"""Tests of the geomgen-sdf plugin: winding number, distances, volume-iou, the sdf command,
and its registration through geomgen's plugin manager (in-process, from source)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

import geomgen_sdf
import geomgen_sdf.plugin as sdf_plugin
from geomgen.errors import InvalidInputError
from geomgen.structures import Meshes
from geomgen.testing.plugins import PluginManager
from geomgen_sdf.plugin import volume_iou, voxelize
from geomgen_sdf.winding import contains, signed_distance, unsigned_distance, winding_number


# ----------------------------------------------------------------------------- helpers
def _tensors(mesh: trimesh.Trimesh, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(mesh.vertices, dtype=dtype), torch.tensor(mesh.faces, dtype=torch.int64)


def _cube(center=(0.0, 0.0, 0.0), size=1.0, dtype=torch.float64):
    """Outward-oriented axis-aligned cube (12 triangles)."""
    box = trimesh.creation.box(extents=(size, size, size))
    box.apply_translation(center)
    return _tensors(box, dtype)


def _sphere(subdivisions=3, dtype=torch.float64):
    """Outward-oriented icosphere inscribed in the unit sphere."""
    return _tensors(trimesh.creation.icosphere(subdivisions=subdivisions), dtype)


def _box_sdf(points: torch.Tensor, half: float = 0.5) -> torch.Tensor:
    """Exact signed distance to the axis-aligned box [-half, half]^3."""
    q = points.abs() - half
    outside = q.clamp_min(0).norm(dim=1)
    inside = q.max(dim=1).values.clamp_max(0)
    return outside + inside


def _points(n: int, scale: float, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return ((torch.rand(n, 3, generator=g, dtype=torch.float64) * 2 - 1) * scale).to(dtype)


# ----------------------------------------------------------------------------- winding number
@pytest.mark.parametrize("shape", ["cube", "sphere"])
def test_winding_number_is_one_inside_zero_outside(shape):
    verts, faces = _cube() if shape == "cube" else _sphere()
    p = _points(2000, 1.5)
    w = winding_number(p, verts, faces)
    assert w.shape == (2000,) and w.dtype == torch.float64
    if shape == "cube":
        inner = (p.abs().amax(1) < 0.48)
        outer = (p.abs().amax(1) > 0.52)
    else:  # faces lie between radius ~0.99 and 1
        r = p.norm(dim=1)
        inner, outer = r < 0.97, r > 1.01
    assert inner.sum() > 50 and outer.sum() > 50
    torch.testing.assert_close(w[inner], torch.ones_like(w[inner]), atol=1e-9, rtol=0)
    torch.testing.assert_close(w[outer], torch.zeros_like(w[outer]), atol=1e-9, rtol=0)
    assert torch.equal(contains(p, verts, faces), w > 0.5)


def test_winding_number_orientation_and_float32():
    verts, faces = _sphere(2, torch.float32)
    p = torch.tensor([[0.0, 0.0, 0.0], [0.3, -0.2, 0.1], [2.0, 0.0, 0.0]])
    w = winding_number(p, verts, faces)
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, torch.tensor([1.0, 1.0, 0.0]), atol=1e-5, rtol=0)
    flipped = winding_number(p, verts, faces.flip(1))  # inward-oriented: -1 inside
    torch.testing.assert_close(flipped, torch.tensor([-1.0, -1.0, 0.0]), atol=1e-5, rtol=0)


def test_winding_number_robust_to_a_hole():
    verts, faces = _sphere(2)
    open_faces = faces[3:]  # three triangles missing
    p = torch.tensor([[0.0, 0.0, 0.0], [0.2, 0.3, -0.4], [0.0, 0.0, 1.5], [-1.2, 0.5, 0.0]], dtype=torch.float64)
    w = winding_number(p, verts, open_faces)
    assert (w[:2] > 0.9).all() and (w[:2] < 1.0).all()
    assert (w[2:].abs() < 0.1).all()
    assert torch.equal(contains(p, verts, open_faces), torch.tensor([True, True, False, False]))


def test_winding_number_on_the_surface_is_finite():
    verts, faces = _cube()
    on_surface = torch.cat([verts, torch.tensor([[0.5, 0.1, 0.2], [0.5, 0.5, 0.0]], dtype=torch.float64)])
    assert torch.isfinite(winding_number(on_surface, verts, faces)).all()


@pytest.mark.parametrize("chunk_size", [1, 7, 100, 10**7])
def test_chunking_gives_the_same_result(chunk_size):
    verts, faces = _sphere(0)  # 20 faces: tiles split faces (7) and points (100)
    p = _points(31, 1.3, seed=3)
    ref_w = winding_number(p, verts, faces)
    ref_d = unsigned_distance(p, verts, faces)
    torch.testing.assert_close(winding_number(p, verts, faces, chunk_size=chunk_size), ref_w, atol=1e-12, rtol=0)
    torch.testing.assert_close(unsigned_distance(p, verts, faces, chunk_size=chunk_size), ref_d, atol=0, rtol=0)


# ----------------------------------------------------------------------------- distances
def test_signed_distance_of_a_cube_is_exact():
    verts, faces = _cube()
    p = _points(3000, 1.2, seed=1)
    # points on the surface, on edges and at corners too
    special = torch.tensor([[0.5, 0.0, 0.0], [0.5, 0.5, 0.1], [0.5, 0.5, 0.5], [0.7, 0.6, -0.9],
                            [0.0, 0.0, 0.0], [0.25, 0.0, 0.0]], dtype=torch.float64)
    p = torch.cat([p, special])
    sd = signed_distance(p, verts, faces)
    torch.testing.assert_close(sd, _box_sdf(p), atol=1e-12, rtol=0)
    torch.testing.assert_close(unsigned_distance(p, verts, faces), _box_sdf(p).abs(), atol=1e-12, rtol=0)


def test_signed_distance_of_a_cube_float32():
    verts, faces = _cube(dtype=torch.float32)
    p = _points(500, 1.2, seed=2, dtype=torch.float32)
    sd = signed_distance(p, verts, faces)
    assert sd.dtype == torch.float32
    torch.testing.assert_close(sd, _box_sdf(p), atol=1e-5, rtol=0)


def test_signed_distance_of_a_sphere_mesh_matches_the_analytic_sphere():
    verts, faces = _sphere(3)
    p = _points(1000, 1.6, seed=4)
    sd = signed_distance(p, verts, faces)
    exact = p.norm(dim=1) - 1
    # the icosphere's faces lie within 0.005 of the unit sphere
    assert (sd - exact).abs().max() < 0.01
    away = (exact.abs() > 0.02)
    assert torch.equal(sd[away] < 0, exact[away] < 0)


def test_unsigned_distance_matches_a_brute_force_reference():
    """Random (non-degenerate) triangles against trimesh's per-triangle closest point."""
    rng = np.random.default_rng(5)
    tris = rng.normal(size=(40, 3, 3))
    verts = torch.tensor(tris.reshape(-1, 3))
    faces = torch.arange(120).reshape(40, 3)
    p = rng.normal(size=(300, 3)) * 2
    ref = np.full(len(p), np.inf)
    for tri in tris:
        closest = trimesh.triangles.closest_point(np.repeat(tri[None], len(p), 0), p)
        ref = np.minimum(ref, np.linalg.norm(closest - p, axis=1))
    got = unsigned_distance(torch.tensor(p), verts, faces).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-9, rtol=0)


def test_degenerate_triangles_count_as_segments():
    verts = torch.tensor([[0.0, 0, 0], [1, 0, 0], [2, 0, 0], [5, 5, 5]], dtype=torch.float64)
    faces = torch.tensor([[0, 1, 2], [3, 3, 3]])  # collinear, and a single point
    p = torch.tensor([[1.0, 1.0, 0.0], [3.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [5.0, 5.0, 6.0]], dtype=torch.float64)
    torch.testing.assert_close(unsigned_distance(p, verts, faces),
                               torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64))
    assert torch.isfinite(winding_number(p, verts, faces)).all()


def test_empty_inputs():
    verts, _ = _cube()
    no_faces = torch.zeros(0, 3, dtype=torch.int64)
    p = _points(5, 1.0)
    assert torch.equal(winding_number(p, verts, no_faces), torch.zeros(5, dtype=torch.float64))
    assert torch.isinf(unsigned_distance(p, verts, no_faces)).all()
    assert (signed_distance(p, verts, no_faces) == float("inf")).all()
    _, faces = _cube()
    assert winding_number(p[:0], verts, faces).shape == (0,)
    assert signed_distance(p[:0], verts, faces).shape == (0,)


@pytest.mark.parametrize("fn", [winding_number, unsigned_distance, signed_distance])
def test_invalid_inputs_raise_invalid_input_error(fn):
    verts, faces = _cube()
    p = _points(4, 1.0)
    with pytest.raises(InvalidInputError, match="points"):
        fn(p[:, :2], verts, faces)
    with pytest.raises(InvalidInputError, match="faces"):
        fn(p, verts, faces.double())
    with pytest.raises(InvalidInputError, match="out of range"):
        fn(p, verts, faces + 100)
    with pytest.raises(InvalidInputError, match="NaN"):
        fn(torch.full((1, 3), float("nan"), dtype=torch.float64), verts, faces)
    with pytest.raises(InvalidInputError, match="chunk_size"):
        fn(p, verts, faces, chunk_size=0)


# ----------------------------------------------------------------------------- volume-iou
def test_volume_iou_of_a_mesh_with_itself_is_one():
    verts, faces = _sphere(2, torch.float32)
    m = Meshes([verts], [faces])
    iou = volume_iou(m, m, num_points=20_000)
    assert iou.shape == (1,) and iou.dtype == torch.float32
    assert iou.item() == 1.0


def test_volume_iou_of_half_overlapping_cubes_is_one_third():
    a = _cube(dtype=torch.float32)
    b = _cube(center=(0.5, 0.0, 0.0), dtype=torch.float32)
    c = _cube(center=(3.0, 0.0, 0.0), dtype=torch.float32)
    pred = Meshes([a[0], a[0], a[0]], [a[1], a[1], a[1]])
    gt = Meshes([b[0], c[0], a[0]], [b[1], c[1], a[1]])
    iou = volume_iou(pred, gt)  # default 100k points: standard error ~0.0015
    assert iou.shape == (3,)
    assert abs(iou[0].item() - 1 / 3) < 0.01
    assert iou[1].item() == 0.0  # disjoint
    assert iou[2].item() == 1.0
    # deterministic by default, and driven by the generator when given
    assert torch.equal(volume_iou(pred, gt), iou)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    assert torch.equal(volume_iou(pred[0], gt[0], num_points=5000, generator=g1),
                       volume_iou(pred[0], gt[0], num_points=5000, generator=g2))


def test_volume_iou_of_empty_volumes():
    verts, faces = _cube(dtype=torch.float32)
    empty = Meshes([torch.zeros(0, 3)], [torch.zeros(0, 3, dtype=torch.int64)])
    solid = Meshes([verts], [faces])
    flat = Meshes([torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])], [torch.tensor([[0, 1, 2]])])
    assert volume_iou(empty, empty).item() == 1.0  # documented convention
    assert volume_iou(flat, flat, num_points=1000).item() == 1.0  # no volume on either side
    assert volume_iou(empty, solid, num_points=1000).item() == 0.0
    assert volume_iou(solid, empty, num_points=1000).item() == 0.0


def test_volume_iou_rejects_bad_arguments():
    verts, faces = _cube(dtype=torch.float32)
    one = Meshes([verts], [faces])
    two = Meshes([verts, verts], [faces, faces])
    with pytest.raises(InvalidInputError, match="same number"):
        volume_iou(one, two)
    with pytest.raises(InvalidInputError, match="num_points"):
        volume_iou(one, one, num_points=0)
    with pytest.raises(InvalidInputError, match="pred"):
        volume_iou(verts, one)
    with pytest.raises(InvalidInputError, match="generator"):
        volume_iou(one, one, generator=0)


# ----------------------------------------------------------------------------- voxelize / sdf command
def test_voxelize_occupancy_and_sdf_of_a_cube():
    verts, faces = _cube(dtype=torch.float32)
    full = voxelize(verts, faces, resolution=8, padding=0.0)
    assert full.kind == "occupancy" and full.resolution == (8, 8, 8)
    assert full.occupancy().all()
    # padding 0.5: the grid is twice the cube, which fills the middle 4 voxels per axis
    vox = voxelize(verts, faces, resolution=8, padding=0.5)
    occ = vox.occupancy()[0]
    assert occ.sum().item() == 64 and occ[2:6, 2:6, 2:6].all()
    torch.testing.assert_close(vox.origin[0], torch.tensor([-1.0, -1.0, -1.0]))
    torch.testing.assert_close(vox.voxel_size[0], torch.full((3,), 0.25))
    sdf = voxelize(verts, faces, resolution=8, padding=0.5, sdf=True)
    assert sdf.kind == "sdf"
    centres = sdf.voxel_centers()[0].reshape(-1, 3)  # (k, j, i) order, xyz
    torch.testing.assert_close(sdf.grids[0].reshape(-1), _box_sdf(centres), atol=1e-5, rtol=0)


def test_voxelize_axis_order():
    """grids[k, j, i] is z, y, x: a box long along x fills many i, few k."""
    box = trimesh.creation.box(extents=(1.0, 0.5, 0.25))
    verts, faces = _tensors(box, torch.float32)
    occ = voxelize(verts, faces, resolution=16, padding=0.0).occupancy()[0]
    k, j, i = occ.nonzero().unbind(1)
    assert (i.max() - i.min() + 1).item() == 16
    assert (j.max() - j.min() + 1).item() == 8
    assert (k.max() - k.min() + 1).item() == 4


@pytest.mark.parametrize("kwargs, match", [
    ({"resolution": 1}, "resolution"), ({"resolution": 4.0}, "resolution"),
    ({"padding": -0.1}, "padding"), ({"padding": float("inf")}, "padding"),
])
def test_voxelize_rejects_bad_arguments(kwargs, match):
    verts, faces = _cube(dtype=torch.float32)
    with pytest.raises(InvalidInputError, match=match):
        voxelize(verts, faces, **{"resolution": 4, **kwargs})


def _run_command(argv: list[str]) -> int | None:
    parser = argparse.ArgumentParser(prog="geomgen sdf")
    sdf_plugin._configure_sdf(parser)
    return sdf_plugin._run_sdf(parser.parse_args(argv))


@pytest.fixture
def cube_file(tmp_path) -> Path:
    path = tmp_path / "cube.obj"
    trimesh.creation.box(extents=(1.0, 1.0, 1.0)).export(path)
    return path


def test_sdf_command_writes_binvox(cube_file, tmp_path, capsys):
    from geomgen.io import load_binvox

    out = tmp_path / "cube.binvox"
    assert _run_command([str(cube_file), "--resolution", "8", "--padding", "0.5", "-o", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line and "occupied fraction 0.1250" in line and str(out) in line
    vox = load_binvox(out)
    assert vox.resolution == (8, 8, 8)
    assert vox.occupancy()[0].sum().item() == 64 and vox.occupancy()[0, 2:6, 2:6, 2:6].all()
    torch.testing.assert_close(vox.origin[0], torch.tensor([-1.0, -1.0, -1.0]))
    torch.testing.assert_close(vox.voxel_size[0], torch.full((3,), 0.25))


def test_sdf_command_writes_npz(cube_file, tmp_path, capsys):
    out = tmp_path / "cube.npz"
    assert _run_command([str(cube_file), "--resolution", "6", "-o", str(out)]) == 0
    assert "occupied fraction" in capsys.readouterr().out
    data = np.load(out)
    assert set(data.files) == {"sdf", "origin", "voxel_size"}
    assert data["sdf"].shape == (6, 6, 6) and data["sdf"].dtype == np.float32
    size = float(data["voxel_size"])
    np.testing.assert_allclose(size, 1.1 / 6, rtol=1e-6)
    np.testing.assert_allclose(data["origin"], [-0.55, -0.55, -0.55], rtol=1e-6)
    idx = (np.arange(6) + 0.5) * size
    z, y, x = np.meshgrid(data["origin"][2] + idx, data["origin"][1] + idx, data["origin"][0] + idx, indexing="ij")
    centres = torch.tensor(np.stack([x, y, z], -1).reshape(-1, 3))
    np.testing.assert_allclose(data["sdf"].reshape(-1), _box_sdf(centres).numpy(), atol=1e-5)


@pytest.mark.parametrize("argv, match", [
    (["--resolution", "1", "-o", "{tmp}/x.binvox"], "resolution"),
    (["--resolution", "4", "--padding", "-1", "-o", "{tmp}/x.binvox"], "padding"),
    (["-o", "{tmp}/x.txt"], r"\.binvox"),
    (["-o", "{tmp}/missing/x.npz"], "does not exist"),
])
def test_sdf_command_rejects_bad_arguments(cube_file, tmp_path, argv, match):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    with pytest.raises(InvalidInputError, match=match):
        _run_command([str(cube_file), *argv])


# ----------------------------------------------------------------------------- registration
def test_registers_through_the_plugin_manager():
    pm = PluginManager(strict=True, disabled=())
    pm.load_default_plugins()
    info = pm.add_plugin(sdf_plugin, "sdf")
    infos = {i.name: i for i in pm.plugins()}  # strict: any error or name clash raises
    assert infos["sdf"] is info
    assert info.status == "ok" and info.error is None
    assert info.hooks == ["geomgen_register_commands", "geomgen_register_metrics"]
    assert info.components == {"metric": ["volume-iou"], "command": ["sdf"]}
    spec = pm.get_spec("metric", "volume-iou")
    assert spec.fn is volume_iou and spec.inputs == "meshes" and spec.higher_is_better
    assert spec.description
    assert pm.provider("metric", "volume-iou") is info
    command = pm.get_spec("command", "sdf")
    assert command.run is sdf_plugin._run_sdf and command.configure is sdf_plugin._configure_sdf
    assert "volume-iou" in pm.list_components("metric") and "sdf" in pm.list_components("command")


def test_can_be_blocked():
    pm = PluginManager(strict=True, disabled=["external"])
    info = pm.add_plugin(sdf_plugin, "sdf")
    assert info.status == "blocked" and info.components == {}
    assert "volume-iou" not in pm.list_components("metric")


def test_plugin_module_imports_without_torch():
    """Loading the plugin (what `geomgen plugins` does) must stay cheap."""
    code = ("import importlib.util, sys\n"
            f"src = {str(Path(geomgen_sdf.__file__).parent)!r}\n"
            "spec = importlib.util.spec_from_file_location('geomgen_sdf', src + '/__init__.py',"
            " submodule_search_locations=[src])\n"
            "m = importlib.util.module_from_spec(spec); sys.modules['geomgen_sdf'] = m; spec.loader.exec_module(m)\n"
            "import geomgen_sdf.plugin\n"
            "heavy = sorted({'torch', 'numpy', 'trimesh', 'geomgen_sdf.winding'} & set(sys.modules))\n"
            "print(','.join(heavy))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_package_version_matches_distribution_metadata():
    text = (Path(geomgen_sdf.__file__).parents[1] / "pyproject.toml").read_text()
    assert f'version = "{geomgen_sdf.__version__}"' in text
