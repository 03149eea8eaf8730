"""The ``pointcloud`` representation: image -> object-frame point set.

Shape letters: ``N`` images, ``P`` points per cloud, ``D`` code size.

Architecture: :class:`~geomgen.nn.ResNetEncoder` global (average-pooled)
code ``(N, D)`` -> point decoder (:mod:`geomgen_pointcloud.decoders`):

* ``decoder="folding"`` (default): ``num_patches`` learned patches folding
  ``[0, 1]^2`` onto the surface.  Training samples ``num_points`` uniform
  random parameters per shape each step; inference uses a deterministic
  low-discrepancy set, so :meth:`~PointCloudPredictor.predict_points` can
  return any number of points on the same learned surface.
* ``decoder="mlp"``: an MLP emitting a fixed set of ``num_points`` points.

Loss: :func:`geomgen.losses.chamfer_distance` between the ``num_points``
predicted points and the ground-truth surface samples of the batch
(``pointclouds``, 4096 per shape): **squared** Euclidean nearest-neighbour
distances, averaged over the points of each cloud, the two directions
**summed**, averaged over the batch (object-frame units, shapes within
``[-0.5, 0.5]^3``).

Normals (for the evaluation's normal consistency) are estimated by PCA over
the ``normal_k`` nearest predicted neighbours (:func:`~geomgen_pointcloud.normals.estimate_normals`;
sign: away from the centroid).  Meshes come from
:func:`~geomgen_pointcloud.reconstruct.reconstruct_surface` (splat, close,
fill, marching cubes: watertight).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from geomgen import checks as V
from geomgen.losses import chamfer_distance
from geomgen.models import ShapePredictor
from geomgen.nn import NORM_KINDS, RESNET_PRESETS, ResNetEncoder
from geomgen.structures import Meshes, PointClouds
from geomgen_pointcloud.config import DECODERS, PointCloudConfig
from geomgen_pointcloud.decoders import FoldingPointDecoder, MLPPointDecoder
from geomgen_pointcloud.normals import estimate_normals
from geomgen.ops.reconstruct import reconstruct_surface

__all__ = ["PointCloudPredictor", "DECODERS"]


class PointCloudPredictor(ShapePredictor):
    """Single-view point-set predictor in the object frame.

    Args:
        config: a :class:`~geomgen_pointcloud.config.PointCloudConfig` (or a
            mapping of its keys); ``None``: the defaults.
        **overrides: :class:`~geomgen_pointcloud.config.PointCloudConfig` keys
            replacing those of ``config``.

    ``self.config`` is the plain dict of the validated config (saved with the
    weights).  ``mesh_level`` is the marching-cubes level on the binary solid
    of :meth:`predict_meshes` (0.5: the surface half a voxel beyond the
    outermost occupied voxel centres; larger values pull it in, 0.75: a quarter
    voxel).

    Raises:
        InvalidInputError: a bad config key or value (named in the message).
    """

    output = "pointcloud"
    frame = "object"
    has_volume = True

    def __init__(self, config: PointCloudConfig | Mapping[str, Any] | None = None, /, **overrides: Any) -> None:
        c = PointCloudConfig.resolve(config, **overrides)
        c.check_choice("encoder", RESNET_PRESETS)
        c.check_choice("norm", NORM_KINDS)
        super().__init__(c.to_dict())
        self.encoder = ResNetEncoder.from_name(c.encoder, norm=c.norm, out_dim=c.code_dim)
        if c.decoder == "folding":
            self.decoder: torch.nn.Module = FoldingPointDecoder(c.code_dim, c.num_patches, c.hidden, c.layers)
        else:
            self.decoder = MLPPointDecoder(c.code_dim, c.num_points, tuple([c.hidden] * c.layers))

    @property
    def num_points(self) -> int:
        """``P``: points per shape in training and :meth:`predict`."""
        return int(self.config["num_points"])

    # ------------------------------------------------------------------ network
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` images in [0, 1] -> ``(N, D)`` shape codes."""
        return self.encoder(images * 2.0 - 1.0).pooled

    def decode(self, code: torch.Tensor, num_points: int | None = None, random: bool = False) -> torch.Tensor:
        """``(N, D)`` codes -> ``(N, P', 3)`` object-frame points.

        Folding: ``P' = num_points`` (default ``P``), deterministic parameters
        unless ``random`` (uniform, the training mode).  MLP: always its ``P``
        points (``num_points`` is ignored).
        """
        if isinstance(self.decoder, FoldingPointDecoder):
            n = self.num_points if num_points is None else num_points
            uv = None
            if random:
                t = -(-n // self.decoder.num_patches)
                uv = torch.rand(code.shape[0], self.decoder.num_patches, t, 2, device=code.device, dtype=code.dtype)
            return self.decoder(code, n, uv)
        return self.decoder(code)

    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, 3, H, W)`` images -> ``(N, P, 3)`` object-frame points (random folding
        parameters in training mode, deterministic in eval mode); ``K`` is unused
        (object-frame predictions do not depend on the intrinsics)."""
        return self.decode(self.encode(images), random=self.training)

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Chamfer loss (module docstring) against ``batch["pointclouds"]`` (object frame).

        Returns:
            ``{"loss", "chamfer"}`` scalars: squared distances, point means,
            directions summed, batch mean.
        """
        pred = self(batch["images"].to(self.device))
        gt = batch["pointclouds"]
        gt_pts = gt.points_padded().to(self.device, pred.dtype)
        gt_len = gt.num_points_per_cloud().to(self.device)
        cd, _ = chamfer_distance(pred, gt_pts, y_lengths=gt_len)
        return {"loss": cd, "chamfer": cd.detach()}

    # --------------------------------------------------------------- prediction
    def _points(self, images: torch.Tensor, num_points: int) -> PointClouds:
        images = self.check_images(images)
        pts = self.decode(self.encode(images), num_points)
        if pts.shape[1] > num_points:  # MLP decoder: deterministic, evenly spaced subset
            idx = torch.linspace(0, pts.shape[1] - 1, num_points, device=pts.device).round().long()
            pts = pts[:, idx]
        normals = estimate_normals(pts, k=self.config["normal_k"])
        return PointClouds(pts, normals=normals)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, K: torch.Tensor | None = None) -> PointClouds:
        """``PointClouds`` of ``N`` object-frame clouds of ``P`` points with PCA normals."""
        return self._points(images, self.num_points)

    @torch.no_grad()
    def predict_points(self, images: torch.Tensor, K: torch.Tensor | None = None,
                       num_points: int = 10000) -> PointClouds:
        """Object-frame points with PCA normals: ``num_points`` samples of the folded
        surface (deterministic), or for the MLP decoder its ``P`` points (a
        deterministic subset when ``num_points < P``; never duplicated)."""
        num_points = V.check_int(num_points, "num_points", min_value=1, fn="predict_points")
        return self._points(images, num_points)

    @torch.no_grad()
    def predict_meshes(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Meshes:
        """Watertight object-frame meshes reconstructed from the predicted points
        (``mesh_points`` of the folding decoder, or the MLP's ``P``) by
        :func:`~geomgen_pointcloud.reconstruct.reconstruct_surface`."""
        images = self.check_images(images)
        pts = self.decode(self.encode(images), self.config["mesh_points"])
        return reconstruct_surface(pts, resolution=self.config["mesh_resolution"], bound=0.55,
                                   level=self.config["mesh_level"])
