"""Initial meshes of the refinement stages, in the camera frame: an ico-sphere or cubified voxels.

Shapes: ``N`` images, ``R`` voxels per axis of the camera-frame grid.

The camera-frame voxel grid (``init="voxel"``) is axis-aligned with the
camera (OpenCV: +X right, +Y down, +Z forward), a cube of side ``side``
centred at ``(0, 0, distance)`` -- where the ``shapes`` renders put the
object.  Its ground truth is read from the dataset's object-frame grid
(``[-0.5, 0.5]^3``) at the camera grid's voxel centres mapped to the object
frame with the view's pose (nearest voxel), so no re-voxelization is needed.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from geomgen.models import transform_points
from geomgen.ops import cubify, ico_sphere
from geomgen.structures import Meshes, Voxels

__all__ = ["sphere_init", "CameraGrid", "voxels_to_init"]


def sphere_init(n: int, level: int, radius: float, distance: float, device: torch.device) -> Meshes:
    """``N`` copies of an ico-sphere of ``radius`` centred at ``(0, 0, distance)`` (camera frame)."""
    sphere = ico_sphere(level, device=device)
    v = sphere.verts_list()[0] * radius + torch.tensor([0.0, 0.0, distance], device=device)
    f = sphere.faces_list()[0]
    return Meshes([v] * n, [f] * n)


class CameraGrid:
    """A camera-aligned cube of ``R^3`` voxels, side ``side``, centred at ``(0, 0, distance)``.

    ``grid[k, j, i]`` is the voxel at camera ``(x_i, y_j, z_k)`` (the
    :class:`~geomgen.structures.Voxels` layout).
    """

    def __init__(self, resolution: int, side: float, distance: float) -> None:
        self.resolution = int(resolution)
        self.side = float(side)
        self.distance = float(distance)

    @property
    def origin(self) -> tuple[float, float, float]:
        """Camera-frame min corner of the grid."""
        h = self.side / 2.0
        return (-h, -h, self.distance - h)

    @property
    def voxel_size(self) -> float:
        return self.side / self.resolution

    def centres(self, device: torch.device) -> torch.Tensor:
        """``(R^3, 3)`` camera-frame voxel centres, flattened in ``[k, j, i]`` order."""
        r = self.resolution
        t = (torch.arange(r, device=device, dtype=torch.float32) + 0.5) * self.voxel_size
        z, y, x = torch.meshgrid(t, t, t, indexing="ij")
        return torch.stack([x, y, z], -1).reshape(-1, 3) + torch.tensor(self.origin, device=device)

    def target(self, world_voxels: torch.Tensor, world_from_camera: torch.Tensor) -> torch.Tensor:
        """``(N, R, R, R)`` float occupancy in this grid from the object-frame GT.

        Args:
            world_voxels: ``(N, R0, R0, R0)`` occupancy over ``[-0.5, 0.5]^3``
                (``[k, j, i]`` <-> ``(z, y, x)``).
            world_from_camera: ``(N, 4, 4)`` poses of the views.
        """
        n = world_voxels.shape[0]
        pts = self.centres(world_voxels.device).expand(n, -1, -1)
        obj = transform_points(pts, world_from_camera.to(pts))      # (N, R^3, 3) object frame
        grid = (2.0 * obj).reshape(n, 1, 1, -1, 3)                   # [-0.5, 0.5] -> [-1, 1], (x, y, z)
        vals = F.grid_sample(world_voxels[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                             align_corners=False)
        r = self.resolution
        return vals.reshape(n, r, r, r)

    def to_voxels(self, occupancy: torch.Tensor) -> Voxels:
        """Wrap ``(N, R, R, R)`` occupancy probabilities as camera-frame :class:`Voxels`."""
        return Voxels(occupancy, origin=self.origin, voxel_size=self.voxel_size)


def voxels_to_init(prob: torch.Tensor, grid: CameraGrid, thresh: float, fallback: Meshes,
                   max_verts: int | None = None) -> Meshes:
    """Cubify ``(N, R, R, R)`` probabilities (no autograd); an empty result (or one with more
    than ``max_verts`` vertices) falls back to the matching mesh of ``fallback``."""
    with torch.no_grad():
        cubes = cubify(grid.to_voxels(prob.detach().float()), thresh)
    verts, faces = [], []
    for i, (v, f) in enumerate(zip(cubes.verts_list(), cubes.faces_list())):
        if f.shape[0] == 0 or (max_verts is not None and v.shape[0] > max_verts):
            v, f = fallback.verts_list()[i], fallback.faces_list()[i]
        verts.append(v.to(prob.device))
        faces.append(f.to(prob.device))
    return Meshes(verts, faces)
