"""Batched depth maps with pinhole intrinsics.

Shape letters used in this module:

* ``N`` - number of depth maps in the batch
* ``H``, ``W`` - image height (rows) and width (columns), shared by the batch

**Depth** is metric *z-depth* in the camera frame: the z coordinate of the
surface point, **not** its distance along the viewing ray.

**Camera frame** (OpenCV style): x points right, y points down, z points
forward (into the scene); depth > 0 in front of the camera.

**Pixel convention.**  ``depth[n, v, u]`` is the pixel in row ``v`` and
column ``u``.  In the pixel frame used by ``K``, that pixel covers
``[u, u+1) x [v, v+1)`` and its **centre is at (u + 0.5, v + 0.5)**; the
image spans ``[0, W] x [0, H]``, so a centred principal point is
``(W / 2, H / 2)``.  (OpenCV places pixel centres at integers: to use an
OpenCV-calibrated ``K`` here, add 0.5 to ``cx`` and ``cy``.)

**Intrinsics** ``K = [[fx, s, cx], [0, fy, cy], [0, 0, 1]]`` (skew ``s``
usually 0) map a camera-frame point ``(x, y, z)`` to pixel coordinates
``(fx * x / z + s * y / z + cx, fy * y / z + cy)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import torch

from geomgen import checks as V
from geomgen.errors import InvalidInputError
from geomgen.structures._base import _DenseBatch, check_join_items
from geomgen.structures._checks import as_tensor, check_batched, check_pattern, stack_items

if TYPE_CHECKING:
    from geomgen.structures.pointclouds import PointClouds

__all__ = ["DepthMaps", "join_depthmaps_as_batch"]

_SAME_SIZE = "all depth maps of a batch share one image size (stored as one (N, H, W) tensor)"


class DepthMaps(_DenseBatch):
    """A batch of ``N`` z-depth maps of one image size ``(H, W)`` with
    per-map pinhole intrinsics.

    Args:
        depth: ``(N, H, W)`` floating tensor (or a list of ``(H, W)``) of
            metric z-depth.  Integer depth (e.g. uint16 millimetres) is
            rejected: convert to metres first.
        K: intrinsics ``(3, 3)`` shared by the batch or ``(N, 3, 3)``; cast to
            the dtype of ``depth``.  Must have ``fx, fy > 0``, ``K[1, 0] = 0``
            and bottom row ``[0, 0, 1]`` (:func:`geomgen.checks.check_intrinsics`).
        masks: optional ``(N, H, W)`` bool of valid pixels; default
            ``isfinite(depth) & (depth > 0)``.  Depth outside the mask may be
            anything (NaN, 0, negative).
        validate: check ``K`` and that every masked-in depth is finite and
            > 0.  Shapes and dtypes are always checked.

    Raises:
        InvalidInputError: naming the argument (and map index) at fault.
    """

    def __init__(
        self,
        depth: torch.Tensor | Sequence[torch.Tensor],
        K: torch.Tensor,
        masks: torch.Tensor | Sequence[torch.Tensor] | None = None,
        validate: bool = True,
    ) -> None:
        d = stack_items(depth, "depth", ("H", "W"), _SAME_SIZE)
        if not d.is_floating_point():
            raise InvalidInputError(
                f"depth: expected a floating-point tensor of metric z-depth, got dtype {d.dtype} "
                "(convert e.g. uint16 millimetres to float metres first)"
            )
        n = d.shape[0]
        k = as_tensor(K, "K", d.device)
        if k.is_complex() or k.dtype == torch.bool:
            raise InvalidInputError(f"K: expected real numbers, got dtype {k.dtype}")
        if k.device != d.device:
            raise InvalidInputError(f"K: on device {k.device}, expected {d.device}")
        k = k.to(d.dtype)
        if k.shape == (3, 3):
            k = k.unsqueeze(0).expand(n, 3, 3)
        else:
            check_pattern(k, "K", (n, 3, 3), f"a (3, 3) or ({n}, 3, 3) tensor")
        if masks is None:
            m = torch.isfinite(d.detach()) & (d.detach() > 0)
        else:
            m = stack_items(masks, "masks", ("H", "W"), _SAME_SIZE)
            if m.dtype != torch.bool:
                raise InvalidInputError(f"masks: expected a bool tensor, got dtype {m.dtype}")
            if m.shape != d.shape:
                raise InvalidInputError(f"masks: shape {tuple(m.shape)} does not match depth {tuple(d.shape)}")
            if m.device != d.device:
                raise InvalidInputError(f"masks: on device {m.device}, expected {d.device}")
        if validate:
            V.check_intrinsics(k.detach(), n=n)
            dd = d.detach()
            check_batched(
                m & ~(torch.isfinite(dd) & (dd > 0)), "depth",
                "{count} pixels inside the mask are NaN/Inf or <= 0 (mask them out or fix them)",
            )
        self._setup(d, k, m, bool(validate))

    def _setup(self, depth: torch.Tensor, K: torch.Tensor, masks: torch.Tensor, validated: bool) -> None:
        self._depth = depth
        self._K = K
        self._masks = masks
        self._validated = validated

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return self._depth, self._K, self._masks

    def _new(self, depth: torch.Tensor, K: torch.Tensor, masks: torch.Tensor) -> "DepthMaps":
        return DepthMaps._build(depth, K, masks, self._validated)

    # ------------------------------------------------------------ basic info

    def __repr__(self) -> str:
        h, w = self.image_size
        return f"DepthMaps(N={len(self)}, image_size=({h}, {w}), device={self.device}, dtype={self.dtype})"

    @property
    def depth(self) -> torch.Tensor:
        """``(N, H, W)`` z-depth."""
        return self._depth

    @property
    def K(self) -> torch.Tensor:  # noqa: N802 - standard name for intrinsics
        """``(N, 3, 3)`` intrinsics."""
        return self._K

    @property
    def masks(self) -> torch.Tensor:
        """``(N, H, W)`` bool valid-pixel masks."""
        return self._masks

    @property
    def image_size(self) -> tuple[int, int]:
        """``(H, W)``."""
        return int(self._depth.shape[1]), int(self._depth.shape[2])

    @property
    def focal_length(self) -> torch.Tensor:
        """``(N, 2)`` ``(fx, fy)`` in pixels."""
        return torch.stack([self._K[:, 0, 0], self._K[:, 1, 1]], dim=-1)

    @property
    def principal_point(self) -> torch.Tensor:
        """``(N, 2)`` ``(cx, cy)`` in pixels (pixel-centre convention of this module)."""
        return torch.stack([self._K[:, 0, 2], self._K[:, 1, 2]], dim=-1)

    # ------------------------------------------------------------ geometry

    def pixel_centers(self) -> torch.Tensor:
        """``(H, W, 2)`` ``(u + 0.5, v + 0.5)`` pixel-frame coordinates of
        every pixel centre."""
        h, w = self.image_size
        kw = dict(dtype=self.dtype, device=self.device)
        v, u = torch.meshgrid(torch.arange(h, **kw), torch.arange(w, **kw), indexing="ij")
        return torch.stack([u, v], dim=-1) + 0.5

    def unproject(self) -> torch.Tensor:
        """``(N, H, W, 3)`` camera-frame xyz of every pixel centre at its
        depth; zeros where the mask is False.  Differentiable in depth and K."""
        uv = self.pixel_centers()
        n = len(self)
        fx, fy = self._K[:, 0, 0].reshape(n, 1, 1), self._K[:, 1, 1].reshape(n, 1, 1)
        cx, cy = self._K[:, 0, 2].reshape(n, 1, 1), self._K[:, 1, 2].reshape(n, 1, 1)
        s = self._K[:, 0, 1].reshape(n, 1, 1)
        yn = (uv[..., 1] - cy) / fy
        xn = (uv[..., 0] - cx - s * yn) / fx
        z = torch.where(self._masks, self._depth, torch.zeros_like(self._depth))
        return torch.stack([xn * z, yn * z, z], dim=-1)

    def to_pointclouds(self) -> "PointClouds":
        """:class:`~geomgen.structures.PointClouds` of the masked-in pixels
        in the camera frame (row-major pixel order), one cloud per map."""
        from geomgen.structures.pointclouds import PointClouds

        pts = self.unproject()
        return PointClouds([pts[i][self._masks[i]] for i in range(len(self))], validate=False)


def join_depthmaps_as_batch(depthmaps: Sequence[DepthMaps]) -> DepthMaps:
    """Concatenate several ``DepthMaps`` batches of one image size, device and
    dtype into one batch."""
    if isinstance(depthmaps, DepthMaps) or not isinstance(depthmaps, (list, tuple)) or not depthmaps:
        raise InvalidInputError(f"depthmaps: expected a non-empty list of DepthMaps, got {depthmaps!r:.60}")
    check_join_items(depthmaps, "depthmaps", DepthMaps, ("image_size", "device", "dtype"))
    return DepthMaps._build(
        torch.cat([d.depth for d in depthmaps]), torch.cat([d.K for d in depthmaps]),
        torch.cat([d.masks for d in depthmaps]), all(d.validated for d in depthmaps),
    )
