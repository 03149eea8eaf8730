"""geomgen.viewer: scene conversion, the interactive window (under Xvfb) and ``geomgen view``.

The window tests run in a subprocess under ``xvfb-run`` so that a missing
display, a GL context failure or a driver crash skips instead of failing or
killing pytest.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from geomgen.errors import FileFormatError, GeomgenError, InvalidInputError, MeshFileNotFoundError
from geomgen.ops import ico_sphere
from geomgen.structures import DepthMaps, Meshes, PointClouds, Voxels

HAS_O3D = importlib.util.find_spec("open3d") is not None
needs_o3d = pytest.mark.skipif(not HAS_O3D, reason="open3d is not installed")


def _box(lo=(-1.0, -0.5, -0.25), hi=(1.0, 0.5, 0.25)) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = torch.tensor(lo), torch.tensor(hi)
    corners = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=torch.float32)
    verts = lo + corners * (hi - lo)
    faces = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                          [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    return verts, faces


def _bounds(g):
    box = g.get_axis_aligned_bounding_box()
    return np.asarray(box.get_min_bound()), np.asarray(box.get_max_bound())


# ----------------------------------------------------------------------------- scene conversion
@needs_o3d
def test_meshes_pointclouds_to_items():
    import open3d as o3d

    from geomgen.viewer import to_items

    sphere = ico_sphere(1)
    v, f = _box()
    items = to_items(Meshes([sphere.verts_list()[0], v], [sphere.faces_list()[0], f]))
    assert len(items) == 2 and all(len(it) == 1 for it in items)
    assert isinstance(items[1][0], o3d.geometry.TriangleMesh)
    assert len(items[1][0].triangles) == 12 and items[1][0].has_vertex_normals()
    np.testing.assert_allclose(np.asarray(items[1][0].vertices), v.numpy(), atol=1e-6)  # world coords kept
    pts = to_items(PointClouds([torch.rand(50, 3), torch.rand(20, 3)]))
    assert [len(it[0].points) for it in pts] == [50, 20]
    assert len(to_items(torch.rand(7, 3))) == 1 and len(to_items(torch.rand(3, 7, 3))) == 3
    with pytest.raises(InvalidInputError):
        to_items(torch.rand(7, 2))


@needs_o3d
def test_voxels_and_depth_to_items():
    import open3d as o3d

    from geomgen.viewer import to_items

    grid = torch.zeros(2, 3, 3, 3)
    grid[0, 1, 1, 1] = 1
    grid[1, :, 0, 0] = 1
    items = to_items(Voxels(grid, voxel_size=0.5, origin=(1.0, 0.0, 0.0)))
    assert len(items) == 2
    lo, hi = _bounds(items[0][0])
    np.testing.assert_allclose(lo, [1.5, 0.5, 0.5]) and np.testing.assert_allclose(hi, [2.0, 1.0, 1.0])
    assert len(items[0][0].triangles) == 12  # one cube
    grids = to_items(Voxels(grid), voxels_as="grid")
    assert isinstance(grids[1][0], o3d.geometry.VoxelGrid) and len(grids[1][0].get_voxels()) == 3
    depth = torch.full((1, 4, 6), 2.0)
    depth[0, 0, 0] = 0  # masked out
    K = torch.tensor([[4.0, 0, 3], [0, 4, 2], [0, 0, 1]])
    pts = np.asarray(to_items(DepthMaps(depth, K))[0][0].points)
    assert pts.shape == (23, 3)
    np.testing.assert_allclose(pts[:, 2], -2.0)  # camera z shown as -z (OpenGL axes)
    # pixel (u=5, v=3), centre (5.5, 3.5): x = (5.5 - 3) / 4 * 2, y = -(3.5 - 2) / 4 * 2
    np.testing.assert_allclose(pts[-1], [1.25, -0.75, -2.0])


@needs_o3d
def test_side_by_side_layout_and_batch():
    from geomgen.viewer import build_items

    sphere = ico_sphere(1)
    v, f = _box()
    big = Meshes([v * 10], [f])
    items = build_items(sphere, big, torch.rand(30, 3) + 100)
    assert len(items) == 1 and len(items[0]) == 3
    boxes = [_bounds(g) for g in items[0]]
    for lo, hi in boxes:  # each normalised to a longest edge of 1
        assert abs((hi - lo).max() - 1.0) < 1e-6
    centres = [(lo + hi) / 2 for lo, hi in boxes]
    assert centres[0][0] < centres[1][0] < centres[2][0]  # left to right in argument order
    assert boxes[1][0][0] - boxes[0][1][0] == pytest.approx(0.25)  # gap
    assert boxes[2][0][0] - boxes[1][1][0] == pytest.approx(0.25)
    assert boxes[0][0][0] + boxes[2][1][0] == pytest.approx(0.0, abs=1e-6)  # row centred
    # a batch of 2 beside a single object: the single one repeats
    two = Meshes([v, v * 2], [f, f])
    assert len(build_items(two, sphere)) == 2
    batch = build_items(two, sphere, layout="batch")
    assert len(batch) == 3 and all(len(it) == 1 for it in batch)
    sample = {"verts": v, "faces": f, "points": torch.rand(40, 3), "normals": torch.rand(40, 3)}
    s_items = build_items(sample)
    assert len(s_items) == 1 and len(s_items[0]) == 2
    assert _bounds(s_items[0][0])[1][0] < _bounds(s_items[0][1])[0][0]  # mesh left of points
    with pytest.raises(InvalidInputError):
        build_items(sphere, layout="grid")


@needs_o3d
def test_files_and_bad_files(tmp_path):
    from geomgen.io import save_mesh
    from geomgen.viewer import build_items, to_items

    save_mesh(tmp_path / "s.obj", ico_sphere(1))
    assert len(to_items(tmp_path / "s.obj")[0][0].triangles) == 80
    np.savetxt(tmp_path / "p.xyz", np.random.rand(10, 3))
    assert len(to_items(str(tmp_path / "p.xyz"))[0][0].points) == 10
    np.save(tmp_path / "g.npy", np.ones((2, 2, 2), np.float32))
    assert len(to_items(tmp_path / "g.npy")[0][0].triangles) == 48  # a 2x2x2 block, 2x2 squares per side
    np.savez(tmp_path / "v.npz", voxels=np.ones((3, 3, 3), bool))
    assert len(to_items(tmp_path / "v.npz")) == 1
    with pytest.raises(MeshFileNotFoundError, match="missing.obj"):
        build_items(tmp_path / "missing.obj")
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(FileFormatError, match="bad.npz"):
        to_items(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", labels=np.arange(4))
    with pytest.raises(FileFormatError, match="other.npz"):
        to_items(tmp_path / "other.npz")
    K = np.array([[20.0, 0, 8], [0, 20.0, 6], [0, 0, 1]], np.float32)
    depth = np.zeros((12, 16), np.float32)
    depth[3:9, 4:12] = 2.0  # a 6 x 8 patch two units in front of the camera
    np.savez(tmp_path / "d.npz", depth=depth, K=K)
    (pts,), = to_items(tmp_path / "d.npz")
    xyz = np.asarray(pts.points)
    assert xyz.shape == (48, 3) and np.allclose(xyz[:, 2], -2.0)  # camera frame shown y-up, looking down -z
    np.savez(tmp_path / "d2.npz", depth=np.stack([depth, depth]), K=K, mask=np.ones((2, 12, 16), bool) & (depth > 0))
    assert len(to_items(tmp_path / "d2.npz")) == 2
    np.savez(tmp_path / "noK.npz", depth=depth)
    with pytest.raises(FileFormatError, match=r"noK\.npz.*a depth map needs its intrinsics"):
        to_items(tmp_path / "noK.npz")
    np.savez(tmp_path / "badmask.npz", depth=depth, K=K, mask=np.ones((3, 3), bool))
    with pytest.raises(FileFormatError, match="badmask.npz"):
        to_items(tmp_path / "badmask.npz")
    (tmp_path / "bad.obj").write_text("this is not an obj\n")
    with pytest.raises(GeomgenError, match="bad.obj"):
        to_items(tmp_path / "bad.obj")


def test_missing_open3d_is_a_clear_error(monkeypatch):
    from geomgen.errors import BackendUnavailableError
    from geomgen.viewer import show

    monkeypatch.setitem(sys.modules, "open3d", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install geomgen\[viewer\]"):
        show(ico_sphere(0), block=False)


# ----------------------------------------------------------------------------- no display
def test_show_without_display_raises(monkeypatch):
    from geomgen.errors import DisplayUnavailableError
    from geomgen.viewer import show

    if not HAS_O3D:
        pytest.skip("open3d is not installed")
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    with pytest.raises(DisplayUnavailableError, match="xvfb-run") as info:
        show(ico_sphere(0), block=False)
    assert "geomgen render" in str(info.value)


def test_view_cli_without_display_exits_1(tmp_path, monkeypatch, capsys):
    from geomgen.cli import main
    from geomgen.io import save_mesh

    save_mesh(tmp_path / "s.obj", ico_sphere(0))
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert main(["view", str(tmp_path / "s.obj")]) == 1
    err = capsys.readouterr().err
    assert "geomgen render" in err and "display" in err
    assert main(["view", str(tmp_path / "nope.obj")]) == 1
    assert "nope.obj" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["view", str(tmp_path / "s.obj"), "--batch", "--side-by-side"])
    assert info.value.code == 2


# ----------------------------------------------------------------------------- window under Xvfb
_WINDOW_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from geomgen.errors import DisplayUnavailableError
    from geomgen.ops import ico_sphere
    from geomgen.structures import Meshes
    from geomgen.viewer import show

    out = sys.argv[1]
    s = ico_sphere(2)
    v, f = s.verts_list()[0], s.faces_list()[0]
    box_v = torch.tensor([[i, j, k] for i in (-1., 1.) for j in (-1., 1.) for k in (-1., 1.)]) * 0.5
    box_f = torch.tensor([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                          [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]])
    meshes = Meshes([v, box_v], [f, box_f])
    try:
        viewer = show(meshes, torch.tensor([[3.0, 0, 0]]), width=320, height=240, block=False, verbose=False)
    except DisplayUnavailableError as exc:
        print("NO_GL", exc)
        sys.exit(3)
    viewer.step()
    a = viewer.capture()
    viewer.screenshot(out + "/first.png")
    viewer.next()
    viewer.step()
    b = viewer.capture()
    assert viewer.toggle_wireframe() is True
    viewer.step()
    c = viewer.capture()
    viewer.previous()
    assert viewer.index == 0
    viewer.close()
    viewer.close()
    np.savez(out + "/shots.npz", a=a, b=b, c=c)
    print("DONE")
    """
)


