"""Batched dense voxel grids (occupancy or signed distance).

Shape letters used in this module:

* ``N`` - number of grids in the batch
* ``D``, ``H``, ``W`` - grid depth, height, width (voxels along z, y, x)
* ``P`` - number of query points

**All grids of a batch share one resolution** ``(D, H, W)``: the batch is
stored as a single dense ``(N, D, H, W)`` tensor so it can go straight into
dense 3D convolutions (``torch.nn.Conv3d`` takes ``(N, C, D, H, W)``) and
``torch.nn.functional.grid_sample``.  Origins and voxel sizes may differ per
grid.

**Axis convention.**  ``grids[n, k, j, i]`` is the voxel with x index ``i``
(along ``W``), y index ``j`` (along ``H``) and z index ``k`` (along ``D``),
the same mapping ``grid_sample`` uses (x -> W, y -> H, z -> D).  Every
coordinate triple in this module (points, origins, voxel sizes, grid
coordinates) is in **x, y, z order**.

**World placement.**  ``origin`` is the world position of the *minimum
corner* of voxel ``(0, 0, 0)``; ``voxel_size`` holds the x, y, z edge lengths.
Voxel ``(k, j, i)`` covers ``origin + [i, i+1) x [j, j+1) x [k, k+1) *
voxel_size`` and its centre is ``origin + (i + 0.5, j + 0.5, k + 0.5) *
voxel_size``.

**Grid coordinates** (:meth:`Voxels.world_to_grid`) are continuous voxel
units measured from that corner: ``g = (p - origin) / voxel_size``.  So
``floor(g)`` is the index of the voxel containing ``p`` (x, y, z order) and
voxel centres sit at ``integer + 0.5``.

**Local coordinates** (:meth:`Voxels.world_to_local_coords`) map the grid's
bounding box onto ``[-1, 1]^3`` for
``grid_sample(..., align_corners=False)``: ``-1`` / ``+1`` are the outer
faces of the first / last voxel, as grid_sample expects with
``align_corners=False``.

Kinds: ``"occupancy"`` values in ``[0, 1]`` (bool and integer grids are
converted to float); ``"sdf"`` signed distance in world units, negative
inside.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from geomgen.errors import InvalidInputError
from geomgen.structures._base import _DenseBatch, check_join_items
from geomgen.structures._checks import broadcast_batch_param, check_batched, float_tensor_on, stack_items

__all__ = ["Voxels", "join_voxels_as_batch"]

KINDS = ("occupancy", "sdf")
_SAME_RES = "all grids of a batch share one resolution (stored as one dense (N, D, H, W) tensor for 3D convolution)"


class Voxels(_DenseBatch):
    """A batch of ``N`` dense voxel grids of one resolution ``(D, H, W)``.

    Args:
        grids: ``(N, D, H, W)`` tensor, or a list of ``N`` ``(D, H, W)``
            tensors of equal shape (stacked).  NumPy arrays are accepted.
        kind: ``"occupancy"`` (values in ``[0, 1]``; bool/integer grids are
            converted to the default float dtype) or ``"sdf"`` (signed
            distance in world units, negative inside; integer grids are
            converted to float).
        origin: world xyz of the min corner of voxel ``(0, 0, 0)``: ``(3,)``
            shared or ``(N, 3)`` per grid; default zeros.
        voxel_size: voxel edge lengths, > 0: a scalar, ``(3,)`` xyz, or
            ``(N, 3)`` per grid.
        validate: check values are finite, occupancies in ``[0, 1]``,
            ``voxel_size > 0`` and ``origin`` finite.  Shapes and dtypes are
            always checked.

    Raises:
        InvalidInputError: naming the argument (and grid index) at fault.
    """

    def __init__(
        self,
        grids: torch.Tensor | Sequence[torch.Tensor],
        kind: str = "occupancy",
        origin: torch.Tensor | Sequence[float] | None = None,
        voxel_size: float | torch.Tensor | Sequence[float] = 1.0,
        validate: bool = True,
    ) -> None:
        if kind not in KINDS:
            raise InvalidInputError(f"kind: expected 'occupancy' or 'sdf', got {kind!r}")
        g = stack_items(grids, "grids", ("D", "H", "W"), _SAME_RES)
        if g.is_complex():
            raise InvalidInputError(f"grids: expected real values, got dtype {g.dtype}")
        if g.dtype == torch.bool and kind == "sdf":
            raise InvalidInputError("grids: a bool grid cannot be a signed distance field (use kind='occupancy')")
        if not g.is_floating_point():
            g = g.to(torch.get_default_dtype())
        if min(g.shape[1:]) < 1:
            raise InvalidInputError(f"grids: D, H and W must all be >= 1, got resolution {tuple(g.shape[1:])}")
        n = g.shape[0]
        org = broadcast_batch_param(origin, "origin", n, 3, g.dtype, g.device, default=0.0)
        size = broadcast_batch_param(voxel_size, "voxel_size", n, 3, g.dtype, g.device)
        if validate:
            check_batched(~torch.isfinite(org), "origin", "{count} non-finite coordinates")
            check_batched(~(torch.isfinite(size) & (size > 0)), "voxel_size", "{count} entries are not finite and > 0")
            d = g.detach()
            check_batched(~torch.isfinite(d), "grids", "{count} NaN/Inf values")
            if kind == "occupancy":
                check_batched((d < 0) | (d > 1), "grids", "{count} values outside [0, 1] for kind='occupancy'")
        self._setup(g, kind, org, size, bool(validate))

    def _setup(self, grids: torch.Tensor, kind: str, origin: torch.Tensor, size: torch.Tensor, validated: bool) -> None:
        self._grids = grids
        self._kind = kind
        self._origin = origin
        self._voxel_size = size
        self._validated = validated

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return self._grids, self._origin, self._voxel_size

    def _new(self, grids: torch.Tensor, origin: torch.Tensor, size: torch.Tensor) -> "Voxels":
        return Voxels._build(grids, self._kind, origin, size, self._validated)

    # ------------------------------------------------------------ basic info

    def __repr__(self) -> str:
        return (
            f"Voxels(N={len(self)}, kind={self._kind!r}, resolution={self.resolution}, "
            f"device={self.device}, dtype={self.dtype})"
        )

    @property
    def kind(self) -> str:
        """``"occupancy"`` or ``"sdf"``."""
        return self._kind

    @property
    def grids(self) -> torch.Tensor:
        """``(N, D, H, W)`` the stored values (occupancy or signed distance)."""
        return self._grids

    def densities(self) -> torch.Tensor:
        """``(N, D, H, W)`` the stored values (same tensor as :attr:`grids`)."""
        return self._grids

    @property
    def origin(self) -> torch.Tensor:
        """``(N, 3)`` xyz world position of each grid's min corner."""
        return self._origin

    @property
    def voxel_size(self) -> torch.Tensor:
        """``(N, 3)`` xyz voxel edge lengths."""
        return self._voxel_size

    @property
    def resolution(self) -> tuple[int, int, int]:
        """``(D, H, W)``."""
        d, h, w = self._grids.shape[1:]
        return int(d), int(h), int(w)

    def _size_xyz(self) -> torch.Tensor:
        d, h, w = self.resolution
        return torch.tensor([w, h, d], dtype=self.dtype, device=self.device)

    def occupancy(self, threshold: float | None = None) -> torch.Tensor:
        """``(N, D, H, W)`` bool inside mask.

        ``"occupancy"``: ``value >= threshold`` (default 0.5).
        ``"sdf"``: ``value <= threshold`` (default 0.0, the surface level).
        """
        if self._kind == "occupancy":
            return self._grids >= (0.5 if threshold is None else threshold)
        return self._grids <= (0.0 if threshold is None else threshold)

    # ----------------------------------------------------------- coordinates

    def voxel_centers(self) -> torch.Tensor:
        """``(N, D, H, W, 3)`` xyz world position of every voxel centre."""
        d, h, w = self.resolution
        kw = dict(dtype=self.dtype, device=self.device)
        k, j, i = torch.meshgrid(torch.arange(d, **kw), torch.arange(h, **kw), torch.arange(w, **kw), indexing="ij")
        ijk = torch.stack([i, j, k], dim=-1) + 0.5  # (D, H, W, 3) xyz grid coords
        n = len(self)
        return self._origin.reshape(n, 1, 1, 1, 3) + ijk.unsqueeze(0) * self._voxel_size.reshape(n, 1, 1, 1, 3)

    def _points(self, points: Any, name: str) -> tuple[torch.Tensor, tuple[int, ...]]:
        """``(N, *, 3)`` view of ``points`` (``(P, 3)`` is shared by all
        grids) and the shape to broadcast per-grid ``(N, 3)`` parameters."""
        t = float_tensor_on(points, name, self.device)
        n = len(self)
        if t.ndim == 2 and t.shape[1] == 3:
            t = t.unsqueeze(0).expand(n, -1, 3)
        elif t.ndim < 3 or t.shape[0] != n or t.shape[-1] != 3:
            raise InvalidInputError(
                f"{name}: expected a ({n}, P, 3) or (P, 3) tensor, got shape {tuple(t.shape)}"
            )
        return t, (n,) + (1,) * (t.ndim - 2) + (3,)

    def world_to_grid(self, points: torch.Tensor) -> torch.Tensor:
        """Continuous grid coordinates ``(p - origin) / voxel_size`` in x, y, z
        order: ``(N, P, 3)`` from world points ``(N, P, 3)`` (or ``(P, 3)``
        shared by every grid; any ``(N, *, 3)`` works).  Voxel ``(k, j, i)``
        spans ``[i, i+1) x [j, j+1) x [k, k+1)``; centres are at ``+0.5``."""
        p, shape = self._points(points, "points")
        return (p - self._origin.reshape(shape)) / self._voxel_size.reshape(shape)

    def grid_to_world(self, coords: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`world_to_grid`: ``(N, P, 3)`` world xyz from grid
        coordinates ``(N, P, 3)`` (or ``(P, 3)``)."""
        c, shape = self._points(coords, "coords")
        return self._origin.reshape(shape) + c * self._voxel_size.reshape(shape)

    def world_to_local_coords(self, points: torch.Tensor) -> torch.Tensor:
        """``(N, P, 3)`` coordinates in ``[-1, 1]`` over the grid's bounding
        box (x, y, z order), ready for
        ``grid_sample(grids[:, None], local.view(N, P, 1, 1, 3), align_corners=False)``."""
        g = self.world_to_grid(points)
        return 2.0 * g / self._size_xyz() - 1.0

    def local_to_world_coords(self, coords: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`world_to_local_coords`."""
        c, _ = self._points(coords, "coords")
        return self.grid_to_world((c + 1.0) * 0.5 * self._size_xyz())

    def get_bounding_boxes(self) -> torch.Tensor:
        """``(N, 3, 2)`` world box of each grid, ``[..., 0]`` = min corner
        (the origin), ``[..., 1]`` = max corner."""
        hi = self._origin + self._voxel_size * self._size_xyz()
        return torch.stack([self._origin, hi], dim=-1)


def join_voxels_as_batch(voxels: Sequence[Voxels]) -> Voxels:
    """Concatenate several ``Voxels`` batches of one kind, resolution, device
    and dtype into one batch."""
    if isinstance(voxels, Voxels) or not isinstance(voxels, (list, tuple)) or not voxels:
        raise InvalidInputError(f"voxels: expected a non-empty list of Voxels, got {voxels!r:.60}")
    check_join_items(voxels, "voxels", Voxels, ("kind", "resolution", "device", "dtype"))
    return Voxels._build(
        torch.cat([v.grids for v in voxels]), voxels[0].kind, torch.cat([v.origin for v in voxels]),
        torch.cat([v.voxel_size for v in voxels]), all(v.validated for v in voxels),
    )
