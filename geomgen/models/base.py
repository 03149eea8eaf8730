"""The contract of single-view shape predictors: :class:`ShapePredictor` and batch helpers.

Every representation plugin (depth, voxel, implicit, point cloud, mesh, and
third-party ones) builds a subclass of :class:`ShapePredictor`.  The core
trainer task, ``geomgen eval``, ``geomgen.predict`` and the pretrained-model
loader only talk to this interface, so a new representation works with all of
them without touching the core.

Shapes: ``N`` images in a batch, ``H x W`` pixels, ``P`` points, ``R`` voxels
per axis.

Frames.  A model predicts either in the **object** frame (the canonical frame
of the dataset: the shape normalised into ``[-0.5, 0.5]^3``, +Y up, whatever
the view) or in the **camera** frame of the input image (OpenCV: +X right, +Y
down, +Z forward, the object centred about ``(0, 0, distance)``; like Mesh
R-CNN).  :attr:`ShapePredictor.frame` says which.  Evaluation maps camera-frame
predictions to the object frame with the view's ``world_from_camera`` pose, so
every representation is scored against the same ground truth.

Images are ``(N, 3, H, W)`` float RGB in ``[0, 1]`` on a white background (what
:func:`geomgen.io.load_image` returns and the ``shapes`` dataset renders).
Intrinsics ``K`` are ``(N, 3, 3)`` pixel matrices (OpenCV, pixel centres at
``u + 0.5``); ``None`` means the model's default: the vertical field of view
``fov`` it was trained with, at the image's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import nn

from geomgen import checks as V
from geomgen.config import PredictorConfig
from geomgen.errors import InvalidInputError
from geomgen.render.cameras import default_distance, default_intrinsics

__all__ = [
    "FRAMES",
    "ShapePredictor",
    "single_view",
    "default_intrinsics",
    "default_distance",
    "transform_points",
    "rigid_inverse",
    "world_to_camera",
    "camera_to_world",
]

#: Frames a predictor may work in (see the module docstring).
FRAMES: tuple[str, ...] = ("object", "camera")

def transform_points(points: torch.Tensor, T: torch.Tensor) -> torch.Tensor:
    """Apply rigid/affine transforms: ``(N, P, 3)`` points, ``(N, 4, 4)`` matrices -> ``(N, P, 3)``."""
    return points @ T[:, :3, :3].transpose(1, 2) + T[:, None, :3, 3]


def rigid_inverse(T: torch.Tensor) -> torch.Tensor:
    """Inverse of ``(N, 4, 4)`` rigid transforms (rotation + translation), exact up to rounding."""
    R = T[:, :3, :3]
    t = T[:, :3, 3:]
    out = torch.zeros_like(T)
    out[:, :3, :3] = R.transpose(1, 2)
    out[:, :3, 3:] = -R.transpose(1, 2) @ t
    out[:, 3, 3] = 1.0
    return out


def world_to_camera(points: torch.Tensor, world_from_camera: torch.Tensor,
                    normals: bool = False) -> torch.Tensor:
    """``(N, P, 3)`` world points (or directions when ``normals``) into the camera frames
    of ``(N, 4, 4)`` ``world_from_camera`` poses."""
    if normals:
        return points @ world_from_camera[:, :3, :3]
    return transform_points(points, rigid_inverse(world_from_camera))


def camera_to_world(points: torch.Tensor, world_from_camera: torch.Tensor,
                    normals: bool = False) -> torch.Tensor:
    """``(N, P, 3)`` camera-frame points (or directions when ``normals``) into the world frame."""
    if normals:
        return points @ world_from_camera[:, :3, :3].transpose(1, 2)
    return transform_points(points, world_from_camera)


def single_view(batch: Mapping[str, Any], view: int = 0) -> dict[str, Any]:
    """One view per sample from a :func:`geomgen.data.collate_samples` batch.

    ``images`` ``(B, S, 3, H, W)`` -> ``(B, 3, H, W)``, and likewise ``depths``,
    ``masks`` ``(B, H, W)``, ``K`` ``(B, 3, 3)``, ``world_from_camera`` ``(B, 4, 4)``
    (view ``view`` of each sample; with ``view="random"`` datasets S is 1).
    Other keys (``mesh``, ``pointclouds``, ``voxels``, ``occ_points``,
    ``occ_labels``, ``category``, ``label``, ``id`` ...) are passed through; a
    batch that already has one view per sample is returned unchanged (as a new dict).

    Raises:
        InvalidInputError: no ``images`` key, or ``view`` out of range.
    """
    if not isinstance(batch, Mapping) or "images" not in batch:
        raise InvalidInputError("single_view: argument 'batch' must be a collate_samples batch with 'images'")
    out = dict(batch)
    images = batch["images"]
    if images.dim() == 4:
        return out
    S = images.shape[1]
    view = V.check_int(view, "view", min_value=-S, max_value=S - 1, fn="single_view")
    for key in ("images", "depths", "masks", "K", "world_from_camera", "view_indices"):
        if key in batch and isinstance(batch[key], torch.Tensor):
            out[key] = batch[key][:, view]
    out.pop("cameras", None)
    return out


class ShapePredictor(nn.Module):
    """Base class of single-view predictors: image in, 3D shape out.

    Subclasses set the class attributes :attr:`output` and :attr:`frame`, call
    ``super().__init__(config)`` with the JSON-able keyword arguments they were
    built with (kept in checkpoints, so ``geomgen.get_model(name, **config)``
    rebuilds the same architecture), and implement :meth:`forward`,
    :meth:`compute_loss`, :meth:`predict` and :meth:`predict_meshes`;
    :meth:`predict_points` and :meth:`validation_metrics` have defaults.

    Attributes:
        output: ``"mesh"``, ``"voxels"``, ``"pointcloud"``, ``"depth"`` or ``"implicit"``.
        frame: ``"object"`` or ``"camera"`` (module docstring).
        has_volume: predictions enclose a volume (voxel IoU is meaningful).
        config: the build keyword arguments (with ``image_size`` and ``fov``,
            defaults from :class:`geomgen.config.PredictorConfig`, the base of the
            representations' config classes).
    """

    output: ClassVar[str] = "mesh"
    frame: ClassVar[str] = "object"
    has_volume: ClassVar[bool] = True

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(config or {})
        for key, value in PredictorConfig.defaults().items():
            self.config.setdefault(key, value)

    # ------------------------------------------------------------- properties
    @property
    def image_size(self) -> int:
        """Side of the square images the model was trained on (pixels)."""
        return int(self.config["image_size"])

    @property
    def fov(self) -> float:
        """Vertical field of view (degrees) assumed when ``K`` is not given."""
        return float(self.config["fov"])

    @property
    def device(self) -> torch.device:
        """Device of the model's first parameter or buffer (CPU if it has none)."""
        for t in list(self.parameters()) + list(self.buffers()):
            return t.device
        return torch.device("cpu")

    def check_images(self, images: Any, fn: str = "predict") -> torch.Tensor:
        """Validate ``(N, 3, H, W)`` float images in [0, 1] with ``H = W = image_size``;
        returns them on the model's device."""
        t = V.check_tensor(images, "images", fn=fn, ndim=4, floating=True, finite=True)
        if t.shape[1] != 3:
            raise V.fail("images", f"expected (N, 3, H, W) RGB images, got shape {tuple(t.shape)}", fn)
        if t.shape[-1] != self.image_size or t.shape[-2] != self.image_size:
            raise V.fail("images", f"expected {self.image_size}x{self.image_size} images (the model's image_size), "
                         f"got {t.shape[-2]}x{t.shape[-1]}; geomgen.io.load_image(..., size={self.image_size}) "
                         "resizes", fn)
        return t.to(self.device, torch.float32)

    def intrinsics(self, n: int, K: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, 3, 3)`` float32 intrinsics on the model's device: ``K`` (``(N, 3, 3)``
        or a shared ``(3, 3)``, checked with :func:`geomgen.checks.check_intrinsics`),
        or the default ones (:func:`default_intrinsics` with the model's ``fov`` and
        ``image_size``).

        Raises:
            InvalidInputError: ``K`` of another shape, or not valid intrinsics.
        """
        if K is None:
            return default_intrinsics(n, self.image_size, self.image_size, self.fov, device=self.device)
        try:
            K = torch.as_tensor(K, dtype=torch.float32, device=self.device)
        except (TypeError, ValueError, RuntimeError):
            raise V.fail("K", f"must be (N, 3, 3) or (3, 3) intrinsics, got {type(K).__name__}") from None
        return V.check_intrinsics(K, n=n)

    # ------------------------------------------------------------ to override
    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Any:  # pragma: no cover
        """Raw network output for ``(N, 3, H, W)`` images (logits, offsets ...)."""
        raise NotImplementedError

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:  # pragma: no cover
        """Training loss on a :func:`single_view` batch: a dict with a scalar ``"loss"``
        (mean over the batch) and optionally more scalar terms to log."""
        raise NotImplementedError

    def predict(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Any:  # pragma: no cover
        """Decoded prediction as a geomgen structure of ``N`` items in the model's
        frame (``Voxels``, ``PointClouds``, ``Meshes`` or ``DepthMaps``); no autograd."""
        raise NotImplementedError

    def predict_meshes(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Any:  # pragma: no cover
        """``Meshes`` of ``N`` in the model's frame (for export, rendering and the
        Mesh R-CNN protocol); no autograd.  An empty prediction is a mesh with no faces."""
        raise NotImplementedError

    def predict_points(self, images: torch.Tensor, K: torch.Tensor | None = None,
                       num_points: int = 10000) -> Any:
        """``PointClouds`` of ``N`` (``num_points`` each where possible, with
        normals when the representation has them) in the model's frame.

        Default: area-weighted samples (with face normals) of :meth:`predict_meshes`;
        a mesh without faces gives its vertices or, failing those, one point at
        the origin (so metrics stay defined and bad)."""
        from geomgen.ops import sample_points_from_meshes
        from geomgen.structures import Meshes, PointClouds

        meshes = self.predict_meshes(images, K)
        pts, nrm = [], []
        for v, f in zip(meshes.verts_list(), meshes.faces_list()):
            if f.shape[0] > 0:
                p, n = sample_points_from_meshes(Meshes([v], [f]), num_points, return_normals=True)
                pts.append(p[0])
                nrm.append(n[0])
            else:
                p = v if v.shape[0] > 0 else v.new_zeros(1, 3)
                pts.append(p)
                nrm.append(torch.zeros_like(p))
        return PointClouds(pts, normals=nrm)

    def validation_metrics(self, batch: Mapping[str, Any]) -> dict[str, float | torch.Tensor]:
        """Scalars averaged over a :func:`single_view` batch for validation: the
        loss terms plus ``"F1@0.3"`` (Mesh R-CNN protocol on 2000 points, gt-10
        scale, object frame, percent), the early-stopping metric of the trainer."""
        from geomgen.metrics import compare_point_clouds

        out: dict[str, float | torch.Tensor] = {k: v.detach() for k, v in self.compute_loss(batch).items()}
        pred = self.predict_points(batch["images"], batch.get("K"), num_points=2000)
        pts = pred.points_padded()
        if self.frame == "camera":
            pts = camera_to_world(pts, batch["world_from_camera"].to(pts))
        gt = batch["pointclouds"].points_padded().to(pts)
        scale = 10.0 / _longest_edge(batch).to(pts)
        res = compare_point_clouds(pts * scale[:, None, None], None, gt * scale[:, None, None], None,
                                   thresholds=(0.3,), pred_lengths=pred.num_points_per_cloud(),
                                   gt_lengths=batch["pointclouds"].num_points_per_cloud())
        out["F1@0.3"] = res["F1@0.3"]
        return out


def _longest_edge(batch: Mapping[str, Any]) -> torch.Tensor:
    """``(B,)`` longest bounding-box edge of each GT mesh (the gt-10 scale)."""
    edges = []
    for v in batch["mesh"].verts_list():
        edges.append((v.max(0).values - v.min(0).values).max())
    return torch.stack(edges)
