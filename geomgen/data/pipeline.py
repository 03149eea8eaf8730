"""Mesh -> training sample: renders, voxels, surface points and occupancy labels.

:func:`build_sample` turns one **normalised** mesh (bounding box centred at the
origin, longest edge 1: inside ``[-0.5, 0.5]^3``, +Y up; see
:func:`normalize_mesh`) into the arrays of one dataset sample, stored compactly
(the datasets convert them to the tensors of :mod:`geomgen.data` on access).
Everything is drawn from ``seed``: the same ``(verts, faces, seed, config)``
gives identical arrays, bit for bit, on every run.

What is computed (defaults of :class:`SampleConfig` in brackets)
----------------------------------------------------------------
* **Views** [6 views of 64 x 64 px, vertical field of view 40 deg]: cameras on a
  sphere around the origin looking at it (:func:`geomgen.render.orbit_poses`,
  +Y up).  Azimuths are stratified: view ``i`` of ``S`` is uniform in
  ``[360 i / S, 360 (i + 1) / S)`` degrees (so the views go round the object);
  elevations are uniform in ``elevation`` [-10, 45] deg.  The camera distance
  (default: automatic) is the smallest that keeps the sphere circumscribing the
  unit cube (radius ``sqrt(3) / 2``) inside the field of view, times
  ``1 + margin`` [0.05]: any normalised shape is fully visible from every view.
* **Renders** (:func:`geomgen.render.render_meshes`, headlight Lambert shading,
  grey albedo, white background): ``images`` ``(S, 3, H, W)`` uint8, ``depths``
  ``(S, H, W)`` float32 z-depth in the camera frame (0 on the background),
  ``masks`` ``(S, H, W)`` bool (exactly ``depths > 0``), ``K`` ``(S, 3, 3)`` and
  ``world_from_camera`` ``(S, 4, 4)`` float32 (OpenCV camera frame, pixel
  centres at +0.5; see :mod:`geomgen.render.cameras`).
* **Voxels** [32^3]: :func:`geomgen.ops.voxelize` with ``mode="solid"`` over
  exactly ``[-0.5, 0.5]^3``: ``voxels`` ``(R, R, R)`` bool, ``grid[k, j, i]`` <->
  ``(z, y, x)``; a voxel is set when its box touches the surface or its centre
  is inside.
* **Surface samples** [4096]: area-uniform points with their face normals
  (:func:`geomgen.ops.sample_points_from_meshes`): ``points``, ``normals``
  ``(P, 3)`` float32.
* **Occupancy** [4096 queries]: half uniform in ``[-b, b]^3`` with ``b =
  occupancy_bound`` [0.55], half near the surface: fresh surface samples plus
  isotropic Gaussian noise, split evenly between the standard deviations
  ``near_surface_sigmas`` [0.01 and 0.04, i.e. 1 % and 4 % of the object
  size: the fine scale resolves thin parts, the coarse one the shell around
  them].  Labels (:func:`geomgen.ops.points_in_meshes`, majority of three
  axis-ray parities, the rule of the solid voxels) in ``occ_labels`` ``(Q,)``
  bool; ``occ_points`` ``(Q, 3)`` float32 (uniform queries first).

The GT mesh is stored too (``verts`` float32 ``(V, 3)``, ``faces`` int32
``(F, 3)``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from geomgen import checks as V
from geomgen.errors import InvalidInputError

__all__ = ["SampleConfig", "build_sample", "normalize_mesh", "SAMPLE_KEYS", "derive_seed"]

#: Keys of the dict :func:`build_sample` returns.
SAMPLE_KEYS: tuple[str, ...] = (
    "verts", "faces", "images", "depths", "masks", "K", "world_from_camera",
    "voxels", "points", "normals", "occ_points", "occ_labels",
)

#: Radius of the sphere circumscribing the unit cube [-0.5, 0.5]^3.
_CUBE_RADIUS = math.sqrt(3.0) / 2.0


@dataclass(frozen=True)
class SampleConfig:
    """What :func:`build_sample` computes for each shape (JSON-able, hashable).

    Attributes:
        image_size: side of the square renders, pixels (8 to 1024).
        num_views: renders per shape, ``S >= 1``.
        fov: vertical (= horizontal) field of view, degrees, in (1, 120).
        distance: camera distance from the origin in object units (the
            normalised shape has longest edge 1); None = automatic (see the
            module docstring).  An explicit value must keep the whole unit cube
            in front of the near plane (``> sqrt(3)/2 + 0.01``); it may crop.
        margin: relative margin of the automatic distance (>= 0).
        elevation: ``(low, high)`` camera elevation range, degrees, inside
            (-90, 90); equal values fix the elevation.
        voxel_resolution: ``R``, voxels per axis over ``[-0.5, 0.5]^3``.
        num_points: surface samples ``P >= 1``.
        num_occupancy: occupancy queries ``Q >= 2`` (half uniform, half near
            the surface; the uniform half gets the extra one when odd).
        occupancy_bound: ``b`` of the uniform queries' box ``[-b, b]^3`` (>= 0.5).
        near_surface_sigmas: standard deviations (object units, > 0) of the
            near-surface noise; near-surface queries are split evenly between them.
        color: albedo of the renders, RGB in [0, 1].
    """

    image_size: int = 64
    num_views: int = 6
    fov: float = 40.0
    distance: float | None = None
    margin: float = 0.05
    elevation: tuple[float, float] = (-10.0, 45.0)
    voxel_resolution: int = 32
    num_points: int = 4096
    num_occupancy: int = 4096
    occupancy_bound: float = 0.55
    near_surface_sigmas: tuple[float, ...] = (0.01, 0.04)
    color: tuple[float, float, float] = (0.72, 0.72, 0.75)

    def __post_init__(self) -> None:
        fn = "SampleConfig"
        # normalise sequences to tuples of floats (JSON round trips give lists)
        object.__setattr__(self, "elevation", _float_tuple(self.elevation, "elevation", 2, fn))
        object.__setattr__(self, "near_surface_sigmas",
                           _float_tuple(self.near_surface_sigmas, "near_surface_sigmas", None, fn))
        object.__setattr__(self, "color", _float_tuple(self.color, "color", 3, fn))
        V.check_int(self.image_size, "image_size", min_value=8, max_value=1024, fn=fn)
        V.check_int(self.num_views, "num_views", min_value=1, fn=fn)
        V.check_int(self.voxel_resolution, "voxel_resolution", min_value=1, fn=fn)
        V.check_int(self.num_points, "num_points", min_value=1, fn=fn)
        V.check_int(self.num_occupancy, "num_occupancy", min_value=2, fn=fn)
        object.__setattr__(self, "fov", V.check_float(self.fov, "fov", gt=1.0, lt=120.0, fn=fn))
        object.__setattr__(self, "margin", V.check_float(self.margin, "margin", nonnegative=True, fn=fn))
        if self.distance is not None:
            d = V.check_float(self.distance, "distance", fn=fn)
            if d <= _CUBE_RADIUS + 0.01:
                raise V.fail("distance", f"must be > {_CUBE_RADIUS + 0.01:.3f} (the unit cube must lie in front "
                             f"of the camera), got {d:g}; None picks one that fits", fn)
            object.__setattr__(self, "distance", d)
        lo, hi = self.elevation
        if not -90.0 < lo <= hi < 90.0:
            raise V.fail("elevation", f"must be (low, high) with -90 < low <= high < 90 degrees, got {self.elevation}",
                         fn)
        bound = V.check_float(self.occupancy_bound, "occupancy_bound", fn=fn)
        if bound < 0.5:
            raise V.fail("occupancy_bound", f"must be >= 0.5 (the box must hold the shape), got {bound:g}", fn)
        object.__setattr__(self, "occupancy_bound", bound)
        if not self.near_surface_sigmas or any(s <= 0 for s in self.near_surface_sigmas):
            raise V.fail("near_surface_sigmas", f"must be one or more values > 0, got {self.near_surface_sigmas}", fn)
        if any(not 0.0 <= c <= 1.0 for c in self.color):
            raise V.fail("color", f"must be RGB values in [0, 1], got {self.color}", fn)

    @property
    def camera_distance(self) -> float:
        """The camera distance used: ``distance``, or the automatic one."""
        if self.distance is not None:
            return float(self.distance)
        return (1.0 + self.margin) * _CUBE_RADIUS / math.sin(math.radians(self.fov) / 2.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (tuples as lists); ``SampleConfig.from_dict`` inverts it."""
        out = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return json.loads(json.dumps(out))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SampleConfig":
        """Build from a mapping; unknown keys raise :class:`InvalidInputError` naming them."""
        if isinstance(data, SampleConfig):
            return data
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"SampleConfig: expected a SampleConfig or a dict, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidInputError(f"SampleConfig: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(data))

    def digest(self) -> str:
        """Stable hex digest of the configuration (for cache folder names)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def _float_tuple(x: Any, name: str, n: int | None, fn: str) -> tuple[float, ...]:
    if isinstance(x, (int, float)) and not isinstance(x, bool) and n is None:
        x = (x,)
    if not isinstance(x, (tuple, list)) or (n is not None and len(x) != n):
        want = f"{n} numbers" if n is not None else "a sequence of numbers"
        raise V.fail(name, f"must be {want}, got {x!r}", fn)
    return tuple(V.check_float(v, name, fn=fn) for v in x)


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any JSON-able parts (stable across runs and platforms).

    ``derive_seed(0, "train", "chair", 3)`` is what ``shapes`` uses per record.
    """
    blob = json.dumps(list(parts), sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") & (2**63 - 1)


def normalize_mesh(verts: torch.Tensor, faces: torch.Tensor, *, name: str = "mesh"
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre the bounding box at the origin and scale its longest edge to 1.

    Args:
        verts: ``(V, 3)`` floating, finite.
        faces: ``(F, 3)`` integer indices into ``verts``, ``F >= 1``.
        name: what to call the mesh in error messages (e.g. its file).

    Returns:
        ``verts`` ``(V', 3)`` float32 (computed in float64) and ``faces`` ``(F, 3)``
        int64.  Vertices no face references are dropped (faces renumbered,
        vertex order otherwise kept), so they neither define the box nor end
        up outside it.  Idempotent up to float rounding.

    Raises:
        InvalidInputError: wrong shapes, non-finite vertices, no faces, indices
            out of range, a box of zero size, or zero total surface area (all
            faces degenerate); the message names ``name``.
    """
    if not isinstance(verts, torch.Tensor) or verts.dim() != 2 or verts.shape[1] != 3 or not verts.is_floating_point():
        raise InvalidInputError(f"{name}: vertices must be a (V, 3) floating tensor, got "
                                f"{getattr(verts, 'shape', type(verts).__name__)}")
    if not isinstance(faces, torch.Tensor) or faces.dim() != 2 or faces.shape[1] != 3 or faces.is_floating_point():
        raise InvalidInputError(f"{name}: faces must be a (F, 3) integer tensor, got "
                                f"{getattr(faces, 'shape', type(faces).__name__)}")
    if faces.shape[0] == 0:
        raise InvalidInputError(f"{name}: the mesh has no faces")
    faces = faces.to(torch.int64)
    if int(faces.min()) < 0 or int(faces.max()) >= verts.shape[0]:
        raise InvalidInputError(f"{name}: face indices must lie in [0, {verts.shape[0]}), got "
                                f"[{int(faces.min())}, {int(faces.max())}]")
    v = verts.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(v).all()):
        raise InvalidInputError(f"{name}: vertices contain NaN or Inf")
    keep = faces.reshape(-1).unique()  # sorted
    if keep.numel() != v.shape[0]:
        remap = torch.full((v.shape[0],), -1, dtype=torch.int64)
        remap[keep] = torch.arange(keep.numel())
        v, faces = v[keep], remap[faces]
    lo, hi = v.min(0).values, v.max(0).values
    extent = float((hi - lo).max())
    if not extent > 0:
        raise InvalidInputError(f"{name}: the mesh is degenerate (its bounding box has zero size)")
    tri = v[faces]
    area = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]).norm(dim=1).sum()
    if not float(area) > 1e-12 * extent * extent:
        raise InvalidInputError(f"{name}: the mesh is degenerate (all faces have zero area)")
    out = (v - (lo + hi) / 2) / extent
    return out.to(torch.float32), faces


def _cameras(rng: np.random.Generator, config: SampleConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """``K (S, 3, 3)``, ``world_from_camera (S, 4, 4)`` float64 for one sample."""
    from geomgen.render import PerspectiveCameras, orbit_poses

    S = config.num_views
    az = (np.arange(S) + rng.random(S)) * (360.0 / S)
    lo, hi = config.elevation
    el = lo + (hi - lo) * rng.random(S)
    pose = orbit_poses(torch.from_numpy(az), torch.from_numpy(el), config.camera_distance)
    cams = PerspectiveCameras.from_fov(config.fov, (config.image_size, config.image_size), pose,
                                       dtype=torch.float64)
    return cams.K, cams.world_from_camera


def build_sample(verts: torch.Tensor, faces: torch.Tensor, *, seed: int,
                 config: SampleConfig | None = None) -> dict[str, np.ndarray]:
    """Render, voxelise and sample one normalised mesh (see the module docstring).

    Args:
        verts: ``(V, 3)`` floating vertices, normalised (inside ``[-0.5, 0.5]^3``;
            use :func:`normalize_mesh`), +Y up.
        faces: ``(F, 3)`` integer faces, ``F >= 1``.
        seed: int in ``[0, 2**63)``: cameras, surface samples and occupancy queries.
        config: what to compute; None = ``SampleConfig()``.

    Returns:
        dict of NumPy arrays with keys :data:`SAMPLE_KEYS`: ``verts (V, 3)``
        float32, ``faces (F, 3)`` int32, ``images (S, 3, H, W)`` uint8,
        ``depths (S, H, W)`` float32 (0 background), ``masks (S, H, W)`` bool,
        ``K (S, 3, 3)`` / ``world_from_camera (S, 4, 4)`` float32, ``voxels (R,
        R, R)`` bool, ``points`` / ``normals (P, 3)`` float32, ``occ_points (Q,
        3)`` float32, ``occ_labels (Q,)`` bool.  Deterministic in ``(verts,
        faces, seed, config)``.

    Raises:
        InvalidInputError: bad mesh (see :func:`normalize_mesh`), bad seed or
            config, vertices outside ``[-0.5, 0.5]^3`` (beyond rounding).
    """
    from geomgen.ops import points_in_meshes, sample_points_from_meshes, voxelize
    from geomgen.render import PerspectiveCameras, render_meshes
    from geomgen.structures import Meshes

    fn = "build_sample"
    config = SampleConfig() if config is None else SampleConfig.from_dict(config)
    V.check_int(seed, "seed", min_value=0, fn=fn)
    if seed >= 2**63:
        raise V.fail("seed", f"must be < 2**63, got {seed}", fn)
    v32, f64 = normalize_mesh(verts, faces, name=f"{fn}: mesh")  # validation; keeps the caller's frame below
    v = verts.detach().to("cpu", torch.float32)
    if float(v[f64.reshape(-1).unique()].abs().max()) > 0.5 + 1e-4:
        raise InvalidInputError(f"{fn}: argument 'verts' must be normalised into [-0.5, 0.5]^3 "
                                "(see geomgen.data.pipeline.normalize_mesh)")
    del v32
    mesh = Meshes([v], [f64])
    rng = np.random.Generator(np.random.PCG64(seed))
    gen = torch.Generator().manual_seed(int(rng.integers(0, 2**63 - 1)))

    # renders
    K, pose = _cameras(rng, config)
    cams = PerspectiveCameras(K.float(), pose.float(), (config.image_size, config.image_size))
    res = render_meshes(mesh, cams, colors=torch.tensor(config.color))
    depth = res.depth.to(torch.float32)
    mask = depth > 0
    images = (res.image.clamp(0, 1) * 255.0).round().to(torch.uint8)

    # voxels over exactly the unit cube
    R = config.voxel_resolution
    vox = voxelize(mesh, resolution=R, mode="solid", bounds=[[-0.5, 0.5]] * 3)
    grid = vox.grids[0] > 0.5 if vox.grids.is_floating_point() else vox.grids[0].bool()

    # surface samples and near-surface occupancy queries (one generator, fixed order)
    points, normals = sample_points_from_meshes(mesh, config.num_points, return_normals=True, generator=gen)
    Q = config.num_occupancy
    n_near = Q // 2
    n_uniform = Q - n_near
    b = config.occupancy_bound
    uniform = (torch.rand(n_uniform, 3, generator=gen, dtype=torch.float64) * (2 * b) - b).to(torch.float32)
    near = sample_points_from_meshes(mesh, n_near, generator=gen)[0] if n_near else torch.zeros(0, 3)
    sig = config.near_surface_sigmas
    sigma = torch.tensor([sig[i * len(sig) // max(n_near, 1)] for i in range(n_near)], dtype=torch.float32)
    near = near + torch.randn(n_near, 3, generator=gen, dtype=torch.float32) * sigma[:, None]
    occ_points = torch.cat([uniform, near.to(torch.float32)], 0)
    labels = points_in_meshes(mesh, occ_points[None])[0]

    return {
        "verts": v.numpy().astype(np.float32, copy=False),
        "faces": f64.numpy().astype(np.int32),
        "images": images.numpy(),
        "depths": depth.numpy(),
        "masks": mask.numpy(),
        "K": K.to(torch.float32).numpy(),
        "world_from_camera": pose.to(torch.float32).numpy(),
        "voxels": grid.cpu().numpy().astype(bool, copy=False),
        "points": points[0].to(torch.float32).numpy(),
        "normals": normals[0].to(torch.float32).numpy(),
        "occ_points": occ_points.numpy(),
        "occ_labels": labels.cpu().numpy().astype(bool, copy=False),
    }
