"""Perspective (pinhole) cameras: intrinsics, poses, projection and back-projection.

Shape letters: ``N`` cameras in the batch, ``P`` points per camera, ``H``,
``W`` image height and width.

Conventions (those of :class:`~geomgen.structures.DepthMaps` and
:mod:`geomgen.ops.depth`):

* **Camera frame** (OpenCV): ``x`` right, ``y`` down, ``z`` forward; a point
  is in front of the camera when its ``z > 0``; *depth* is that ``z``
  (z-depth, not the distance along the ray).
* **Pixels**: ``(u, v)`` = (column, row); pixel ``(u, v)`` covers ``[u, u+1) x
  [v, v+1)`` and its centre is ``(u + 0.5, v + 0.5)``; the image spans ``[0, W]
  x [0, H]``, so a centred principal point is ``(W / 2, H / 2)``.
* **Intrinsics** ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` in pixels map
  ``(x, y, z)`` to ``(fx x / z + s y / z + cx, fy y / z + cy)``.
* **Pose** ``world_from_camera = [[R, t], [0, 0, 0, 1]]`` (camera-to-world,
  ``p_world = R p_cam + t``): the columns of ``R`` are the camera's x (right),
  y (down) and z (viewing direction) axes in world coordinates and ``t`` is its
  centre.  Poses here must be rigid (``R`` a rotation).
* **World**: +Y is up (the ShapeNet convention) for :func:`look_at` and
  :func:`orbit_poses` defaults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from geomgen import checks as V
from geomgen.ops.depth import project_points
from geomgen.structures._checks import normalize_batch_index

__all__ = ["PerspectiveCameras", "look_at", "orbit_poses", "default_intrinsics", "default_distance",
           "scale_intrinsics", "opencv_to_y_up"]

#: Radius of the sphere circumscribing the unit cube ``[-0.5, 0.5]^3``.
_CUBE_RADIUS = math.sqrt(3.0) / 2.0


def _as_float_tensor(x: Any, name: str, fn: str, dtype: torch.dtype | None = None,
                     device: torch.device | None = None) -> torch.Tensor:
    """``x`` (tensor, array, sequence, number) as a real floating tensor; integer input -> ``dtype``."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        try:
            t = torch.as_tensor(x)
            if dtype is not None and t.is_floating_point() and isinstance(x, (float, list, tuple)):
                t = torch.as_tensor(x, dtype=torch.float64).to(dtype)  # parse Python floats exactly
        except Exception:
            raise V.fail(name, f"must be a tensor or an array of numbers, got {type(x).__name__}", fn) from None
    if t.dtype == torch.bool or t.is_complex():
        raise V.fail(name, f"must hold real numbers, got dtype {t.dtype}", fn)
    if not t.is_floating_point():
        t = t.to(dtype or torch.get_default_dtype())
    if device is not None and not isinstance(x, torch.Tensor):
        t = t.to(device)
    return t


def _image_size(image_size: Any, fn: str) -> tuple[int, int]:
    if image_size is None:
        raise V.fail("image_size", "is required: give the image (H, W) in pixels", fn)
    return V.check_image_size(image_size, allow_int=False, fn=fn)


