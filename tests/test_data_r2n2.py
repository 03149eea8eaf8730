"""Tests of geomgen.data.r2n2 (3D-R2N2 renderings + voxels) and its format module.

Every test reads a tiny tree written by geomgen.testing.shapenet_fixtures: its
renderings come from a z-buffer rasteriser with cameras built from the closed
form of 3D-R2N2's Blender scene, independently of geomgen.data._r2n2_format,
and its binvox files use binvox's default placement (min corner, longest
edge), so agreement between images, cameras and voxels checks the loader's
conventions end to end.
"""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pytest
import torch

from geomgen.data import _r2n2_format as F
from geomgen.data.pipeline import SampleConfig
from geomgen.data.r2n2 import R2N2
from geomgen.errors import DatasetError, FileFormatError, InvalidInputError
from geomgen.io import load_binvox
from geomgen.ops import project_points
from geomgen.testing.shapenet_fixtures import parts_occupancy, r2n2_reference_camera, write_r2n2_tree

N_VIEWS = 3
SIZE = 64


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """5 models (3 chairs, 2 tables) with meshes and a split JSON; read-only."""
    return write_r2n2_tree(tmp_path_factory.mktemp("r2n2"), {"03001627": 3, "04379243": 2}, n_views=N_VIEWS,
                           image_size=SIZE, split_json=True)


