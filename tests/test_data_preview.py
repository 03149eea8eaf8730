"""Contact sheets and the ``geomgen data`` command (list, info, build, preview)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from geomgen._registry import PluginManager, set_plugin_manager
from geomgen.cli import main
from geomgen.data.pipeline import SampleConfig
from geomgen.data.preview import make_contact_sheet, pick_indices
from geomgen.data.shapes import ShapesDataset
from geomgen.errors import InvalidInputError
from geomgen.io.images import image_grid

SETS = ["--set", "per_category=1", "--set", "categories=[\"box\",\"mug\",\"lamp\"]", "--set", "image_size=16",
        "--set", "num_views=2", "--set", "num_points=32", "--set", "num_occupancy=32", "--set", "resolution=20",
        "--set", "progress=false"]


@pytest.fixture
def manager(monkeypatch, tmp_path):
    monkeypatch.delenv("GEOMGEN_STRICT_PLUGINS", raising=False)
    monkeypatch.delenv("GEOMGEN_DISABLE_PLUGINS", raising=False)
    monkeypatch.setenv("GEOMGEN_CACHE_DIR", str(tmp_path / "cache"))
    pm = PluginManager()
    pm.load_default_plugins()
    saved = set_plugin_manager(pm)
    yield pm
    set_plugin_manager(saved)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def label_band() -> int:
    """Height of image_grid's label band (font dependent)."""
    return image_grid([torch.ones(3, 10, 10)], 1, padding=0, labels=["x"]).shape[1] - 10


