"""Mesh R-CNN-style single-view mesh predictor (:class:`MeshPredictor`).

Shapes: ``N`` images of ``H x W`` pixels; meshes are packed: ``V`` vertices
over the batch, ``E`` edges.

Pipeline (camera frame, OpenCV: +X right, +Y down, +Z forward; the object
sits around ``(0, 0, distance)``):

1. a :class:`geomgen.nn.ResNetEncoder` gives a feature pyramid and a pooled code;
2. the initial mesh is an ico-sphere (``init="sphere"``) or the cubified
   prediction of a camera-frame voxel head (``init="voxel"``, see
   :mod:`geomgen_mesh.init_mesh`);
3. ``stages`` refinement stages: each projects the vertices with ``K``,
   samples the pyramid there (:func:`geomgen.ops.vert_align`), concatenates
   the vertex positions and the previous stage's vertex features, runs
   :class:`geomgen.nn.GraphConvBlock` s over the mesh edges and moves every
   vertex by a bounded offset (``max_offset * tanh``).

Loss (summed over stages, each a batch mean): ``w_chamfer`` x chamfer
distance (squared distances, mean per direction, both directions summed --
PyTorch3D's convention) between ``loss_points`` samples of the predicted
surface and the GT surface points mapped into the camera frame, ``w_normal``
x the chamfer normal term (``1 - |cos|``), ``w_edge`` x the mean squared edge
length (:func:`geomgen.losses.mesh_edge_loss`); plus ``w_voxel`` x the voxel
head's binary cross-entropy with ``init="voxel"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geomgen.losses import chamfer_distance, mesh_edge_loss
from geomgen.models import ShapePredictor, default_distance, world_to_camera
from geomgen.nn import RESNET_PRESETS, GraphConvBlock, ResNetEncoder, VoxelDecoder
from geomgen.ops import sample_points_from_meshes, vert_align
from geomgen.structures import Meshes

from geomgen_mesh.config import MeshConfig
from geomgen_mesh.init_mesh import CameraGrid, sphere_init, voxels_to_init

__all__ = ["MeshPredictor", "RefineStage"]


class RefineStage(nn.Module):
    """One refinement stage: vert_align features + positions (+ previous features)
    -> graph convolutions -> bounded vertex offsets.

    Shapes: ``forward(image_feats (V, C_img), verts (V, 3), prev (V, hidden) or None,
    edges (E, 2)) -> (offsets (V, 3), feats (V, hidden))``.
    """

    def __init__(self, img_dim: int, hidden: int, graph_convs: int, first: bool, max_offset: float) -> None:
        super().__init__()
        self.bottleneck = nn.Linear(img_dim, hidden)
        in_dim = hidden + 3 + (0 if first else hidden)
        self.convs = nn.ModuleList(
            [GraphConvBlock(in_dim if i == 0 else hidden, hidden) for i in range(graph_convs)])
        self.offset = nn.Linear(hidden + 3, 3)
        nn.init.zeros_(self.offset.weight)
        nn.init.zeros_(self.offset.bias)
        self.max_offset = float(max_offset)

    def forward(self, image_feats: torch.Tensor, verts: torch.Tensor, prev: torch.Tensor | None,
                edges: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = [F.relu(self.bottleneck(image_feats)), verts]
        if prev is not None:
            x.append(prev)
        h = torch.cat(x, 1)
        for conv in self.convs:
            h = conv(h, edges)
        offsets = self.max_offset * torch.tanh(self.offset(torch.cat([h, verts], 1)))
        return offsets, h


class MeshPredictor(ShapePredictor):
    """Image -> triangle mesh in the camera frame (see the module docstring).

    Args:
        config: a :class:`~geomgen_mesh.config.MeshConfig` (or a mapping of its
            keys); ``None``: the defaults.
        **overrides: :class:`~geomgen_mesh.config.MeshConfig` keys replacing
            those of ``config``.

    ``self.config`` is the plain dict of the validated config (saved with the
    weights).

    Raises:
        InvalidInputError: a bad config key or value (named in the message), or
            ``align_levels`` that do not index the encoder's pyramid.
    """

    output = "mesh"
    frame = "camera"
    has_volume = True

    def __init__(self, config: MeshConfig | Mapping[str, Any] | None = None, /, **overrides: Any) -> None:
        c = MeshConfig.resolve(config, **overrides)
        c.check_choice("encoder", RESNET_PRESETS)
        super().__init__(c.to_dict())
        self.encoder = ResNetEncoder.from_name(c.encoder, out_dim=256)
        chans = self.encoder.feature_channels
        if any(a >= len(chans) for a in c.align_levels):
            raise c.fail("align_levels", f"must index the {len(chans)} pyramid levels of encoder {c.encoder!r}, "
                         f"got {list(c.align_levels)}")
        img_dim = sum(chans[a] for a in c.align_levels)
        self.stages = nn.ModuleList(
            [RefineStage(img_dim, c.hidden, c.graph_convs, i == 0, c.max_offset) for i in range(c.stages)])
        self.grid = CameraGrid(c.voxel_resolution, c.voxel_side, self.distance)
        self.voxel_head = VoxelDecoder(latent_dim=256, resolution=c.voxel_resolution) if c.init == "voxel" else None

    @property
    def distance(self) -> float:
        d = self.config["distance"]
        return default_distance(self.fov) if d is None else float(d)

    # ------------------------------------------------------------------ network
    def _align(self, feats: list[torch.Tensor], meshes: Meshes, K: torch.Tensor) -> torch.Tensor:
        """Packed ``(V, C_img)`` pyramid features at the projections of the vertices."""
        verts = meshes.verts_padded()                                          # (N, Vmax, 3)
        z = verts[..., 2:].clamp(min=1e-3)
        uv = (verts[..., :2] / z) @ K[:, :2, :2].transpose(1, 2) + K[:, None, :2, 2]   # pixels (u + 0.5 centres)
        size = torch.tensor([self.image_size, self.image_size], dtype=uv.dtype, device=uv.device)
        ndc = 2.0 * uv / size - 1.0                                            # grid_sample, align_corners=False
        pts = torch.cat([ndc, torch.zeros_like(ndc[..., :1])], -1)
        sampled = vert_align([feats[a] for a in self.config["align_levels"]], pts, align_corners=False,
                             padding_mode="border")                             # (N, Vmax, C)
        return sampled.reshape(-1, sampled.shape[-1])[meshes.verts_padded_to_packed_idx()]

    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None) -> dict[str, Any]:
        """``{"meshes": [Meshes per stage], "voxel_logits": (N, R, R, R) or None}`` in the camera frame."""
        n = images.shape[0]
        K = self.intrinsics(n, K)
        enc = self.encoder(images)
        sphere = sphere_init(n, self.config["ico_level"], self.config["radius"], self.distance, images.device)
        logits = None
        meshes = sphere
        if self.voxel_head is not None:
            logits = self.voxel_head(enc.pooled)[:, 0]
            meshes = voxels_to_init(torch.sigmoid(logits), self.grid, self.config["cubify_thresh"], sphere,
                                    self.config["max_init_verts"])
        out = []
        prev = None
        for stage in self.stages:
            feats = self._align(enc.features, meshes, K)
            offsets, prev = stage(feats, meshes.verts_packed(), prev, meshes.edges_packed())
            meshes = meshes.offset_verts(offsets)
            out.append(meshes)
        return {"meshes": out, "voxel_logits": logits}

    # ------------------------------------------------------------------ training
    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Summed stage losses (module docstring) on a ``single_view`` batch."""
        images = batch["images"].to(self.device)
        w2c = batch["world_from_camera"].to(self.device)
        out = self(images, batch["K"].to(self.device))
        gt = batch["pointclouds"]
        c = self.config
        pts_w, nrm_w = gt.points_padded().to(self.device), gt.normals_padded().to(self.device)
        if pts_w.shape[1] > c["gt_points"]:
            keep = torch.randperm(pts_w.shape[1], device=self.device)[: c["gt_points"]]
            pts_w, nrm_w = pts_w[:, keep], nrm_w[:, keep]
        gt_pts = world_to_camera(pts_w, w2c)
        gt_nrm = world_to_camera(nrm_w, w2c, normals=True)
        terms = {"chamfer": 0.0, "normal": 0.0, "edge": 0.0}
        for meshes in out["meshes"]:
            pts, nrm = sample_points_from_meshes(meshes, c["loss_points"], return_normals=True)
            cham, norm = chamfer_distance(pts, gt_pts, x_normals=nrm, y_normals=gt_nrm)
            terms["chamfer"] = terms["chamfer"] + cham
            terms["normal"] = terms["normal"] + norm
            terms["edge"] = terms["edge"] + mesh_edge_loss(meshes)
        loss = c["w_chamfer"] * terms["chamfer"] + c["w_normal"] * terms["normal"] + c["w_edge"] * terms["edge"]
        result = {k: v.detach() for k, v in terms.items()}
        if out["voxel_logits"] is not None:
            target = self.grid.target(batch["voxels"].grids.to(self.device), w2c)
            bce = F.binary_cross_entropy_with_logits(out["voxel_logits"], target)
            loss = loss + c["w_voxel"] * bce
            result["voxel_bce"] = bce.detach()
        result["loss"] = loss
        return result

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict_meshes(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Meshes:
        """``Meshes`` of ``N`` of the last stage, camera frame."""
        images = self.check_images(images, "MeshPredictor.predict_meshes")
        was = self.training
        self.eval()
        try:
            m = self(images, K)["meshes"][-1]
        finally:
            self.train(was)
        return Meshes([v.detach() for v in m.verts_list()], m.faces_list())

    def predict(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Meshes:
        """Same as :meth:`predict_meshes`."""
        return self.predict_meshes(images, K)