@pytest.fixture
def fresh(tmp_path):
    """A writable tree (4 chairs, no meshes) for fault injection."""
    return write_r2n2_tree(tmp_path / "r2n2", {"03001627": 4}, n_views=N_VIEWS, image_size=32, shapenet=False)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GEOMGEN_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def quiet(**kw):
    """Build a dataset, failing on any warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return R2N2(progress=False, **kw)


# ----------------------------------------------------------------------------- cameras
def test_cameras_match_closed_form_of_the_blender_scene():
    rng = np.random.default_rng(0)
    meta = np.column_stack([rng.uniform(0, 360, 20), rng.uniform(-40, 60, 20), np.zeros(20),
                            rng.uniform(0.5, 1.0, 20), np.full(20, 25.0)])
    K, pose = F.r2n2_cameras(meta, (137, 137), dtype=torch.float64)
    assert K.shape == (20, 3, 3) and pose.shape == (20, 4, 4)
    for i in range(20):
        K_ref, cam_ref = r2n2_reference_camera(meta[i, 0], meta[i, 1], meta[i, 3], 137)
        np.testing.assert_allclose(torch.linalg.inv(pose[i]).numpy(), cam_ref, atol=1e-12)
        np.testing.assert_allclose(K[i].numpy(), K_ref, atol=1e-12)
    # rotations are proper, centres at distance ratio * 1.75
    R = pose[:, :3, :3]
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3, dtype=torch.float64).expand(20, 3, 3))
    assert torch.allclose(torch.linalg.det(R), torch.ones(20, dtype=torch.float64))
    torch.testing.assert_close(pose[:, :3, 3].norm(dim=1), torch.from_numpy(meta[:, 3] * 1.75))


def test_camera_axes_by_hand():
    # azimuth 90, elevation 0: eye on +z looking at -z, image right = +x, image down = -y
    K, pose = F.r2n2_cameras(np.array([[90.0, 0.0, 0.0, 1.0, 25.0]]), dtype=torch.float64)
    expect = torch.tensor([[1.0, 0, 0, 0], [0, -1, 0, 0], [0, 0, -1, 1.75], [0, 0, 0, 1]], dtype=torch.float64)
    torch.testing.assert_close(pose[0], expect, atol=1e-12, rtol=0)
    # Blender's default lens: 35 mm on a 32 mm sensor
    assert K[0, 0, 0].item() == pytest.approx(137 * 35 / 32) and K[0, 0, 2].item() == 68.5


def test_in_plane_rotation_turns_image_content_counter_clockwise():
    meta = np.array([[30.0, 25.0, 0.0, 0.8, 25.0], [30.0, 25.0, 12.0, 0.8, 25.0]])
    K, pose = F.r2n2_cameras(meta, dtype=torch.float64)
    pts = torch.tensor([[[0.0, 0.3, 0.0], [0.2, -0.1, 0.1]]], dtype=torch.float64)
    uv0, z0 = project_points(pts, K[0], world_from_camera=pose[0:1])
    uv1, z1 = project_points(pts, K[1], world_from_camera=pose[1:2])
    torch.testing.assert_close(z0, z1)  # same centre and optical axis
    c = torch.tensor([68.5, 68.5], dtype=torch.float64)
    a0 = torch.atan2(-(uv0[0, :, 1] - c[1]), uv0[0, :, 0] - c[0])  # angle with y up (as displayed)
    a1 = torch.atan2(-(uv1[0, :, 1] - c[1]), uv1[0, :, 0] - c[0])
    torch.testing.assert_close(torch.rad2deg(a1 - a0), torch.full((2,), 12.0, dtype=torch.float64))


def test_intrinsics_follow_resizing():
    meta = np.array([[10.0, 25.0, 0.0, 0.8, 25.0]])
    K, _ = F.r2n2_cameras(meta, (64, 32), rendered_size=(137, 137))
    f = 35 / 32 * 137
    torch.testing.assert_close(K[0], torch.tensor([[f * 32 / 137, 0, 16], [0, f * 64 / 137, 32], [0, 0, 1.0]]))


@pytest.mark.parametrize("bad", [np.zeros((3,)), np.zeros((2, 3)), np.full((1, 5), np.nan)])
def test_cameras_reject_bad_metadata(bad):
    with pytest.raises(InvalidInputError, match="metadata"):
        F.r2n2_cameras(bad)
    with pytest.raises(InvalidInputError, match="image_size"):
        F.r2n2_cameras(np.ones((1, 5)), (0, 3))


# ----------------------------------------------------------------------------- metadata, lists, splits
def test_read_metadata(tmp_path, tree):
    m = tree.models[0]
    np.testing.assert_allclose(F.read_rendering_metadata(m.files["metadata"]), m.metadata)
    assert F.read_renderings_list(m.files["renderings"]) == ["00.png", "01.png", "02.png"]
    p = tmp_path / "meta.txt"
    for text, match in [("", "empty"), ("1 2 3 4\n", "line 1"), ("1 2 3 0.5 25\n1 2 x 0.5 25\n", "line 2"),
                        ("1 2 3 -1 25\n", "distance ratio")]:
        p.write_text(text)
        with pytest.raises(FileFormatError, match=match) as e:
            F.read_rendering_metadata(p)
        assert str(p) in str(e.value)


def test_read_split_file_layouts(tmp_path, tree):
    splits = F.read_split_file(tree.split_file)
    assert set(splits) == {"train", "val", "test"}
    for m in tree.models:
        assert splits[m.split][(m.synset, m.model_id)] == [0, 1, 2]
    pix2vox = [{"taxonomy_id": "03001627", "taxonomy_name": "chair", "train": ["a", "b"], "val": [], "test": ["c"]}]
    p = tmp_path / "ShapeNet.json"
    p.write_text(json.dumps(pix2vox))
    got = F.read_split_file(p)
    assert got["train"] == {("03001627", "a"): None, ("03001627", "b"): None}
    assert got["test"] == {("03001627", "c"): None} and got["val"] == {}
    for bad in ["{", json.dumps({"train": ["a"]}), json.dumps(5), json.dumps({"train": {"1": {"m": ["x"]}}})]:
        p.write_text(bad)
        with pytest.raises(FileFormatError, match="split file") as e:
            F.read_split_file(p)
        assert str(p) in str(e.value)


# ----------------------------------------------------------------------------- voxels
def test_voxels_to_normalized_is_an_exact_whole_voxel_shift(tree):
    for m in tree.models:
        vox = load_binvox(m.files["binvox"], dtype=torch.float64)
        grid, center, scale = F.voxels_to_normalized(vox, m.files["binvox"])
        assert grid.shape == (32, 32, 32) and grid.dtype == torch.float32
        assert grid.sum() == vox.grids.sum()  # nothing lost
        lo, hi = m.parts[:, 0].min(0), m.parts[:, 1].max(0)
        assert scale == pytest.approx(float((hi - lo).max()))  # longest edge -> 1
        parts_n = (m.parts - center.numpy()) / scale
        # the same solid voxelised directly in geomgen's canonical grid: identical
        expect = parts_occupancy(parts_n, np.full(3, -0.5), 1 / 32, 32)
        assert torch.equal(grid.bool(), torch.from_numpy(expect))
        # bounding box centred to within one voxel, inside the unit cube
        lo_n, hi_n = parts_n[:, 0].min(0), parts_n[:, 1].max(0)
        assert np.abs((lo_n + hi_n) / 2).max() <= 1 / 32 + 1e-6
        assert lo_n.min() >= -0.5 - 1e-6 and hi_n.max() <= 0.5 + 1e-6  # header precision


def test_voxels_to_normalized_rejects_empty_and_anisotropic(tmp_path):
    from geomgen.structures import Voxels

    with pytest.raises(FileFormatError, match="empty"):
        F.voxels_to_normalized(Voxels(torch.zeros(1, 4, 4, 4), voxel_size=0.1), "x.binvox")
    with pytest.raises(FileFormatError, match="cube"):
        F.voxels_to_normalized(Voxels(torch.ones(1, 4, 4, 2), voxel_size=0.1), "x.binvox")
    with pytest.raises(FileFormatError, match="cubes"):
        F.voxels_to_normalized(Voxels(torch.ones(1, 4, 4, 4), voxel_size=[0.1, 0.2, 0.1]), "x.binvox")


# ----------------------------------------------------------------------------- dataset
def in_mask(points, K, pose, mask, dilate=1):
    """Fraction of ``points (P, 3)`` projecting into ``mask (H, W)`` dilated by ``dilate`` pixels."""
    m = mask.float()[None, None]
    if dilate:
        m = torch.nn.functional.max_pool2d(m, 2 * dilate + 1, stride=1, padding=dilate)
    m = m[0, 0] > 0
    uv, z = project_points(points[None].double(), K.double(), world_from_camera=pose[None].double())
    assert (z > 0).all()
    ij = uv[0].floor().long()
    H, W = mask.shape
    ok = (ij[:, 0] >= 0) & (ij[:, 0] < W) & (ij[:, 1] >= 0) & (ij[:, 1] < H)
    hits = torch.zeros(len(points), dtype=torch.bool)
    hits[ok] = m[ij[ok, 1], ij[ok, 0]]
    return hits.float().mean().item()


def voxel_centres(grid):
    kji = torch.nonzero(grid > 0.5).double()
    return -0.5 + (kji.flip(1) + 0.5) / grid.shape[0]  # x, y, z


def test_sample_keys_shapes_and_split_file(tree):
    ds = quiet(root=tree.root, split="train", split_file=tree.split_file, shapenet_root=tree.shapenet_root,
               config=SampleConfig(num_points=200, num_occupancy=64))
    assert {m.id for m in ds.models} == {m.id for m in tree.models if m.split == "train"}
    assert ds.categories == ["chair", "table"] and len(ds) == 4
    s = ds[0]
    assert s["id"] == ds.models[0].id and s["label"] == ds.categories.index(s["category"])
    assert s["images"].shape == (N_VIEWS, 3, SIZE, SIZE) and s["images"].dtype == torch.float32
    assert s["masks"].shape == (N_VIEWS, SIZE, SIZE) and s["masks"].dtype == torch.bool
    assert s["K"].shape == (N_VIEWS, 3, 3) and s["world_from_camera"].shape == (N_VIEWS, 4, 4)
    assert s["voxels"].shape == (32, 32, 32) and set(s["voxels"].unique().tolist()) <= {0.0, 1.0}
    assert s["view_indices"].tolist() == list(range(N_VIEWS))
    assert s["points"].shape == (200, 3) and s["normals"].shape == (200, 3)
    assert s["faces"].dtype == torch.int64 and "depths" not in s
    # the mesh is in the voxels' frame: longest edge 1, centred to within a voxel
    lo, hi = s["verts"].min(0).values, s["verts"].max(0).values
    assert (hi - lo).max().item() == pytest.approx(1.0, abs=1e-5)
    assert ((lo + hi) / 2).abs().max().item() <= 1 / 32 + 1e-5
    # deterministic
    again = ds[0]
    for k in ("images", "voxels", "points", "world_from_camera"):
        assert torch.equal(s[k], again[k])


def test_hash_split_partitions_the_models(tree):
    ids = [{m.id for m in quiet(root=tree.root, split=sp, splits=(0.4, 0.3, 0.3)).models}
           for sp in ("train", "val", "test") if _nonempty(tree, sp)]
    assert sum(len(x) for x in ids) == len(set().union(*ids)) == len(tree.models)


def _nonempty(tree, split):
    try:
        R2N2(tree.root, split, splits=(0.4, 0.3, 0.3))
        return True
    except InvalidInputError as e:
        assert "empty" in str(e)
        return False


def test_images_are_composited_on_white_and_masks_come_from_alpha(tree):
    from PIL import Image

    ds = quiet(root=tree.root, split="train", split_file=tree.split_file)
    s, m = ds[1], tree.model(ds.models[1].id)
    rgba = torch.from_numpy(np.array(Image.open(m.files["pngs"][2]))).float() / 255
    a = rgba[..., 3]
    assert torch.equal(s["masks"][2], a >= 0.5)
    expect = rgba[..., :3] * a[..., None] + (1 - a[..., None])
    torch.testing.assert_close(s["images"][2].permute(1, 2, 0), expect, atol=1e-6, rtol=0)
    assert (s["images"][2][:, a == 0] == 1).all() and (a == 0).any()


@pytest.mark.parametrize("image_size", [None, 40])
def test_images_cameras_and_voxels_agree(tree, image_size):
    ds = quiet(root=tree.root, split="train", split_file=tree.split_file, shapenet_root=tree.shapenet_root,
               image_size=image_size, config=SampleConfig(num_points=400, num_occupancy=8))
    for i in range(len(ds)):
        s = ds[i]
        vox = voxel_centres(s["voxels"])
        for v in range(N_VIEWS):
            K, pose, mask = s["K"][v], s["world_from_camera"][v], s["masks"][v]
            assert in_mask(vox, K, pose, mask) == 1.0  # every occupied voxel centre on the silhouette
            assert in_mask(s["points"], K, pose, mask) == 1.0  # and every surface sample
            # and the silhouette is covered by the projected voxels (no stray foreground)
            uv, _ = project_points(vox[None], K.double(), world_from_camera=pose[None].double())
            foot = torch.zeros_like(mask)
            ij = uv[0].floor().long().clamp(0, mask.shape[0] - 1)
            foot[ij[:, 1], ij[:, 0]] = True
            foot = torch.nn.functional.max_pool2d(foot.float()[None, None], 5, 1, 2)[0, 0] > 0
            assert (mask & ~foot).sum() == 0
    # the check has teeth: a mirrored world (x -> -x) misses the silhouette
    s = ds[0]
    mirror = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))
    bad = [in_mask(voxel_centres(s["voxels"]), s["K"][v], mirror @ s["world_from_camera"][v], s["masks"][v])
           for v in range(N_VIEWS)]
    assert min(bad) < 0.95


def test_views_selection(tree):
    kw = dict(root=tree.root, split="train", split_file=tree.split_file)
    full = quiet(**kw)[2]
    one = quiet(views=1, **kw)[2]
    assert one["images"].shape[0] == 1 and one["view_indices"].tolist() == [1]
    assert torch.equal(one["images"][0], full["images"][1]) and torch.equal(one["K"][0], full["K"][1])
    assert torch.equal(one["world_from_camera"][0], full["world_from_camera"][1])
    pair = quiet(views=[2, 0], **kw)[2]
    assert pair["view_indices"].tolist() == [2, 0]
    assert torch.equal(pair["world_from_camera"][0], full["world_from_camera"][2])
    rnd = quiet(views="random", **kw)
    torch.manual_seed(0)
    a = [rnd[2]["view_indices"].item() for _ in range(12)]
    torch.manual_seed(0)
    b = [rnd[2]["view_indices"].item() for _ in range(12)]
    assert a == b and set(a) == set(range(N_VIEWS))
    for _ in range(6):  # a random view carries its own image and camera
        s = rnd[2]
        k = s["view_indices"].item()
        assert torch.equal(s["images"][0], full["images"][k])
        assert torch.equal(s["world_from_camera"][0], full["world_from_camera"][k])
    with pytest.raises(InvalidInputError, match="views"):
        R2N2(tree.root, views="some")
    with pytest.warns(UserWarning, match=r"requested views \[7\]"), pytest.raises(DatasetError, match="empty"):
        R2N2(tree.root, views=[0, 7])


def test_categories_filter(tree):
    kw = dict(root=tree.root, split="train", split_file=tree.split_file)
    chairs = quiet(categories="chair", **kw)
    assert chairs.categories == ["chair"] and all(m.id.startswith("03001627/") for m in chairs.models)
    tables = quiet(categories=["4379243"], **kw)
    assert tables.categories == ["table"] and len(tables) == 2
    with pytest.raises(InvalidInputError, match="'sofa' is neither"):
        R2N2(categories=["sofa"], **kw)


def test_roots(tree, tmp_path):
    # root = the ShapeNetRendering folder itself: voxels found next to it
    a = quiet(root=tree.rendering_root, split="train", split_file=tree.split_file)
    assert a.voxels_root == tree.voxels_root and len(a) == 4
    # voxels elsewhere: voxels_root=
    elsewhere = tmp_path / "vox"
    shutil.copytree(tree.voxels_root, elsewhere)
    ren = tmp_path / "renders"
    shutil.copytree(tree.rendering_root, ren)
    b = quiet(root=ren, voxels_root=elsewhere, split="train", split_file=tree.split_file)
    assert torch.equal(b[0]["voxels"], a[0]["voxels"])
    with pytest.raises(InvalidInputError, match="voxels_root"):
        R2N2(ren)
    with pytest.raises(InvalidInputError, match="not a folder"):
        R2N2(tmp_path / "nope")
    empty = tmp_path / "empty"
    (empty / "ShapeNetRendering").mkdir(parents=True)
    (empty / "ShapeNetVox32").mkdir()
    with pytest.raises(DatasetError, match=r"split 'train' is empty: no model of the selected categories"):
        R2N2(empty)


def test_missing_files_are_skipped_with_one_warning(tmp_path):
    tree = write_r2n2_tree(tmp_path / "r", {"03001627": 6}, n_views=N_VIEWS, image_size=32)
    m = tree.models
    m[0].files["pngs"][1].unlink()
    m[1].files["metadata"].unlink()
    m[2].files["binvox"].unlink()
    m[3].files["obj"].unlink()
    m[4].files["metadata"].write_text("1 2 3\n")
    splits = {"train": {"03001627": {x.model_id: [0, 1, 2] for x in m}}}
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps(splits))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = R2N2(tree.root, "train", split_file=split_file, shapenet_root=tree.shapenet_root)
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "skipped 5 model(s)" in text and "5 skipped, 1 kept" in text
    for path in (m[0].files["rendering"], m[1].files["metadata"], m[2].files["binvox"], m[3].files["obj"],
                 m[4].files["metadata"]):
        assert str(path) in text
    assert "01.png" in text and "expected 5 finite numbers" in text
    assert [x.id for x in ds.models] == [m[5].id] and len(ds.skipped) == 5
    # all of them broken: a clear error after the warning
    m[5].files["binvox"].unlink()
    with pytest.warns(UserWarning, match="6 skipped"), \
            pytest.raises(DatasetError, match="all 6 models of the split were skipped"):
        R2N2(tree.root, "train", split_file=split_file, shapenet_root=tree.shapenet_root)


def test_truncated_png_is_replaced_by_another_view(fresh):
    ds = quiet(root=fresh.root, split="train", splits=(1.0, 0.0, 0.0))
    good = ds[0]
    png = fresh.model(ds.models[0].id).files["pngs"][1]
    png.write_bytes(png.read_bytes()[:60])
    with pytest.warns(UserWarning, match=str(png)):
        s = ds[0]
    assert s["images"].shape[0] == N_VIEWS and s["view_indices"].tolist() == [0, 2, 2]
    assert torch.equal(s["images"][1], good["images"][2])
    assert torch.equal(s["world_from_camera"][1], good["world_from_camera"][2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per file
        ds[0]


def test_unreadable_model_serves_the_next_one(fresh):
    ds = quiet(root=fresh.root, split="train", splits=(1.0, 0.0, 0.0))
    second = ds[1]
    for p in fresh.model(ds.models[0].id).files["pngs"]:
        p.write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    fresh.model(ds.models[2].id).files["binvox"].write_bytes(b"#binvox 1\ndim 32 32 32\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = ds[0]
    texts = [str(w.message) for w in caught]
    assert sum(f"model {ds.models[0].id}" in t and "next model" in t for t in texts) == 1
    assert sum("cannot decode rendering" in t for t in texts) == N_VIEWS  # one per file
    assert s["id"] == ds.models[1].id and torch.equal(s["images"], second["images"])
    with pytest.warns(UserWarning, match=f"model {ds.models[2].id}.*unreadable voxels"):
        assert ds[2]["id"] == ds.models[3].id
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ds[0]["id"] == ds.models[1].id  # remembered as bad: no new warning


def test_collate_with_dataloader(tree):
    collate_samples = pytest.importorskip("geomgen.data.collate").collate_samples
    from geomgen.structures import Meshes, Voxels

    ds = quiet(root=tree.root, split="train", split_file=tree.split_file, shapenet_root=tree.shapenet_root,
               config=SampleConfig(num_points=50, num_occupancy=16))
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate_samples)
    batches = list(loader)
    assert len(batches) == 2
    b = batches[0]
    assert b["images"].shape == (2, N_VIEWS, 3, SIZE, SIZE) and b["masks"].shape == (2, N_VIEWS, SIZE, SIZE)
    assert b["K"].shape == (2, N_VIEWS, 3, 3) and b["world_from_camera"].shape == (2, N_VIEWS, 4, 4)
    assert isinstance(b["voxels"], Voxels) and b["voxels"].grids.shape == (2, 32, 32, 32)
    assert isinstance(b["mesh"], Meshes) and len(b["mesh"]) == 2
    assert b["label"].tolist() == [ds[0]["label"], ds[1]["label"]] and b["id"] == [ds.models[0].id, ds.models[1].id]
    assert "depths" not in b


def test_cameras_agree_with_geomgen_render(tree):
    """R2N2's camera is geomgen's orbit camera (azimuth 90 - az), and geomgen's rasterizer
    reproduces the fixture's silhouettes from the sample's own mesh, K and pose."""
    render = pytest.importorskip("geomgen.render")
    from geomgen.structures import Meshes

    meta = tree.models[0].metadata
    _, pose = F.r2n2_cameras(meta, dtype=torch.float64)
    orbit = render.orbit_poses(torch.from_numpy(90.0 - meta[:, 0]), torch.from_numpy(meta[:, 1]),
                               torch.from_numpy(meta[:, 3] * F.MAX_CAMERA_DISTANCE))
    torch.testing.assert_close(pose, orbit, atol=1e-9, rtol=0)
    ds = quiet(root=tree.root, split="train", split_file=tree.split_file, shapenet_root=tree.shapenet_root,
               config=SampleConfig(num_points=10, num_occupancy=8))
    for i in range(len(ds)):
        s = ds[i]
        cams = render.PerspectiveCameras(s["K"], s["world_from_camera"], image_size=(SIZE, SIZE))
        frags = render.rasterize_meshes(Meshes([s["verts"]], [s["faces"]]), cams)
        m = s["masks"].float()[:, None]
        grown = torch.nn.functional.max_pool2d(m, 3, 1, 1)[:, 0] > 0
        shrunk = -torch.nn.functional.max_pool2d(-m, 3, 1, 1)[:, 0] > 0
        # pixel-centre coverage vs the fixture's 2x2-sample coverage: they may differ on the
        # silhouette's one-pixel border only
        assert not (frags.mask & ~grown).any() and not (shrunk & ~frags.mask).any()
        assert (frags.mask ^ s["masks"]).float().mean() < 0.03


def test_mesh_arrays_share_the_voxel_frame(tree):
    ds = quiet(root=tree.root, split="all", split_file=tree.split_file, shapenet_root=tree.shapenet_root,
               config=SampleConfig(num_points=16, num_occupancy=2000))
    assert len(ds) == len(tree.models) and ds.cache is not None and ds.cache.path.name.startswith("r2n2-v")
    for i in range(len(ds)):
        s = ds[i]
        assert s["occ_points"].shape == (2000, 3) and s["occ_labels"].shape == (2000,)
        inside = s["occ_points"][s["occ_labels"] > 0.5]
        assert len(inside) > 50
        # a point inside the mesh lies in an occupied R2N2 voxel (the fixture's binvox marks
        # every voxel overlapping the solid): the mesh and the voxels are in one frame
        ijk = ((inside.double() + 0.5) * 32).floor().long().clamp(0, 31)
        assert bool((s["voxels"][ijk[:, 2], ijk[:, 1], ijk[:, 0]] == 1).all())


def test_mesh_that_does_not_fit_its_voxels_is_skipped(tmp_path):
    tree = write_r2n2_tree(tmp_path / "r", {"03001627": 2}, n_views=1, image_size=16)
    obj = tree.models[0].files["obj"]
    lines = [" ".join(["v"] + [str(2 * float(x)) for x in ln.split()[1:]]) if ln.startswith("v ") else ln
             for ln in obj.read_text().splitlines()]
    obj.write_text("\n".join(lines) + "\n")  # twice as large as its binvox says
    with pytest.warns(UserWarning, match=r"(?s)skipped 1 model.*" + tree.models[0].id + ".*normalised"):
        ds = R2N2(tree.root, "all", shapenet_root=tree.shapenet_root, progress=False,
                  config=SampleConfig(num_points=8, num_occupancy=8))
    assert [m.id for m in ds.models] == [tree.models[1].id]


def test_split_all_merges_split_file_views(tmp_path):
    tree = write_r2n2_tree(tmp_path / "r", {"03001627": 2}, n_views=3, image_size=16, shapenet=False)
    a, b = tree.models
    doc = {"train": {"03001627": {a.model_id: [0, 2]}}, "test": {"03001627": {a.model_id: [1], b.model_id: [0]}}}
    split_file = tmp_path / "split.json"
    split_file.write_text(json.dumps(doc))
    train = quiet(root=tree.root, split="train", split_file=split_file)
    assert [m.id for m in train.models] == [a.id] and train[0]["view_indices"].tolist() == [0, 2]
    both = quiet(root=tree.root, split="all", split_file=split_file)
    assert {m.id: m.views for m in both.models} == {a.id: (0, 1, 2), b.id: (0,)}
    assert both.categories == ["chair"] and both[0]["label"] == 0


def test_registered_as_a_dataset(tree):
    import geomgen

    get_dataset = getattr(geomgen, "get_dataset", None)
    if get_dataset is None:
        pytest.skip("geomgen.get_dataset not available")
    ds = get_dataset("r2n2", root=str(tree.root), split="train", split_file=str(tree.split_file), view="random",
                     progress=False)
    assert isinstance(ds, R2N2) and len(ds) == 4 and ds[0]["images"].shape[0] == 1


def test_info_and_contact_sheet(tree):
    ds = quiet(root=tree.root, split="train", split_file=tree.split_file, shapenet_root=tree.shapenet_root,
               config=SampleConfig(num_points=8, num_occupancy=8))
    info = ds.info()
    assert info["samples"] == 4 and info["categories"] == {"chair": 2, "table": 2} and info["skipped"] == 0
    assert json.loads(json.dumps(info)) == info and info["cache_bytes"] > 0
    preview = pytest.importorskip("geomgen.data.preview")
    sheet = preview.make_contact_sheet(ds, num=2)
    assert sheet.dim() == 3 and sheet.shape[0] == 3