def test_preview_writes_the_contact_sheet(capsys, manager, tmp_path):
    from PIL import Image

    out = tmp_path / "sheet.png"
    code, stdout, err = run(capsys, "data", "preview", "shapes", "-o", str(out), "-n", "3", "--split", "val", *SETS)
    assert code == 0, err
    assert f"wrote {out}" in stdout and out.is_file()
    with Image.open(out) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        w, h = im.size
        sheet = np.asarray(im)
    tile = 16 * 8  # 16 px images upsampled to reach --tile-size 128
    assert w == 4 * tile + 5 * 2 and h == 3 * (tile + label_band()) + 4 * 2
    # the first tile is the first sample's first view, upsampled (nearest)
    ds = ShapesDataset(None, "val", categories=["box", "mug", "lamp"], per_category=1, resolution=20, progress=False,
                       config=SampleConfig(image_size=16, num_views=2, num_points=32, num_occupancy=32))
    img = (ds[0]["images"][0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(sheet[2:2 + tile:8, 2:2 + tile:8], img)
    # mask column: white where the mask is set
    mask = ds[0]["masks"][0].numpy()
    x0 = 2 + 2 * (tile + 2)
    assert np.array_equal(sheet[2:2 + tile:8, x0:x0 + tile:8, 0] > 127, mask)
    # the GT mesh column shows the (blue) mesh on white
    x0 = 2 + 3 * (tile + 2)
    gt = sheet[2:2 + tile, x0:x0 + tile].astype(int)
    assert ((gt[..., 2] - gt[..., 0]) > 30).mean() > 0.05


def test_make_contact_sheet_api(tmp_path):
    ds = ShapesDataset(tmp_path, "train", categories=["torus", "cone"], per_category=2, resolution=20, progress=False,
                       config=SampleConfig(image_size=20, num_views=1, num_points=16, num_occupancy=16))
    assert pick_indices(ds, 3) == [0, 2, 1]  # cycles through the categories
    sheet = make_contact_sheet(ds, num=2, tile_size=40, labels=False)
    assert sheet.shape == (3, 2 * 40 + 3 * 2, 4 * 40 + 5 * 2) and sheet.dtype == torch.float32
    with pytest.raises(InvalidInputError, match="view"):
        make_contact_sheet(ds, num=1, view=1)
    with pytest.raises(InvalidInputError, match="num"):
        make_contact_sheet(ds, num=0)


def test_contact_sheet_of_samples_without_depth_or_mesh():
    class Partial(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return {"id": f"p{i}", "images": torch.full((1, 3, 8, 8), 0.5),
                    "masks": torch.ones(1, 8, 8, dtype=torch.bool)}

    sheet = make_contact_sheet(Partial(), num=2, tile_size=8, labels=False)
    assert sheet.shape == (3, 2 * 8 + 3 * 2, 4 * 8 + 5 * 2)
    depth_tile = sheet[:, 2:10, 12:20]
    mesh_tile = sheet[:, 2:10, 32:40]
    assert bool((depth_tile == 1).all()) and bool((mesh_tile == 1).all())  # blank tiles
    assert bool((sheet[:, 2:10, 2:10] - 0.5).abs().max() < 1e-6)


def test_list_info_and_build(capsys, manager, tmp_path):
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and all(n in out for n in ("shapes", "mesh-folder", "shapenet", "r2n2"))
    code, out, err = run(capsys, "data", "info", "shapes", "--json", "--split", "test", *SETS)
    assert code == 0, err
    info = json.loads(out)
    assert info["samples"] == 3 and info["categories"] == {"box": 1, "mug": 1, "lamp": 1}
    assert info["config"]["image_size"] == 16 and info["cache"].startswith(str(tmp_path / "cache"))
    code, out, err = run(capsys, "data", "build", "shapes", *SETS)
    assert code == 0, err
    assert "shapes [train]: 3 samples" in out and "shapes [val]" in out and "shapes [test]" in out


def test_config_prefix_and_dataset_keys_are_routed(capsys, manager, tmp_path):
    code, out, err = run(capsys, "data", "info", "shapes", "--json", *SETS, "--set", "config.fov=30")
    assert code == 0, err
    assert json.loads(out)["config"]["fov"] == 30


@pytest.mark.parametrize("argv, message", [
    (["data", "preview", "shape"], "did you mean 'shapes'"),
    (["data", "info", "shapes", "--set", "per_category"], "KEY=VALUE"),
    (["data", "info", "shapes", "--set", "flavour=3"], "flavour"),
    (["data", "preview", "shapes", "-o", "sheet.jpg", *SETS], "PNG"),
    (["data", "preview", "shapes", "-n", "0", *SETS], "--num"),
    (["data", "info", "shapes", "--set", "per_category={\"val\": 0}", "--split", "val"], "empty"),
])
def test_errors_are_clean(capsys, manager, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 1 and message.lower() in err.lower(), err
    assert "Traceback" not in err


def test_set_routing_is_one_rule_for_data_view_and_train(manager):
    """geomgen data, geomgen view/render --dataset and train's --data-config route options alike."""
    from geomgen.cli._args import parse_sets, route_dataset_options

    pairs = parse_sets(["per_category=1", "image_size=16", "config.fov=30", "split=val", "name=plain"])
    assert pairs[0] == ("per_category", 1) and pairs[-1] == ("name", "plain")
    kwargs = route_dataset_options("shapes", pairs, {"split": "train", "root": "r"})
    config = kwargs.pop("config")
    assert kwargs == {"split": "val", "root": "r", "per_category": 1, "name": "plain"}
    assert isinstance(config, SampleConfig) and (config.image_size, config.fov) == (16, 30)
    # a mapping (train's --data-config) goes through the same rule; builder keys are left as given
    assert route_dataset_options("shapes", {"resolution": 20, "config": {"num_views": 2}}) == {
        "resolution": 20, "config": {"num_views": 2}}
    merged = route_dataset_options("shapes", {"config": {"num_views": 2}, "image_size": 24})["config"]
    assert (merged.num_views, merged.image_size) == (2, 24)
    with pytest.raises(InvalidInputError, match="expected KEY=VALUE"):
        parse_sets(["=3"])


def test_builder_keywords_follow_the_dataset_class(manager):
    from geomgen.data.keywords import accepted_keywords, builder_keywords
    from geomgen.data.shapes import ShapesDataset

    shapes = accepted_keywords(ShapesDataset)
    assert {"root", "split", "per_category", "resolution", "config", "progress", "view"} <= shapes
    assert builder_keywords(manager.get_spec("dataset", "shapes").build) == shapes

    def plain(root=None, split="train", *, n=3):
        return None

    def open_ended(root=None, **kwargs):
        return None

    class Loose:
        def __init__(self, **kwargs):
            pass

    assert builder_keywords(plain) == {"root", "split", "n"}
    assert builder_keywords(open_ended) is None and accepted_keywords(Loose) is None