@needs_o3d
def test_window_screenshot_under_xvfb(tmp_path):
    if shutil.which("xvfb-run") is None:
        pytest.skip("xvfb-run is not installed")
    (tmp_path / "win.py").write_text(_WINDOW_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["OMP_NUM_THREADS"] = "1"
    cmd = ["xvfb-run", "-a", "-s", "-screen 0 1024x768x24", sys.executable, str(tmp_path / "win.py"),
           str(tmp_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.skip("the Xvfb window test did not finish within 120 s")
    if proc.returncode == 3 or (proc.returncode < 0 or proc.returncode > 128):
        pytest.skip(f"no OpenGL window under Xvfb (exit {proc.returncode}): {proc.stdout[-300:]} "
                    f"{proc.stderr[-300:]}")
    assert proc.returncode == 0, proc.stdout[-1000:] + proc.stderr[-2000:]
    assert "DONE" in proc.stdout
    assert (tmp_path / "first.png").is_file()
    shots = np.load(tmp_path / "shots.npz")
    a, b, c = shots["a"], shots["b"], shots["c"]
    assert a.shape == (240, 320, 3)
    fg = (np.abs(a - 1.0).max(-1) > 0.02)  # not the white background
    h, w = fg.shape
    # the mesh sits left of centre (the point is on the right); nothing near the top/bottom edges
    assert fg[h // 2 - 10:h // 2 + 10, int(0.2 * w):int(0.45 * w)].mean() > 0.9
    assert not fg[:10].any() and not fg[-10:].any()
    assert not fg[:, :10].any()
    cols = np.nonzero(fg.any(0))[0]
    assert cols.min() < w // 2
    assert np.abs(a - b).max() > 0.1, "stepping to the next batch element must change the picture"
    assert np.abs(b - c).max() > 0.05, "the wireframe must change the picture"