class PerspectiveCameras:
    """A batch of ``N`` pinhole cameras sharing one image size.

    Args:
        K: intrinsics ``(N, 3, 3)`` or ``(3, 3)`` (shared), in pixels, pixel
            centres at ``+0.5`` (see the module docstring; for an
            OpenCV-calibrated ``K`` add 0.5 to ``cx`` and ``cy``).  Must have
            ``fx, fy > 0``, ``K[1, 0] = 0`` and bottom row ``[0, 0, 1]``
            (:func:`geomgen.checks.check_intrinsics`).
        world_from_camera: camera-to-world poses ``(N, 4, 4)`` or ``(4, 4)``
            (shared); None = the identity (camera frame = world frame).  Must
            be rigid: ``R`` orthonormal with det +1 (to
            :data:`geomgen.checks.ROTATION_TOL`; :func:`geomgen.checks.check_pose`).
        image_size: ``(H, W)`` in pixels, required.

    ``N`` is the batch size of whichever of ``K`` and the pose is batched (both
    must agree when both are, except that a batch of one broadcasts); with
    neither batched ``N = 1``.  Both are stored
    as ``(N, ...)`` tensors on one device, in a common floating dtype (float64
    if either is, else that of ``K``).  Integer/NumPy inputs are converted.

    Raises:
        InvalidInputError: bad shapes, dtypes, devices, non-finite values,
            invalid ``K``, non-rigid poses, bad ``image_size``.
    """

    def __init__(
        self,
        K: torch.Tensor,
        world_from_camera: torch.Tensor | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        fn = "PerspectiveCameras"
        hw = _image_size(image_size, fn)
        k = _as_float_tensor(K, "K", fn)
        pose = None if world_from_camera is None else _as_float_tensor(
            world_from_camera, "world_from_camera", fn, device=k.device
        )
        if pose is not None and pose.device != k.device:
            raise V.fail("world_from_camera", f"must be on the same device as K ({k.device}), got {pose.device}", fn)
        if k.dim() not in (2, 3) or tuple(k.shape[-2:]) != (3, 3):
            raise V.fail("K", f"must have shape (N, 3, 3) or (3, 3), got {tuple(k.shape)}", fn)
        if pose is not None and (pose.dim() not in (2, 3) or tuple(pose.shape[-2:]) != (4, 4)):
            raise V.fail("world_from_camera", f"must have shape (N, 4, 4) or (4, 4), got {tuple(pose.shape)}", fn)
        dtype = k.dtype if pose is None else torch.promote_types(k.dtype, pose.dtype)
        n_k = k.shape[0] if k.dim() == 3 else None
        n_p = pose.shape[0] if pose is not None and pose.dim() == 3 else None
        if n_k == 1 and n_p is not None:  # a batch of one broadcasts like a shared matrix
            k, n_k = k[0], None
        if n_p == 1 and n_k is not None:
            pose, n_p = pose[0], None
        if n_k is not None and n_p is not None and n_k != n_p:
            raise V.fail(
                "world_from_camera", f"has {n_p} poses but K has {n_k} intrinsics (give one of each per camera, "
                "or a single shared (3, 3) / (4, 4))", fn,
            )
        n = n_k if n_k is not None else (n_p if n_p is not None else 1)
        k = V.check_intrinsics(k, n=n, dtype=dtype, device=k.device, fn=fn).contiguous()
        if pose is None:
            pose = torch.eye(4, dtype=dtype, device=k.device).expand(n, 4, 4).contiguous()
        else:
            pose = V.check_pose(pose, n=n, dtype=dtype, device=k.device, rigid=True, fn=fn).contiguous()
        self._K = k
        self._pose = pose
        self._hw = hw

    # ------------------------------------------------------------------ build

    @classmethod
    def _build(cls, K: torch.Tensor, pose: torch.Tensor, hw: tuple[int, int]) -> "PerspectiveCameras":
        obj = cls.__new__(cls)
        obj._K, obj._pose, obj._hw = K, pose, hw
        return obj

    @classmethod
    def from_fov(
        cls,
        fov: float | Sequence[float] | torch.Tensor,
        image_size: tuple[int, int],
        world_from_camera: torch.Tensor | None = None,
        *,
        degrees: bool = True,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> "PerspectiveCameras":
        """Cameras from a **vertical** field of view, square pixels and a centred principal point.

        ``fov`` is the full angle between the top and bottom image edges:
        ``fy = fx = (H / 2) / tan(fov / 2)``, ``cx = W / 2``, ``cy = H / 2``
        (no skew).  The horizontal field of view is then ``2 atan(W / H * tan(fov / 2))``.

        Args:
            fov: a number or ``(N,)`` values, in ``(0, 180)`` degrees (or
                ``(0, pi)`` radians with ``degrees=False``).
            image_size: ``(H, W)``.
            world_from_camera: ``(N, 4, 4)`` / ``(4, 4)`` poses, or None (identity).
            dtype: of the result; default: that of ``world_from_camera`` (or
                of a tensor ``fov``), else the default dtype.
            device: of the result; default: that of ``world_from_camera`` (or
                of a tensor ``fov``), else the CPU.
        """
        fn = "PerspectiveCameras.from_fov"
        V.check_bool(degrees, "degrees", fn=fn)
        h, w = _image_size(image_size, fn)
        if device is None:
            device = (world_from_camera.device if isinstance(world_from_camera, torch.Tensor)
                      else fov.device if isinstance(fov, torch.Tensor) else None)
        if dtype is None:
            dtype = (world_from_camera.dtype if isinstance(world_from_camera, torch.Tensor)
                     and world_from_camera.is_floating_point()
                     else fov.dtype if isinstance(fov, torch.Tensor) and fov.is_floating_point()
                     else torch.get_default_dtype())
        f = _as_float_tensor(fov, "fov", fn, dtype=torch.float64).detach().to("cpu", torch.float64)
        if f.dim() > 1:
            raise V.fail("fov", f"must be a number or a 1-D (N,) tensor, got shape {tuple(f.shape)}", fn)
        V.check_finite(f, "fov", fn=fn)
        rad = torch.deg2rad(f) if degrees else f
        bad = ~((rad > 0) & (rad < math.pi))
        if bool(bad.any()):
            unit, top = ("degrees", 180) if degrees else ("radians", "pi")
            raise V.fail("fov", f"must lie in (0, {top}) {unit}, got {f.reshape(-1)[bad.reshape(-1)][0].item():g}", fn)
        focal = (h / 2.0) / torch.tan(rad.reshape(-1) / 2)
        K = torch.zeros(focal.shape[0], 3, 3, dtype=torch.float64)
        K[:, 0, 0] = focal
        K[:, 1, 1] = focal
        K[:, 0, 2] = w / 2.0
        K[:, 1, 2] = h / 2.0
        K[:, 2, 2] = 1.0
        K = K.to(device=device, dtype=dtype)
        if f.dim() == 0:
            K = K[0]
        return cls(K, world_from_camera, (h, w))

    # ------------------------------------------------------------ basic info

    def __repr__(self) -> str:
        return (f"PerspectiveCameras(N={len(self)}, image_size={self._hw}, device={self.device}, "
                f"dtype={self.dtype})")

    def __len__(self) -> int:
        return int(self._K.shape[0])

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> "PerspectiveCameras":
        """A sub-batch (an int keeps the batch dimension: a batch of one)."""
        idx = normalize_batch_index(index, len(self), "index")
        sel = torch.tensor(idx, dtype=torch.int64, device=self.device)
        return PerspectiveCameras._build(self._K.index_select(0, sel), self._pose.index_select(0, sel), self._hw)

    def to(self, *args: Any, **kwargs: Any) -> "PerspectiveCameras":
        """Move/cast like :meth:`torch.Tensor.to` (device and/or a floating dtype)."""
        k = self._K.to(*args, **kwargs)
        if not k.is_floating_point():
            raise V.fail("dtype", f"must be a floating dtype, got {k.dtype}", "PerspectiveCameras.to")
        return PerspectiveCameras._build(k, self._pose.to(*args, **kwargs), self._hw)

    @property
    def device(self) -> torch.device:
        return self._K.device

    @property
    def dtype(self) -> torch.dtype:
        return self._K.dtype

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return self._hw

    @property
    def K(self) -> torch.Tensor:  # noqa: N802 - standard name
        """``(N, 3, 3)`` intrinsics."""
        return self._K

    @property
    def world_from_camera(self) -> torch.Tensor:
        """``(N, 4, 4)`` camera-to-world poses."""
        return self._pose

    @property
    def camera_from_world(self) -> torch.Tensor:
        """``(N, 4, 4)`` world-to-camera transforms ``[[R^T, -R^T t], [0, 1]]``
        (exact rigid inverse of :attr:`world_from_camera`; OpenCV's ``[R|t]``)."""
        R = self._pose[:, :3, :3]
        t = self._pose[:, :3, 3:]
        Rt = R.transpose(1, 2)
        top = torch.cat([Rt, -(Rt @ t)], dim=2)
        bottom = self._pose[:, 3:, :]
        return torch.cat([top, bottom], dim=1)

    @property
    def focal_length(self) -> torch.Tensor:
        """``(N, 2)`` ``(fx, fy)`` in pixels."""
        return torch.stack([self._K[:, 0, 0], self._K[:, 1, 1]], dim=-1)

    @property
    def principal_point(self) -> torch.Tensor:
        """``(N, 2)`` ``(cx, cy)`` in pixels (pixel centres at ``+0.5``)."""
        return torch.stack([self._K[:, 0, 2], self._K[:, 1, 2]], dim=-1)

    def centers(self) -> torch.Tensor:
        """``(N, 3)`` camera centres in world coordinates."""
        return self._pose[:, :3, 3]

    # ------------------------------------------------------------ transforms

    def _points(self, points: Any, name: str, fn: str, width: int = 3) -> torch.Tensor:
        """``(N, P, width)`` (or shared ``(P, width)``, expanded) floating points on the cameras' device."""
        V.check_tensor(points, name, ndim=(2, 3), shape_desc=f"(N, P, {width})", floating=True, fn=fn)
        if points.shape[-1] != width:
            raise V.fail(name, f"must have shape (N, P, {width}) or (P, {width}), got {tuple(points.shape)}", fn)
        if points.device != self.device:
            raise V.fail(name, f"must be on the cameras' device {self.device}, got {points.device}", fn)
        n = len(self)
        if points.dim() == 2:
            points = points.unsqueeze(0).expand(n, -1, -1)
        elif points.shape[0] != n:
            raise V.fail(name, f"has batch size {points.shape[0]}, expected {n} (one per camera)", fn)
        V.check_finite(points, name, fn=fn)
        return points

    def world_to_camera(self, points: torch.Tensor) -> torch.Tensor:
        """Map world points to each camera's frame: ``R^T (p - t)``.

        Args:
            points: ``(N, P, 3)`` world points (or ``(P, 3)`` shared by all cameras).

        Returns:
            ``(N, P, 3)`` camera-frame points (OpenCV axes; ``z`` = depth), in
            the promoted dtype of points and cameras.  Differentiable.
        """
        p = self._points(points, "points", "PerspectiveCameras.world_to_camera")
        dtype = torch.promote_types(p.dtype, self.dtype)
        R = self._pose[:, :3, :3].to(dtype)
        t = self._pose[:, None, :3, 3].to(dtype)
        return (p.to(dtype) - t) @ R

    def camera_to_world(self, points: torch.Tensor) -> torch.Tensor:
        """Map camera-frame points to the world: ``R p + t``; ``(N, P, 3)`` (or
        ``(P, 3)`` shared) -> ``(N, P, 3)``.  Differentiable."""
        p = self._points(points, "points", "PerspectiveCameras.camera_to_world")
        dtype = torch.promote_types(p.dtype, self.dtype)
        R = self._pose[:, :3, :3].to(dtype)
        return p.to(dtype) @ R.transpose(1, 2) + self._pose[:, None, :3, 3].to(dtype)

    def project(self, points: torch.Tensor) -> torch.Tensor:
        """Project world points to pixels.

        Args:
            points: ``(N, P, 3)`` world points (or ``(P, 3)`` shared).

        Returns:
            ``(N, P, 3)`` ``(u, v, z)``: pixel coordinates (column, row; pixel
            centres at ``+0.5``, so ``floor(u), floor(v)`` is the pixel hit)
            and camera-frame depth ``z``.  Points with ``z <= 0`` have no
            projection: their ``u, v`` are NaN (``z`` is still given), as in
            :func:`geomgen.ops.project_points`, which this uses.  Differentiable.
        """
        cam = self.world_to_camera(points)
        uv, z = project_points(cam, self._K.to(cam.dtype))
        return torch.cat([uv, z.unsqueeze(-1)], dim=-1)

    def unproject(self, uv: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        """Back-project pixel coordinates at given z-depths to world points.

        The inverse of :meth:`project` for points in front of the camera:
        ``unproject(project(p)[..., :2], project(p)[..., 2]) == p``.

        Args:
            uv: ``(N, P, 2)`` pixel coordinates ``(u, v)`` (continuous; the
                centre of pixel ``(i, j)`` is ``(i + 0.5, j + 0.5)``), or ``(P, 2)`` shared.
            depth: ``(N, P)`` (or ``(P,)``) camera-frame z-depth.

        Returns:
            ``(N, P, 3)`` world points.  Differentiable.
        """
        fn = "PerspectiveCameras.unproject"
        uv = self._points(uv, "uv", fn, width=2)
        V.check_tensor(depth, "depth", ndim=(1, 2), shape_desc="(N, P)", floating=True, fn=fn)
        if depth.device != self.device:
            raise V.fail("depth", f"must be on the cameras' device {self.device}, got {depth.device}", fn)
        if depth.dim() == 1:
            depth = depth.unsqueeze(0).expand(len(self), -1)
        if tuple(depth.shape) != tuple(uv.shape[:2]):
            raise V.fail("depth", f"must have shape {tuple(uv.shape[:2])} (matching uv), got {tuple(depth.shape)}", fn)
        V.check_finite(depth, "depth", fn=fn)
        dtype = torch.promote_types(torch.promote_types(uv.dtype, depth.dtype), self.dtype)
        K = self._K.to(dtype)
        fx, fy = K[:, None, 0, 0], K[:, None, 1, 1]
        cx, cy, s = K[:, None, 0, 2], K[:, None, 1, 2], K[:, None, 0, 1]
        uv, z = uv.to(dtype), depth.to(dtype)
        yn = (uv[..., 1] - cy) / fy
        xn = (uv[..., 0] - cx - s * yn) / fx
        cam = torch.stack([xn * z, yn * z, z], dim=-1)
        return self.camera_to_world(cam)


# --------------------------------------------------------------------------- #
# pose helpers
# --------------------------------------------------------------------------- #


def _vec3(x: Any, name: str, fn: str, dtype: torch.dtype | None, device: torch.device | None) -> torch.Tensor:
    """A ``(3,)`` or ``(N, 3)`` finite vector as ``(n, 3)`` (n = 1 for a single vector)."""
    t = _as_float_tensor(x, name, fn, dtype=dtype, device=device)
    if t.dim() == 1 and t.shape[0] == 3:
        t = t.unsqueeze(0)
    if t.dim() != 2 or t.shape[1] != 3:
        raise V.fail(name, f"must have shape (3,) or (N, 3), got {tuple(t.shape)}", fn)
    V.check_finite(t, name, fn=fn)
    return t


def _broadcast_n(named: dict[str, torch.Tensor], fn: str) -> int:
    sizes = {k: v.shape[0] for k, v in named.items() if v.shape[0] != 1}
    if len(set(sizes.values())) > 1:
        desc = ", ".join(f"{k}: {v}" for k, v in sizes.items())
        raise V.fail(next(iter(sizes)), f"batch sizes do not broadcast ({desc})", fn)
    return next(iter(sizes.values())) if sizes else 1


def look_at(
    eye: torch.Tensor | Sequence[float],
    at: torch.Tensor | Sequence[float] = (0.0, 0.0, 0.0),
    up: torch.Tensor | Sequence[float] = (0.0, 1.0, 0.0),
) -> torch.Tensor:
    """Camera-to-world poses of cameras at ``eye`` looking at ``at``.

    The camera's z axis (viewing direction) points from ``eye`` to ``at``; its
    y axis (image down) is ``-up`` made orthogonal to z, so ``up`` appears
    upwards in the image; x = y cross z (image right).  ``at`` projects to the
    principal point.

    Args:
        eye: ``(N, 3)`` or ``(3,)`` camera centres (world).
        at: ``(N, 3)`` or ``(3,)`` target points.
        up: ``(N, 3)`` or ``(3,)`` world up directions (need not be unit or
            orthogonal to the viewing direction, but not parallel to it).

    Returns:
        ``(N, 4, 4)`` rigid ``world_from_camera`` poses (``N`` = the broadcast
        batch size, 1 if all are single vectors), dtype of ``eye`` (default
        dtype for non-floating input), on its device.  Differentiable.

    Raises:
        InvalidInputError: bad shapes, non-finite values, ``eye == at``, or
            ``up`` parallel to the viewing direction.
    """
    fn = "look_at"
    e = _vec3(eye, "eye", fn, None, None)
    a = _vec3(at, "at", fn, e.dtype, e.device).to(e.device, e.dtype)
    u = _vec3(up, "up", fn, e.dtype, e.device).to(e.device, e.dtype)
    n = _broadcast_n({"eye": e, "at": a, "up": u}, fn)
    e, a, u = e.expand(n, 3), a.expand(n, 3), u.expand(n, 3)
    d = a - e
    dn = d.norm(dim=1)
    bad = (dn <= 0).nonzero().flatten()
    if bad.numel():
        raise V.fail("eye", f"must differ from 'at' (camera {int(bad[0])} has eye == at)", fn)
    z = d / dn[:, None]
    un = u.norm(dim=1)
    bad = (un <= 0).nonzero().flatten()
    if bad.numel():
        raise V.fail("up", f"must be a non-zero vector (camera {int(bad[0])})", fn)
    u = u / un[:, None]
    y = -(u - (u * z).sum(1, keepdim=True) * z)
    yn = y.norm(dim=1)
    bad = (yn <= 1e-6).nonzero().flatten()
    if bad.numel():
        raise V.fail("up", f"must not be parallel to the viewing direction (camera {int(bad[0])})", fn)
    y = y / yn[:, None]
    x = torch.linalg.cross(y, z, dim=1)
    R = torch.stack([x, y, z], dim=2)
    top = torch.cat([R, e.unsqueeze(2)], dim=2)
    bottom = torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=e.dtype, device=e.device).expand(n, 1, 4)
    return torch.cat([top, bottom], dim=1)


def _rotation_y_to(up: torch.Tensor) -> torch.Tensor:
    """``(n, 3, 3)`` shortest-arc rotations taking +Y to the unit vectors ``up`` (n, 3);
    +Y -> -Y is the half turn about +X."""
    n = up.shape[0]
    y = torch.tensor([0.0, 1.0, 0.0], dtype=up.dtype, device=up.device).expand(n, 3)
    axis = torch.linalg.cross(y, up, dim=1)
    c = (y * up).sum(1)
    s = axis.norm(dim=1)
    k = axis / torch.where(s > 0, s, torch.ones_like(s))[:, None]
    K = torch.zeros(n, 3, 3, dtype=up.dtype, device=up.device)
    K[:, 0, 1], K[:, 0, 2] = -k[:, 2], k[:, 1]
    K[:, 1, 0], K[:, 1, 2] = k[:, 2], -k[:, 0]
    K[:, 2, 0], K[:, 2, 1] = -k[:, 1], k[:, 0]
    eye = torch.eye(3, dtype=up.dtype, device=up.device).expand(n, 3, 3)
    R = eye + s[:, None, None] * K + (1 - c)[:, None, None] * (K @ K)
    flip = torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=up.dtype, device=up.device)).expand(n, 3, 3)
    return torch.where(((s <= 1e-12) & (c < 0))[:, None, None], flip, R)


