"""geomgen.viewer.offscreen: Open3D's offscreen PNG against geomgen's rasterizer,
the geomgen backend without Open3D, and ``geomgen render``.

The Open3D render runs in a subprocess (Filament can abort the process on a
broken driver); the test skips with its stderr when it cannot start.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from geomgen.errors import BackendUnavailableError
from geomgen.ops import ico_sphere
from geomgen.structures import Meshes, PointClouds

SIZE = 96


def _mesh() -> Meshes:
    """An ellipsoid, not symmetric under the orbit, centred with a longest edge of 1."""
    s = ico_sphere(2)
    v = s.verts_list()[0].double() * torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    v[:, 0] += 0.1 * v[:, 1] / 0.3  # shear
    lo, hi = v.amin(0), v.amax(0)
    return Meshes([(v - (lo + hi) / 2) / (hi - lo).max()], [s.faces_list()[0]])


def _silhouette(img: np.ndarray) -> np.ndarray:
    return (255 - img.astype(np.int16)).max(-1) > 6


_SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np, torch
    torch.set_num_threads(1)
    from geomgen.structures import Meshes
    from geomgen.viewer import offscreen

    offscreen._probe = lambda: (True, "")  # this subprocess is the probe
    data = np.load(sys.argv[1])
    mesh = Meshes([torch.from_numpy(data["verts"])], [torch.from_numpy(data["faces"])])
    img, used = offscreen.render_images(mesh, width=int(data["size"]), height=int(data["size"]), views=2,
                                        backend="open3d")
    assert used == "open3d"
    np.save(sys.argv[2], img)
    import os
    os._exit(0)  # skip Filament's teardown, which can hang on a loaded machine
    """
)


@pytest.mark.skipif(importlib.util.find_spec("open3d") is None, reason="open3d is not installed")
def test_open3d_silhouette_matches_geomgen(tmp_path):
    from geomgen.viewer import render_images

    mesh = _mesh()
    np.savez(tmp_path / "in.npz", verts=mesh.verts_list()[0].numpy(), faces=mesh.faces_list()[0].numpy(),
             size=SIZE)
    (tmp_path / "r.py").write_text(_SCRIPT)
    try:
        proc = subprocess.run([sys.executable, str(tmp_path / "r.py"), str(tmp_path / "in.npz"),
                               str(tmp_path / "out.npy")], capture_output=True, text=True, timeout=90)
        code, stderr = proc.returncode, proc.stderr
    except subprocess.TimeoutExpired as exc:
        if not (tmp_path / "out.npy").is_file():
            pytest.skip("Open3D's offscreen renderer did not finish within 90 s")
        code, stderr = 0, str(exc.stderr)  # rendered, then hung on exit
    if code != 0 or not (tmp_path / "out.npy").is_file():
        pytest.skip(f"Open3D's offscreen renderer could not run (exit {code}): {stderr[-600:]}")
    theirs = np.load(tmp_path / "out.npy")
    ours, used = render_images(mesh, width=SIZE, height=SIZE, views=2, backend="geomgen")
    assert used == "geomgen"
    assert theirs.shape == ours.shape == (SIZE, 2 * SIZE, 3)
    assert (theirs[0, 0] == 255).all() and (ours[0, 0] == 255).all()  # white background
    for k in range(2):
        a = _silhouette(theirs[:, k * SIZE:(k + 1) * SIZE])
        b = _silhouette(ours[:, k * SIZE:(k + 1) * SIZE])
        assert b.sum() > 0.1 * SIZE * SIZE, "the mesh should fill a good part of the view"
        iou = (a & b).sum() / (a | b).sum()
        assert iou >= 0.97, f"view {k}: silhouette IoU {iou:.4f}"
    # the two orbit views differ
    assert (_silhouette(ours[:, :SIZE]) != _silhouette(ours[:, SIZE:])).sum() > 20


@pytest.fixture
def no_open3d(monkeypatch):
    from geomgen.viewer import offscreen

    offscreen._probe.cache_clear()
    monkeypatch.setitem(sys.modules, "open3d", None)  # `import open3d` raises ImportError
    yield
    offscreen._probe.cache_clear()


