"""collate_samples: geomgen structures, cameras/voxels consistent with the data, DataLoader workers, DDP."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from geomgen.data.collate import collate_samples
from geomgen.data.pipeline import SampleConfig
from geomgen.data.shapes import ShapesDataset
from geomgen.errors import InvalidInputError
from geomgen.render import PerspectiveCameras, render_meshes
from geomgen.structures import Meshes, PointClouds, Voxels

TINY = SampleConfig(image_size=24, num_views=3, num_points=200, num_occupancy=600, voxel_resolution=16)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("collate-cache")


def shapes(root, view="all", split="train"):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return ShapesDataset(root, split, categories=["box", "torus", "mug", "lamp"],
                             per_category={"train": 2, "val": 1, "test": 0}, config=TINY, resolution=24,
                             view=view, progress=False)


@pytest.fixture(scope="module")
def ds(root):
    return shapes(root)


def test_batch_structure(ds):
    b = collate_samples([ds[i] for i in range(3)])
    assert b["id"] == [ds.records[i].id for i in range(3)] and b["category"] == ["box", "box", "torus"]
    assert b["label"].dtype == torch.int64 and b["label"].tolist() == [0, 0, 1]
    assert isinstance(b["mesh"], Meshes) and len(b["mesh"]) == 3
    assert torch.equal(b["mesh"].verts_list()[2], ds[2]["verts"])
    assert torch.equal(b["mesh"].faces_list()[2], ds[2]["faces"])
    assert b["images"].shape == (3, 3, 3, 24, 24) and b["depths"].shape == b["masks"].shape == (3, 3, 24, 24)
    assert b["K"].shape == (3, 3, 3, 3) and b["world_from_camera"].shape == (3, 3, 4, 4)
    assert b["view_indices"].tolist() == [[0, 1, 2]] * 3
    assert b["occ_points"].shape == (3, 600, 3) and b["occ_labels"].shape == (3, 600)
    assert isinstance(b["pointclouds"], PointClouds) and b["pointclouds"].points_padded().shape == (3, 200, 3)
    assert torch.equal(b["pointclouds"].normals_padded()[1], ds[1]["normals"])
    assert isinstance(b["voxels"], Voxels) and b["voxels"].grids.shape == (3, 16, 16, 16)
    assert not {"verts", "faces", "points", "normals"} & set(b)


def test_cameras_are_mesh_major_and_rerender_the_depths(ds):
    b = collate_samples([ds[i] for i in (0, 3, 5)])
    cams = b["cameras"]
    assert isinstance(cams, PerspectiveCameras) and len(cams) == 9 and cams.image_size == (24, 24)
    for bi in range(3):
        for s in range(3):
            assert torch.equal(cams.K[bi * 3 + s], b["K"][bi, s])
            assert torch.equal(cams.world_from_camera[bi * 3 + s], b["world_from_camera"][bi, s])
    res = render_meshes(b["mesh"], cams, colors=torch.tensor([0.72, 0.72, 0.75]))
    depths = b["depths"].reshape(9, 24, 24)
    masks = b["masks"].reshape(9, 24, 24)
    assert float((res.mask == masks).float().mean()) > 0.999
    both = res.mask & masks
    assert torch.allclose(res.depth[both], depths[both], atol=1e-4)
    stored = b["images"].reshape(9, 3, 24, 24).permute(0, 2, 3, 1)
    assert torch.allclose(res.image.permute(0, 2, 3, 1)[both], stored[both], atol=1.5 / 255)


def test_voxels_are_placed_on_the_unit_cube(ds):
    b = collate_samples([ds[i] for i in range(4)])
    vox = b["voxels"]
    assert torch.allclose(vox.origin, torch.full((4, 3), -0.5))
    assert torch.allclose(vox.voxel_size, torch.full((4, 3), 1 / 16))
    # a point labelled inside lies in a voxel that is set (its centre is inside, or the voxel meets the surface)
    for n in range(4):
        inside = b["occ_points"][n][b["occ_labels"][n] > 0.5]
        idx = vox.world_to_grid(inside)[n].floor().long()
        ok = ((idx >= 0) & (idx < 16)).all(dim=1)
        i, j, k = idx[ok].unbind(1)
        assert int(ok.sum()) > 20 and bool((vox.grids[n, k, j, i] == 1).all())


def test_single_view_batches_and_mismatches(root, ds):
    one = shapes(root, view=1)
    b = collate_samples([one[0], one[1]])
    assert b["images"].shape == (2, 1, 3, 24, 24) and len(b["cameras"]) == 2
    with pytest.raises(InvalidInputError, match=r"key 'images' has shape \(1, 3, 24, 24\).*view='random'"):
        collate_samples([ds[0], one[1]])
    s = dict(ds[0])
    del s["depths"]
    with pytest.raises(InvalidInputError, match=r"different keys.*depths"):
        collate_samples([ds[1], s])
    with pytest.raises(InvalidInputError, match="non-empty"):
        collate_samples([])
    with pytest.raises(InvalidInputError, match="must be a dict"):
        collate_samples([ds[0], 3])


def test_partial_samples_like_r2n2(ds):
    """Keys a dataset lacks are left out; cameras take their size from the images."""
    samples = []
    for i in range(2):
        s = ds[i]
        samples.append({k: s[k] for k in ("id", "category", "label", "images", "masks", "K", "world_from_camera",
                                          "voxels", "view_indices")})
    b = collate_samples(samples)
    assert "mesh" not in b and "depths" not in b and "pointclouds" not in b
    assert len(b["cameras"]) == 6 and b["voxels"].grids.shape == (2, 16, 16, 16)
    extra = [dict(s, extra=torch.ones(2), note="x") for s in samples]
    b = collate_samples(extra)
    assert b["extra"].shape == (2, 2) and b["note"] == ["x", "x"]


def test_dataloader_with_workers_and_random_views(root):
    rnd = shapes(root, view="random")
    torch.manual_seed(0)
    loader = DataLoader(rnd, batch_size=3, num_workers=2, collate_fn=collate_samples,
                        multiprocessing_context="fork", persistent_workers=False)
    seen, views = [], []
    for _ in range(3):
        for batch in loader:
            assert batch["images"].shape[1] == 1 and isinstance(batch["cameras"], PerspectiveCameras)
            seen += batch["id"]
            views += batch["view_indices"][:, 0].tolist()
    assert sorted(set(seen)) == sorted(r.id for r in rnd.records) and len(seen) == 3 * len(rnd)
    assert len(set(views)) > 1  # workers draw views from their own RNG streams


def test_distributed_sampler_splits_the_dataset(ds):
    n = len(ds)
    parts = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=3)
        sampler.set_epoch(1)
        parts.append(list(sampler))
        loader = DataLoader(ds, batch_size=2, sampler=sampler, collate_fn=collate_samples)
        batches = list(loader)
        assert sum(len(b["id"]) for b in batches) == len(parts[-1])
        assert all(isinstance(b["mesh"], Meshes) for b in batches)
    assert n % 2 == 0 and not set(parts[0]) & set(parts[1]) and sorted(parts[0] + parts[1]) == list(range(n))
