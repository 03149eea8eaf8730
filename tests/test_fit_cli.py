"""``geomgen render --save-cameras --save-masks`` -> ``geomgen fit``: the round trip and its bad inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from geomgen.cli import main
from geomgen.io import load_cameras, load_image, load_mesh, save_image
from geomgen.render import PerspectiveCameras
from geomgen.train import silhouette_iou


def _box_obj(path):
    v = [(x, y, z) for x in (-0.5, 0.5) for y in (-0.3, 0.3) for z in (-0.2, 0.2)]
    f = [(0, 1, 3), (0, 3, 2), (4, 6, 7), (4, 7, 5), (0, 4, 5), (0, 5, 1),
         (2, 3, 7), (2, 7, 6), (0, 2, 6), (0, 6, 4), (1, 5, 7), (1, 7, 3)]
    path.write_text("".join(f"v {x} {y} {z}\n" for x, y, z in v) + "".join(f"f {a+1} {b+1} {c+1}\n" for a, b, c in f))
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    root = tmp_path_factory.mktemp("fit")
    box = _box_obj(root / "box.obj")
    code = main(["render", str(box), "-o", str(root / "views.png"), "--size", "32", "--views", "6",
                 "--backend", "geomgen", "--save-cameras", str(root / "cams.json"),
                 "--save-masks", str(root / "masks")])
    assert code == 0
    return root


def _copy(rendered, tmp_path):
    shutil.copytree(rendered / "masks", tmp_path / "masks")
    shutil.copy(rendered / "cams.json", tmp_path / "cams.json")
    return tmp_path / "masks", tmp_path / "cams.json"


def test_render_writes_cameras_and_masks(rendered):
    cams = load_cameras(rendered / "cams.json")
    assert len(cams) == 6 and cams.image_size == (32, 32)
    assert cams.masks == [str(rendered / "masks" / f"view_{i:03d}.png") for i in range(6)]
    for m in cams.masks:
        img = load_image(m)
        assert img.shape == (3, 32, 32) and 0.1 < float((img.mean(0) > 0.5).float().mean()) < 0.9


def test_fit_round_trip_improves_iou(rendered, tmp_path, capsys):
    out = tmp_path / "fit.obj"
    code = main(["fit", str(rendered / "masks"), "--cameras", str(rendered / "cams.json"), "-o", str(out),
                 "--level", "2", "--iterations", "40", "--out-dir", str(tmp_path / "plots"), "--no-progress"])
    assert code == 0
    text = capsys.readouterr().out
    assert "silhouette IoU" in text and str(out) in text
    for name in ("loss.png", "losses.csv", "compare.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 0
    cams = load_cameras(rendered / "cams.json")
    cameras = PerspectiveCameras(cams.K, cams.world_from_camera, cams.image_size).to(dtype=torch.float32)
    masks = torch.stack([load_image(m).mean(0) > 0.5 for m in cams.masks])
    fitted = load_mesh(out)
    from geomgen.ops import ico_sphere
    from geomgen.structures import Meshes
    sphere = ico_sphere(2)
    sphere = Meshes([sphere.verts_list()[0] * 0.6], sphere.faces_list())
    before = float(silhouette_iou(sphere, cameras, masks).mean())
    after = float(silhouette_iou(fitted, cameras, masks).mean())
    assert before < 0.6 and after > 0.85, (before, after)


def test_fit_takes_files_in_name_order_without_mask_entries(rendered, tmp_path):
    masks, cams = _copy(rendered, tmp_path)
    doc = json.loads(cams.read_text())
    for view in doc["views"]:
        del view["mask"]
    cams.write_text(json.dumps(doc))
    assert main(["fit", str(masks), "--cameras", str(cams), "-o", str(tmp_path / "f.ply"), "--level", "1",
                 "--iterations", "2", "--no-progress"]) == 0


def _fails(capsys, argv, *names):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 1, err
    assert "Traceback" not in err
    for name in names:
        assert str(name) in err, err
    return err


def test_masks_of_different_sizes(rendered, tmp_path, capsys):
    masks, cams = _copy(rendered, tmp_path)
    save_image(masks / "view_003.png", np.full((20, 32), 255, np.uint8))
    _fails(capsys, ["fit", str(masks), "--cameras", str(cams), "-o", str(tmp_path / "f.obj")],
           masks / "view_003.png", "one size")


def test_unreadable_mask(rendered, tmp_path, capsys):
    masks, cams = _copy(rendered, tmp_path)
    (masks / "view_002.png").write_bytes(b"not a png")
    _fails(capsys, ["fit", str(masks), "--cameras", str(cams), "-o", str(tmp_path / "f.obj")],
           masks / "view_002.png")


def test_empty_mask(rendered, tmp_path, capsys):
    masks, cams = _copy(rendered, tmp_path)
    save_image(masks / "view_004.png", np.zeros((32, 32), np.uint8))
    _fails(capsys, ["fit", str(masks), "--cameras", str(cams), "-o", str(tmp_path / "f.obj")],
           masks / "view_004.png", "empty")


def test_mask_size_differs_from_cameras(rendered, tmp_path, capsys):
    masks, cams = _copy(rendered, tmp_path)
    for f in masks.iterdir():
        save_image(f, np.full((16, 16), 255, np.uint8))
    _fails(capsys, ["fit", str(masks), "--cameras", str(cams), "-o", str(tmp_path / "f.obj")], cams)


def test_camera_count_differs_from_mask_count(rendered, tmp_path, capsys):
    masks, cams = _copy(rendered, tmp_path)
    doc = json.loads(cams.read_text())
    for view in doc["views"]:
        del view["mask"]
    doc["views"] = doc["views"][:5]
    cams.write_text(json.dumps(doc))
    _fails(capsys, ["fit", str(masks), "--cameras", str(cams), "-o", str(tmp_path / "f.obj")],
           cams, masks, "6 mask images", "5 cameras")


def test_missing_named_mask(rendered, tmp_path, capsys):
    masks, cams = _copy(rendered, tmp_path)
    (masks / "view_001.png").unlink()
    _fails(capsys, ["fit", str(masks), "--cameras", str(cams), "-o", str(tmp_path / "f.obj")],
           cams, masks / "view_001.png")


def test_non_rigid_pose(rendered, tmp_path, capsys):
    masks, cams = _copy(rendered, tmp_path)
    doc = json.loads(cams.read_text())
    doc["views"][2]["world_from_camera"][0][0] *= 1.5
    cams.write_text(json.dumps(doc))
    _fails(capsys, ["fit", str(masks), "--cameras", str(cams), "-o", str(tmp_path / "f.obj")], cams, "rigid")


def test_bad_output_and_cameras_suffix(rendered, tmp_path, capsys):
    _fails(capsys, ["fit", str(rendered / "masks"), "--cameras", str(rendered / "cams.json"),
                    "-o", str(tmp_path / "f.png")], "f.png")
    _fails(capsys, ["render", str(rendered / "box.obj"), "-o", str(tmp_path / "v.png"), "--backend", "geomgen",
                    "--save-cameras", str(tmp_path / "c.txt")], "c.txt")


def test_transparent_pixels_are_background(rendered, tmp_path):
    from geomgen.cli.fit import load_masks

    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:20, 8:20] = 255  # opaque white square; the rest transparent (white RGB, alpha 0)
    rgba[:, :, :3] = 255
    save_image(tmp_path / "a.png", rgba)
    mask = load_masks([tmp_path / "a.png"], (32, 32), "cams.json")
    assert mask.shape == (1, 32, 32) and int(mask.sum()) == 144


def test_init_from_a_mesh_file(rendered, tmp_path, capsys):
    out = tmp_path / "f.obj"
    assert main(["fit", str(rendered / "masks"), "--cameras", str(rendered / "cams.json"), "-o", str(out),
                 "--init", str(rendered / "box.obj"), "--iterations", "2", "--no-progress"]) == 0
    assert load_mesh(out).num_verts_per_mesh().tolist() == [8]
    _fails(capsys, ["fit", str(rendered / "masks"), "--cameras", str(rendered / "cams.json"), "-o", str(out),
                    "--init", str(tmp_path / "none.obj")], tmp_path / "none.obj")
