"""The ``mesh`` representation: registration, frames, both initial meshes, losses, training, errors."""

from __future__ import annotations

import pytest
import torch

import geomgen
from geomgen.errors import InvalidInputError
from geomgen.models import camera_to_world, world_to_camera
from geomgen.structures import Meshes
from geomgen.testing.models import check_representation

SMALL = {"hidden": 16, "graph_convs": 1, "stages": 2, "ico_level": 2, "loss_points": 256, "gt_points": 512}


def test_registered_with_a_buildable_default():
    assert "mesh" in geomgen.list_models(kind="representation")
    model = geomgen.get_model("mesh")
    assert model.output == "mesh" and model.frame == "camera" and model.has_volume
    assert sum(p.numel() for p in model.parameters()) * 4 < 3.5e6  # shipped weights stay small


@pytest.mark.parametrize("init", ["sphere", "voxel"])
def test_contract(init, mesh_batch):
    check_representation(geomgen.get_model("mesh", init=init, **SMALL), mesh_batch)


def test_initial_sphere_sits_in_front_of_the_camera(mesh_batch):
    model = geomgen.get_model("mesh", **SMALL).eval()
    with torch.no_grad():
        out = model(mesh_batch["images"], mesh_batch["K"])
    # offsets start at zero: the first stage returns the ico-sphere around (0, 0, distance)
    v = out["meshes"][0].verts_padded()
    centre = v.mean(1)
    assert torch.allclose(centre, torch.tensor([0.0, 0.0, model.distance]).expand_as(centre), atol=1e-5)
    assert torch.allclose((v - centre[:, None]).norm(dim=-1), torch.tensor(model.config["radius"]), atol=1e-5)


def test_projection_used_by_vert_align_matches_the_dataset(mesh_batch):
    """GT vertices mapped to the camera frame and projected with K land on the GT mask
    (dilated by one pixel: silhouette vertices sit on the mask's boundary)."""
    b = mesh_batch
    masks = torch.nn.functional.max_pool2d(b["masks"].float()[:, None], 3, 1, 1)[:, 0] > 0
    for i, v in enumerate(b["mesh"].verts_list()):
        cam = world_to_camera(v[None], b["world_from_camera"][i:i + 1])[0]
        K = b["K"][i]
        uv = cam[:, :2] / cam[:, 2:] @ K[:2, :2].T + K[:2, 2]
        px = uv.floor().long().clamp(0, 63)
        inside = masks[i][px[:, 1], px[:, 0]]
        assert inside.float().mean() > 0.995


def test_voxel_target_reads_the_gt_grid_in_the_camera_frame(mesh_batch):
    model = geomgen.get_model("mesh", init="voxel", **SMALL)
    b = mesh_batch
    target = model.grid.target(b["voxels"].grids, b["world_from_camera"])
    r = model.grid.resolution
    assert target.shape == (len(b["images"]), r, r, r)
    # occupied camera-grid voxel centres, mapped back to the object frame, lie inside the GT grid's occupied cells
    centres = model.grid.centres(torch.device("cpu"))
    for i in range(len(target)):
        occ = centres[target[i].flatten() > 0.5]
        obj = camera_to_world(occ[None], b["world_from_camera"][i:i + 1])[0]
        idx = ((obj + 0.5) * 32).floor().long().clamp(0, 31)
        assert b["voxels"].grids[i][idx[:, 2], idx[:, 1], idx[:, 0]].all()
        # and they cover the object's volume (the camera grid is coarser: compare volumes loosely)
        vol_cam = occ.shape[0] * model.grid.voxel_size ** 3
        vol_gt = b["voxels"].grids[i].float().sum() / 32 ** 3
        assert 0.5 < vol_cam / vol_gt < 1.5


def test_untrained_voxel_head_falls_back_to_the_sphere(mesh_batch):
    model = geomgen.get_model("mesh", init="voxel", max_init_verts=10, **SMALL).eval()
    with torch.no_grad():
        out = model(mesh_batch["images"])
    assert (out["meshes"][0].num_verts_per_mesh() == 162).all()  # the level-2 sphere


def test_short_overfit_lowers_the_loss(mesh_batch):
    model = geomgen.get_model("mesh", **SMALL)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        loss = model.compute_loss(mesh_batch)
        opt.zero_grad()
        loss["loss"].backward()
        opt.step()
        first = float(loss["chamfer"]) if first is None else first
    assert float(model.compute_loss(mesh_batch)["chamfer"]) < 0.6 * first


def test_gradients_reach_the_encoder(mesh_batch):
    model = geomgen.get_model("mesh", **SMALL)
    # the offset heads start at zero (the first prediction is the initial mesh), so the
    # encoder only gets gradient once they have moved: one step first
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.compute_loss(mesh_batch)["loss"].backward()
    opt.step()
    opt.zero_grad()
    model.compute_loss(mesh_batch)["loss"].backward()
    grads = [p.grad for p in model.encoder.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_predict_is_a_camera_frame_mesh_batch(mesh_batch):
    model = geomgen.get_model("mesh", **SMALL).eval()
    out = model.predict(mesh_batch["images"], mesh_batch["K"])
    assert isinstance(out, Meshes) and len(out) == len(mesh_batch["images"])
    assert (out.verts_padded()[..., 2] > 1.5).all()  # in front of the camera, around the object distance


def test_bad_inputs_raise_geomgen_errors(mesh_batch):
    model = geomgen.get_model("mesh", **SMALL).eval()
    with pytest.raises(InvalidInputError, match="64x64"):
        model.predict(torch.rand(1, 3, 32, 32))
    with pytest.raises(InvalidInputError, match="K"):
        model.predict(mesh_batch["images"][:2], torch.eye(3).expand(3, 3, 3))
    with pytest.raises(InvalidInputError, match="init"):
        geomgen.get_model("mesh", init="cube")
    with pytest.raises(InvalidInputError, match="align_levels"):
        geomgen.get_model("mesh", align_levels=[7])
