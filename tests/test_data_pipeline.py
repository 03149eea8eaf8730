"""geomgen.data.pipeline: SampleConfig, normalize_mesh and build_sample (renders, voxels, points, occupancy)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from geomgen.data.pipeline import SAMPLE_KEYS, SampleConfig, build_sample, derive_seed, normalize_mesh
from geomgen.errors import InvalidInputError
from geomgen.render import PerspectiveCameras

TINY = SampleConfig(image_size=32, num_views=3, num_points=512, num_occupancy=512, voxel_resolution=16)


def cube(half=0.5):
    v = torch.tensor([[x, y, z] for x in (-half, half) for y in (-half, half) for z in (-half, half)])
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = [[a, b, c] for a, b, c, d in quads] + [[a, c, d] for a, b, c, d in quads]
    return v.float(), torch.tensor(f, dtype=torch.int64)


def sphere(radius=0.5, level=3):
    from geomgen.ops import ico_sphere

    m = ico_sphere(level)
    return m.verts_list()[0].float() * radius, m.faces_list()[0]


def box_sdf(p, half=0.5):
    q = p.abs() - half
    return q.clamp(min=0).norm(dim=-1) + q.max(dim=-1).values.clamp(max=0)


# ----------------------------------------------------------------------------- SampleConfig
def test_config_defaults_json_roundtrip_and_digest():
    c = SampleConfig()
    assert (c.image_size, c.num_views, c.voxel_resolution, c.num_points, c.num_occupancy) == (64, 6, 32, 4096, 4096)
    d = json.loads(json.dumps(c.to_dict()))
    assert SampleConfig.from_dict(d) == c and SampleConfig.from_dict(d).digest() == c.digest()
    c2 = SampleConfig(image_size=32)
    assert c2 != c and c2.digest() != c.digest()
    # lists from JSON become tuples: equal and hashable
    assert SampleConfig(elevation=[0, 10]) == SampleConfig(elevation=(0.0, 10.0))
    hash(SampleConfig(near_surface_sigmas=[0.02]))


def test_config_auto_distance_fits_the_unit_cube():
    for fov in (20.0, 40.0, 90.0):
        c = SampleConfig(fov=fov, margin=0.0)
        # the sphere circumscribing the cube touches the frustum exactly
        assert c.camera_distance * math.sin(math.radians(fov) / 2) == pytest.approx(math.sqrt(3) / 2)
    assert SampleConfig(distance=3.0).camera_distance == 3.0


@pytest.mark.parametrize("kwargs, name", [
    ({"image_size": 4}, "image_size"), ({"image_size": 64.0}, "image_size"), ({"num_views": 0}, "num_views"),
    ({"fov": 0.5}, "fov"), ({"fov": float("nan")}, "fov"), ({"distance": 0.8}, "distance"),
    ({"elevation": (30, 10)}, "elevation"), ({"elevation": (-90, 10)}, "elevation"), ({"elevation": (1,)}, "elevation"),
    ({"num_occupancy": 1}, "num_occupancy"), ({"occupancy_bound": 0.4}, "occupancy_bound"),
    ({"near_surface_sigmas": ()}, "near_surface_sigmas"), ({"near_surface_sigmas": (0.01, -1)}, "near_surface_sigmas"),
    ({"color": (2, 0, 0)}, "color"), ({"margin": -0.1}, "margin"), ({"voxel_resolution": True}, "voxel_resolution"),
])
def test_config_rejects_bad_values_naming_the_field(kwargs, name):
    with pytest.raises(InvalidInputError, match=name):
        SampleConfig(**kwargs)


def test_config_from_dict_rejects_unknown_keys():
    with pytest.raises(InvalidInputError, match="imgsize"):
        SampleConfig.from_dict({"imgsize": 3})
    with pytest.raises(InvalidInputError):
        SampleConfig.from_dict([("image_size", 3)])


def test_derive_seed_stable_and_distinct():
    assert derive_seed(0, "train", "chair", 3) == derive_seed(0, "train", "chair", 3)
    assert derive_seed(0, "train", "chair", 3) != derive_seed(0, "val", "chair", 3)
    assert 0 <= derive_seed("x") < 2**63


# ----------------------------------------------------------------------------- normalize_mesh
def test_normalize_mesh_centres_scales_and_is_idempotent():
    g = torch.Generator().manual_seed(0)
    v = torch.rand(50, 3, generator=g) * torch.tensor([3.0, 1.0, 0.5]) + torch.tensor([10.0, -4.0, 2.0])
    f = torch.randint(0, 40, (60, 3), generator=g)  # vertices 40..49 unreferenced: they must not count
    v[45] = 1e6
    nv, nf = normalize_mesh(v, f)
    used = f.unique()
    assert nv.shape == (len(used), 3) and nf.dtype == torch.int64  # unreferenced vertices dropped
    lo, hi = nv.min(0).values, nv.max(0).values
    assert torch.allclose((lo + hi) / 2, torch.zeros(3), atol=1e-6)
    assert float((hi - lo).max()) == pytest.approx(1.0, abs=1e-6)
    # same triangles, renumbered: the normalised corners map back to the originals
    extent = float((v[used].max(0).values - v[used].min(0).values).max())
    centre = (v[used].max(0).values + v[used].min(0).values) / 2
    assert torch.allclose(nv[nf] * extent + centre, v[f], atol=1e-4)
    nv2, nf2 = normalize_mesh(nv, nf)
    assert torch.equal(nf2, nf) and torch.allclose(nv2, nv, atol=1e-6)


@pytest.mark.parametrize("case, match", [
    ("no_faces", "no faces"), ("point", "zero size"), ("collinear", "zero area"), ("nan", "NaN"),
    ("index", "face indices"), ("shape", r"\(V, 3\)"),
])
def test_normalize_mesh_rejects_broken_meshes_naming_them(case, match):
    v, f = cube()
    if case == "no_faces":
        f = f[:0]
    elif case == "point":
        v = torch.zeros(8, 3)
    elif case == "collinear":
        v = torch.stack([torch.linspace(0, 1, 8)] * 3, 1)
    elif case == "nan":
        v = v.clone()
        v[0, 0] = float("nan")
    elif case == "index":
        f = f.clone()
        f[0, 0] = 8
    elif case == "shape":
        v = v[:, :2]
    with pytest.raises(InvalidInputError, match=match) as info:
        normalize_mesh(v, f, name="broken.off")
    assert "broken.off" in str(info.value)


# ----------------------------------------------------------------------------- build_sample
@pytest.fixture(scope="module")
def cube_sample():
    v, f = cube()
    cfg = SampleConfig(image_size=48, num_views=4, num_points=2000, num_occupancy=4000, voxel_resolution=16)
    return v, f, cfg, build_sample(v, f, seed=7, config=cfg)


def test_sample_keys_shapes_and_storage_dtypes(cube_sample):
    v, f, cfg, s = cube_sample
    assert set(s) == set(SAMPLE_KEYS)
    S, H, R = cfg.num_views, cfg.image_size, cfg.voxel_resolution
    expect = {
        "verts": ((8, 3), np.float32), "faces": ((12, 3), np.int32), "images": ((S, 3, H, H), np.uint8),
        "depths": ((S, H, H), np.float32), "masks": ((S, H, H), np.bool_), "K": ((S, 3, 3), np.float32),
        "world_from_camera": ((S, 4, 4), np.float32), "voxels": ((R, R, R), np.bool_),
        "points": ((2000, 3), np.float32), "normals": ((2000, 3), np.float32), "occ_points": ((4000, 3), np.float32),
        "occ_labels": ((4000,), np.bool_),
    }
    for key, (shape, dtype) in expect.items():
        assert s[key].shape == shape and s[key].dtype == dtype, key


def test_build_is_deterministic_and_seeded():
    v, f = sphere(level=2)
    a = build_sample(v, f, seed=3, config=TINY)
    b = build_sample(v, f, seed=3, config=TINY)
    c = build_sample(v, f, seed=4, config=TINY)
    for key in SAMPLE_KEYS:
        assert np.array_equal(a[key], b[key]), key
    assert not np.array_equal(a["world_from_camera"], c["world_from_camera"])
    assert not np.array_equal(a["points"], c["points"]) and not np.array_equal(a["occ_points"], c["occ_points"])


def test_cameras_orbit_in_range_and_keep_the_cube_in_view(cube_sample):
    _, _, cfg, s = cube_sample
    pose = torch.from_numpy(s["world_from_camera"]).double()
    centres = pose[:, :3, 3]
    assert torch.allclose(centres.norm(dim=1), torch.full((4,), cfg.camera_distance, dtype=torch.float64), atol=1e-4)
    el = torch.rad2deg(torch.asin(centres[:, 1] / centres.norm(dim=1)))
    assert bool(((el >= cfg.elevation[0] - 1e-3) & (el <= cfg.elevation[1] + 1e-3)).all())
    az = torch.rad2deg(torch.atan2(centres[:, 0], centres[:, 2])) % 360
    for i in range(4):  # stratified azimuths
        assert 90 * i - 1e-3 <= float(az[i]) < 90 * (i + 1) + 1e-3
    # the optical axis points at the origin
    fwd = pose[:, :3, 2]
    assert torch.allclose(fwd, -centres / centres.norm(dim=1, keepdim=True), atol=1e-5)
    # every corner of the unit cube projects inside the image, in front of the camera
    corners, _ = cube()
    cams = PerspectiveCameras(torch.from_numpy(s["K"]), pose.float(), (cfg.image_size,) * 2)
    uvz = cams.project(corners[None].expand(4, -1, -1))
    assert bool((uvz[..., 2] > 0).all())
    assert bool(((uvz[..., :2] >= 0) & (uvz[..., :2] <= cfg.image_size)).all())


def test_masks_are_depth_positive_and_background_is_white(cube_sample):
    _, _, _, s = cube_sample
    assert np.array_equal(s["masks"], s["depths"] > 0)
    assert s["masks"].any(axis=(1, 2)).all()
    bg = ~s["masks"][:, None].repeat(3, axis=1)
    assert (s["images"][bg] == 255).all()
    fg = s["images"][~bg]
    assert fg.max() < 255 and fg.min() > 0  # shaded grey, lit by the headlight


def test_depth_unprojects_onto_the_cube_surface(cube_sample):
    _, _, cfg, s = cube_sample
    H = cfg.image_size
    cams = PerspectiveCameras(torch.from_numpy(s["K"]).double(), torch.from_numpy(s["world_from_camera"]).double(),
                              (H, H))
    jj, ii = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(H) + 0.5, indexing="ij")
    uv = torch.stack([ii, jj], -1).reshape(1, -1, 2).double().expand(len(cams), -1, -1)
    depth = torch.from_numpy(s["depths"]).double().reshape(len(cams), -1)
    pts = cams.unproject(uv, depth)[depth > 0]
    assert pts.shape[0] > 100
    # on the surface of [-0.5, 0.5]^3: the largest coordinate is 0.5 (float32 depth rounding only)
    assert torch.allclose(pts.abs().max(dim=1).values, torch.full((len(pts),), 0.5, dtype=torch.float64), atol=1e-4)


def test_surface_points_and_normals_of_the_cube(cube_sample):
    _, _, _, s = cube_sample
    p, n = torch.from_numpy(s["points"]), torch.from_numpy(s["normals"])
    assert torch.allclose(p.abs().max(dim=1).values, torch.full((len(p),), 0.5), atol=1e-6)
    axis = p.abs().argmax(dim=1)
    expect = torch.zeros_like(n)
    expect[torch.arange(len(p)), axis] = torch.sign(p[torch.arange(len(p)), axis])
    assert torch.allclose(n, expect, atol=1e-5)  # outward unit face normals


def test_voxels_of_the_unit_cube_are_full(cube_sample):
    _, _, _, s = cube_sample
    assert s["voxels"].all()
    v, f = cube(0.3)  # a smaller cube: the voxels touched or inside [-0.3, 0.3]^3
    g = build_sample(v, f, seed=0, config=TINY)["voxels"]
    centres = (np.arange(16) + 0.5) / 16 - 0.5
    inside = np.abs(centres) < 0.3 + 1 / 32  # voxel box [c - h, c + h] meets [-0.3, 0.3]
    expect = inside[:, None, None] & inside[None, :, None] & inside[None, None, :]
    assert np.array_equal(g, expect)


def test_occupancy_queries_and_labels_of_the_cube(cube_sample):
    _, _, cfg, s = cube_sample
    q = torch.from_numpy(s["occ_points"]).double()
    labels = torch.from_numpy(s["occ_labels"])
    n_uniform = 2000
    uni, near = q[:n_uniform], q[n_uniform:]
    b = cfg.occupancy_bound
    assert bool((uni.abs() <= b).all()) and float(uni.abs().mean()) == pytest.approx(b / 2, rel=0.05)
    sdf = box_sdf(q)
    clear = sdf.abs() > 1e-5
    assert torch.equal(labels[clear], (sdf < 0)[clear])
    # near-surface noise: half-normal distance to the (flat) faces, mixture of sigmas 0.01 and 0.04
    d = box_sdf(near).abs()
    expected_mean = 0.5 * sum(cfg.near_surface_sigmas) * math.sqrt(2 / math.pi)
    assert float(d.mean()) == pytest.approx(expected_mean, rel=0.15)
    fine, coarse = d[:1000], d[1000:]
    assert float(fine.mean()) < 0.5 * float(coarse.mean())
    assert 0.3 < float(labels[n_uniform:].float().mean()) < 0.7


def test_procedural_chair_labels_match_its_sdf_and_voxels_match_points_in_meshes():
    procedural = pytest.importorskip("geomgen.data.procedural")
    from geomgen.ops import knn_points, points_in_meshes, sample_points_from_meshes
    from geomgen.structures import Meshes

    v, f = procedural.generate_shape("chair", 5, resolution=32)
    sdf = procedural.shape_sdf("chair", 5, resolution=32)
    cfg = SampleConfig(image_size=32, num_views=2, num_points=256, num_occupancy=3000, voxel_resolution=32)
    s = build_sample(v, f, seed=1, config=cfg)
    q = torch.from_numpy(s["occ_points"])
    d = sdf(q.double())
    far = d.abs() > 0.02  # marching cubes' chord error is a fraction of a 1/32 cell
    assert int(far.sum()) > 1500
    assert torch.equal(torch.from_numpy(s["occ_labels"])[far], (d < 0)[far])
    # voxels: every voxel whose centre is inside is set; a set voxel with its centre outside touches the surface
    R = 32
    c = (torch.arange(R, dtype=torch.float32) + 0.5) / R - 0.5
    zz, yy, xx = torch.meshgrid(c, c, c, indexing="ij")
    centres = torch.stack([xx, yy, zz], -1).reshape(-1, 3)
    mesh = Meshes([v], [f])
    inside = points_in_meshes(mesh, centres[None])[0].reshape(R, R, R)
    grid = torch.from_numpy(s["voxels"])
    assert bool(grid[inside].all())
    shell = grid & ~inside
    dense = sample_points_from_meshes(mesh, 200_000, generator=torch.Generator().manual_seed(0))
    dist = knn_points(centres.reshape(R, R, R, 3)[shell][None], dense).dists[0, :, 0].sqrt()
    assert float(dist.max()) <= math.sqrt(3) / 2 / R + 0.01


def test_depth_of_a_real_mesh_lies_on_its_surface(cgal_data):
    from geomgen.io import load_mesh
    from geomgen.ops import knn_points, sample_points_from_meshes
    from geomgen.structures import Meshes

    m = load_mesh(cgal_data / "meshes" / "cow.off")
    v, f = normalize_mesh(m.verts_list()[0], m.faces_list()[0])
    cfg = SampleConfig(image_size=48, num_views=2, num_points=256, num_occupancy=256, voxel_resolution=16)
    s = build_sample(v, f, seed=0, config=cfg)
    cams = PerspectiveCameras(torch.from_numpy(s["K"]), torch.from_numpy(s["world_from_camera"]), (48, 48))
    jj, ii = torch.meshgrid(torch.arange(48) + 0.5, torch.arange(48) + 0.5, indexing="ij")
    uv = torch.stack([ii, jj], -1).reshape(1, -1, 2).expand(2, -1, -1)
    depth = torch.from_numpy(s["depths"]).reshape(2, -1)
    pts = cams.unproject(uv, depth)[depth > 0]
    dense = sample_points_from_meshes(Meshes([v], [f]), 300_000, generator=torch.Generator().manual_seed(0))
    dist = knn_points(pts[None], dense).dists[0, :, 0].sqrt()
    assert float(dist.quantile(0.95)) < 0.004 and float(dist.max()) < 0.02


def test_build_sample_validates_its_inputs():
    v, f = cube()
    with pytest.raises(InvalidInputError, match="normalised"):
        build_sample(v * 3, f, seed=0, config=TINY)
    with pytest.raises(InvalidInputError, match="seed"):
        build_sample(v, f, seed=-1, config=TINY)
    with pytest.raises(InvalidInputError, match="seed"):
        build_sample(v, f, seed=1.5, config=TINY)
    with pytest.raises(InvalidInputError, match="no faces"):
        build_sample(v, f[:0], seed=0, config=TINY)
    s = build_sample(v, f, seed=0, config={"image_size": 16, "num_views": 1, "num_points": 8, "num_occupancy": 8})
    assert s["images"].shape == (1, 3, 16, 16)