def orbit_poses(
    azimuth: float | Sequence[float] | torch.Tensor,
    elevation: float | Sequence[float] | torch.Tensor,
    distance: float | Sequence[float] | torch.Tensor,
    at: torch.Tensor | Sequence[float] = (0.0, 0.0, 0.0),
    up: torch.Tensor | Sequence[float] = (0.0, 1.0, 0.0),
    *,
    degrees: bool = True,
) -> torch.Tensor:
    """Poses of cameras on a sphere around ``at``, looking at it.

    For ``up = +Y``: ``eye = at + distance * (cos(el) sin(az), sin(el),
    cos(el) cos(az))``; azimuth 0 / elevation 0 puts the camera on ``+Z``
    looking towards ``-Z`` (image right = world +X), azimuth turns it
    counter-clockwise seen from above (towards ``+X``), positive elevation
    raises it.  For another ``up`` the same offsets are turned by the
    shortest rotation taking +Y to ``up``.  Orientation as :func:`look_at`.

    Args:
        azimuth: a number or 1-D ``(N,)`` values; ``azimuth``,
            ``elevation`` and ``distance`` broadcast together.
        elevation: a number or ``(N,)`` values strictly inside
            ``(-90, 90)`` degrees (the poles leave the image's up direction
            undefined).
        distance: a number or ``(N,)`` values ``> 0``.
        at: ``(3,)`` or ``(N, 3)`` target.
        up: ``(3,)`` or ``(N, 3)`` up direction.
        degrees: angles in degrees (default) or radians.

    Returns:
        ``(N, 4, 4)`` ``world_from_camera`` poses in the dtype of the first
        floating tensor argument (else the default dtype), on its device.

    Raises:
        InvalidInputError: non-finite or non-broadcasting values, elevation at
            or beyond a pole, distance <= 0, a zero ``up``.
    """
    fn = "orbit_poses"
    V.check_bool(degrees, "degrees", fn=fn)
    dtype = next((x.dtype for x in (azimuth, elevation, distance, at, up)
                  if isinstance(x, torch.Tensor) and x.is_floating_point()), torch.get_default_dtype())
    device = next((x.device for x in (azimuth, elevation, distance, at, up) if isinstance(x, torch.Tensor)), None)
    vals = {}
    for name, x in (("azimuth", azimuth), ("elevation", elevation), ("distance", distance)):
        t = _as_float_tensor(x, name, fn, dtype=dtype, device=device).to(dtype)
        if t.dim() > 1:
            raise V.fail(name, f"must be a number or a 1-D tensor, got shape {tuple(t.shape)}", fn)
        V.check_finite(t, name, fn=fn)
        vals[name] = t.reshape(-1)
    n = _broadcast_n(vals, fn)
    az, el, dist = (vals[k].expand(n) for k in ("azimuth", "elevation", "distance"))
    if bool((dist <= 0).any()):
        raise V.fail("distance", f"must be > 0, got {float(dist.min()):g}", fn)
    limit = 90.0 if degrees else math.pi / 2
    if bool((el.abs() >= limit).any()):
        raise V.fail("elevation", f"must lie strictly inside (-{limit:g}, {limit:g}), got "
                     f"{float(el[el.abs() >= limit][0]):g}", fn)
    if degrees:
        az, el = torch.deg2rad(az), torch.deg2rad(el)
    a = _vec3(at, "at", fn, dtype, device).to(az.device, dtype)
    u = _vec3(up, "up", fn, dtype, device).to(az.device, dtype)
    un = u.norm(dim=1, keepdim=True)
    if bool((un <= 0).any()):
        raise V.fail("up", "must be a non-zero vector", fn)
    n = _broadcast_n({"azimuth": az, "at": a, "up": u}, fn)
    offset = torch.stack([torch.cos(el) * torch.sin(az), torch.sin(el), torch.cos(el) * torch.cos(az)], dim=1)
    offset = offset.expand(n, 3)
    R = _rotation_y_to((u / un).expand(n, 3))
    offset = (R @ offset.unsqueeze(2)).squeeze(2)
    eye = a.expand(n, 3) + dist.expand(n)[:, None] * offset
    return look_at(eye, a.expand(n, 3), u.expand(n, 3))