def test_geomgen_backend_without_open3d(no_open3d, tmp_path):
    from geomgen.io import load_image
    from geomgen.viewer import open3d_renderer_available, render_png

    ok, reason = open3d_renderer_available()
    assert not ok and "pip install geomgen[viewer]" in reason
    path, used = render_png([_mesh(), PointClouds([torch.rand(200, 3)])], tmp_path / "a.png", width=64,
                            height=48, views=3)
    assert used == "geomgen" and path.is_file()
    img = load_image(path)
    assert tuple(img.shape) == (3, 48, 3 * 64)
    arr = (img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    sil = _silhouette(arr[:, :64])
    cols = np.nonzero(sil.any(0))[0]
    assert sil.sum() > 100 and cols.min() < 32 < cols.max()  # mesh on the left, points on the right
    with pytest.raises(BackendUnavailableError, match="open3d"):
        render_png(_mesh(), tmp_path / "b.png", backend="open3d")


def test_render_cli_writes_png(tmp_path, capsys):
    from PIL import Image

    from geomgen.cli import main
    from geomgen.io import save_mesh

    save_mesh(tmp_path / "m.obj", _mesh())
    out = tmp_path / "sub" / "out.png"
    code = main(["render", str(tmp_path / "m.obj"), str(tmp_path / "m.obj"), "-o", str(out), "--size", "40",
                 "--views", "2", "--backend", "geomgen"])
    assert code == 0
    printed = capsys.readouterr().out
    assert str(out) in printed and "geomgen" in printed
    with Image.open(out) as im:
        assert im.size == (80, 40)
    assert main(["render", str(tmp_path / "missing.ply"), "-o", str(out)]) == 1
    assert "missing.ply" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["render", str(tmp_path / "m.obj")])  # no -o
    assert info.value.code == 2


def test_render_cli_dataset_samples_beside_predictions(tmp_path, capsys):
    """``--dataset`` puts the GT mesh and points first, ``--repr`` adds each model's
    prediction of the sample's first view (object frame) beside them."""
    from PIL import Image

    from geomgen.cli import main

    sets = ["--set", f'root="{tmp_path / "data"}"', "--set", 'categories=["box", "sphere"]',
            "--set", "per_category=2", "--set", "resolution=16", "--set", "progress=false"]
    out = tmp_path / "pred.png"
    code = main(["render", "--dataset", "shapes", *sets, "--index", "0", "--index", "1",
                 "--repr", "voxel", "--repr", "mesh", "-o", str(out), "--size", "96", "--backend", "geomgen"])
    assert code == 0, capsys.readouterr().err
    with Image.open(out) as im:
        arr = np.asarray(im.convert("RGB"))
    sil = _silhouette(arr)
    cols = np.nonzero(sil.any(0))[0]
    assert sil.sum() > 200 and cols.min() < 24 and cols.max() > 72  # four objects spread along the row
    assert main(["render", "--dataset", "shapes", *sets, "--index", "9", "-o", str(out)]) == 1
    assert "--index 9" in capsys.readouterr().err
    assert main(["render", "--repr", "voxel", "-o", str(out)]) == 1
    assert "--predict" in capsys.readouterr().err
    assert main(["render", "-o", str(out)]) == 1
    assert "nothing to show" in capsys.readouterr().err


def test_render_cli_predictions_of_images(tmp_path, capsys):
    from pathlib import Path

    from geomgen.cli import main

    examples = Path(__file__).resolve().parents[1] / "assets" / "examples"
    out = tmp_path / "p.png"
    code = main(["render", "--predict", str(examples / "chair.png"), str(examples / "mug.png"),
                 "--repr", "pointcloud", "-o", str(out), "--size", "64", "--backend", "geomgen"])
    assert code == 0 and out.is_file(), capsys.readouterr().err
    assert main(["render", "--predict", str(tmp_path / "nope.png"), "-o", str(out)]) == 1
    assert "nope.png" in capsys.readouterr().err