# ----------------------------------------------------------------------------- defaults and conversions
def default_distance(fov: float = 40.0, margin: float = 0.05) -> float:
    """Camera distance of the ``shapes`` renders for a vertical ``fov`` in degrees:
    the unit cube's circumscribed sphere fits the view, times ``1 + margin``
    (the rule of :class:`geomgen.data.SampleConfig`)."""
    return (1.0 + margin) * _CUBE_RADIUS / math.sin(math.radians(fov) / 2.0)


def default_intrinsics(n: int, height: int, width: int, fov: float = 40.0, *,
                       dtype: torch.dtype = torch.float32, device: Any = None) -> torch.Tensor:
    """``(N, 3, 3)`` pinhole intrinsics with vertical field of view ``fov`` degrees,
    square pixels and the principal point at the image centre (OpenCV pixel centres)."""
    f = 0.5 * height / math.tan(math.radians(fov) / 2.0)
    K = torch.tensor([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]], dtype=dtype, device=device)
    return K.expand(n, 3, 3).clone()


def scale_intrinsics(K: Any, sizes: Sequence[tuple[int, int]], size: int | tuple[int, int], *,
                     fn: str = "scale_intrinsics") -> torch.Tensor:
    """Pixel intrinsics of images resized from their original sizes to ``size``.

    Resizing an ``H x W`` image to ``H' x W'`` scales the first row of ``K``
    (``fx``, skew, ``cx``) by ``W' / W`` and the second (``fy``, ``cy``) by
    ``H' / H`` (pixel centres at ``+0.5`` map onto pixel centres).

    Args:
        K: ``(3, 3)`` intrinsics shared by every image, or ``(N, 3, 3)``, of
            the **original** images (anything :func:`torch.as_tensor` takes).
        sizes: the ``N`` original ``(H, W)`` image sizes.
        size: the new size: ``S`` (square ``S x S``) or ``(H', W')``.
        fn: the function name error messages start with.

    Returns:
        ``(N, 3, 3)`` float32 intrinsics on the CPU (a new tensor).

    Raises:
        InvalidInputError: ``K`` is not ``(3, 3)`` or ``(N, 3, 3)`` valid intrinsics
            (:func:`geomgen.checks.check_intrinsics`).
    """
    try:
        Kt = torch.as_tensor(K, dtype=torch.float32).cpu()
    except (TypeError, ValueError, RuntimeError):
        raise V.fail("K", f"must be (3, 3) or (N, 3, 3) intrinsics, got {type(K).__name__}", fn) from None
    Kt = V.check_intrinsics(Kt, n=len(sizes), fn=fn)
    new_h, new_w = (size, size) if isinstance(size, int) else size
    Kt = Kt.clone()
    for i, (h, w) in enumerate(sizes):
        Kt[i, 0] *= new_w / w
        Kt[i, 1] *= new_h / h
    return Kt


def opencv_to_y_up(points: torch.Tensor) -> torch.Tensor:
    """Camera-frame points from OpenCV axes to Y-up (OpenGL) axes: ``(x, y, z) -> (x, -y, -z)``.

    OpenCV's camera frame has ``x`` right, ``y`` **down** and ``z`` forward (into
    the scene); the result has ``x`` right, ``y`` **up** and ``z`` towards the
    viewer, so a camera-frame prediction shows upright with the camera on ``+Z``
    (an orbit view at azimuth 0 looks from the input camera's side).  It is the
    half turn about ``x`` (a rotation, so handedness and face orientation are
    kept) and its own inverse.

    Args:
        points: ``(..., 3)`` points or directions, e.g. ``(P, 3)`` or ``(N, P, 3)``.

    Returns:
        ``(..., 3)`` tensor of the same dtype and device.
    """
    if not isinstance(points, torch.Tensor) or points.dim() == 0 or points.shape[-1] != 3:
        shape = tuple(points.shape) if isinstance(points, torch.Tensor) else type(points).__name__
        raise V.fail("points", f"must be a (..., 3) tensor, got {shape}", "opencv_to_y_up")
    return points * torch.tensor([1.0, -1.0, -1.0], dtype=points.dtype, device=points.device)
