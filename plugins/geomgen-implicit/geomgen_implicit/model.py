"""The ``implicit`` representation: an occupancy network (image -> occupancy function).

Shape letters: ``N`` images, ``D`` code size, ``P`` query points per image.

Architecture: :class:`~geomgen.nn.ResNetEncoder` global (average-pooled) code
``c (N, D)``; decoder ``f(p, c) -> logit`` (:class:`~geomgen_implicit.decoder.OccupancyDecoder`:
conditional-batch-norm residual blocks, or the code added to the features)
for object-frame query points ``p`` (shapes within ``[-0.5, 0.5]^3``).
The occupancy probability is ``sigmoid(f)``; the surface is ``f = 0``.

Loss: binary cross-entropy (:func:`geomgen.losses.occupancy_bce`, nats)
between ``f`` and the dataset's ``occ_labels`` at ``train_points`` of its
``occ_points`` per sample, drawn uniformly without replacement each step (the
dataset's 4096 queries are half uniform in ``[-0.55, 0.55]^3``, half near the
surface, so the subset keeps that mix on average), mean over points and batch.
With ``train_points >= 4096`` all queries are used.

Meshes: :func:`geomgen_implicit.extract.extract_meshes` (multi-resolution
refinement from ``mesh_resolution0`` to ``mesh_resolution`` cells over
``[-mesh_bound, mesh_bound]^3``, marching cubes at probability ``mesh_level``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from geomgen.errors import InvalidInputError
from geomgen.losses import occupancy_bce
from geomgen.models import ShapePredictor
from geomgen.nn import NORM_KINDS, RESNET_PRESETS, ResNetEncoder
from geomgen.structures import Meshes
from geomgen_implicit.config import ImplicitConfig
from geomgen_implicit.decoder import OccupancyDecoder
from geomgen_implicit.extract import extract_meshes

__all__ = ["OccupancyPredictor"]

_FN = "OccupancyPredictor"


class OccupancyPredictor(ShapePredictor):
    """Single-view occupancy network in the object frame (module docstring).

    Args:
        config: an :class:`~geomgen_implicit.config.ImplicitConfig` (or a
            mapping of its keys); ``None``: the defaults.
        **overrides: :class:`~geomgen_implicit.config.ImplicitConfig` keys
            replacing those of ``config``.

    ``self.config`` is the plain dict of the validated config (saved with the
    weights).

    Raises:
        InvalidInputError: a bad config key or value (named in the message).
    """

    output = "implicit"
    frame = "object"
    has_volume = True

    def __init__(self, config: ImplicitConfig | Mapping[str, Any] | None = None, /, **overrides: Any) -> None:
        c = ImplicitConfig.resolve(config, **overrides)
        c.check_choice("encoder", RESNET_PRESETS)
        c.check_choice("norm", NORM_KINDS)
        super().__init__(c.to_dict())
        self.encoder = ResNetEncoder.from_name(c.encoder, norm=c.norm, out_dim=c.code_dim)
        self.decoder = OccupancyDecoder(c.code_dim, c.hidden, c.num_blocks, c.conditioning)

    # ------------------------------------------------------------------ network
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` images in [0, 1] -> ``(N, D)`` shape codes."""
        return self.encoder(images * 2.0 - 1.0).pooled

    def decode(self, points: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        """Occupancy logits ``(N, P)`` of object-frame ``points (N, P, 3)`` for codes ``(N, D)``."""
        return self.decoder(points, code)

    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None,
                points: torch.Tensor | None = None) -> torch.Tensor:
        """Occupancy logits ``(N, P)`` at object-frame ``points (N, P, 3)`` (or ``(P, 3)``
        shared) for ``(N, 3, H, W)`` images; without points, the shape codes ``(N, D)``.
        ``K`` is unused (object-frame output)."""
        code = self.encode(images)
        if points is None:
            return code
        return self.decode(self._points(points, code.shape[0], "forward"), code)

    def _points(self, points: Any, n: int, fn: str) -> torch.Tensor:
        if not isinstance(points, torch.Tensor) or not points.is_floating_point():
            raise InvalidInputError(f"{_FN}.{fn}: argument 'points' must be a floating (N, P, 3) or (P, 3) tensor, "
                                    f"got {type(points).__name__}")
        if points.dim() == 2 and points.shape[1] == 3:
            points = points.expand(n, -1, 3)
        if points.dim() != 3 or points.shape[0] != n or points.shape[2] != 3:
            raise InvalidInputError(f"{_FN}.{fn}: argument 'points' must be ({n}, P, 3) or (P, 3), "
                                    f"got {tuple(points.shape)}")
        if not bool(torch.isfinite(points).all()):
            raise InvalidInputError(f"{_FN}.{fn}: argument 'points' must be finite")
        return points.to(self.device, torch.float32)

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """BCE (module docstring) at ``train_points`` random ``occ_points`` per sample.

        Returns:
            ``{"loss", "accuracy"}``: mean BCE over points and batch (nats), and
            the fraction of queries classified correctly at probability 1/2.

        Raises:
            InvalidInputError: the batch lacks ``occ_points`` / ``occ_labels``.
        """
        if "occ_points" not in batch or "occ_labels" not in batch:
            raise InvalidInputError(f"{_FN}.compute_loss: argument 'batch' needs 'occ_points' and 'occ_labels'")
        pts = torch.as_tensor(batch["occ_points"]).to(self.device, torch.float32)
        labels = torch.as_tensor(batch["occ_labels"]).to(self.device, torch.float32)
        n, q = labels.shape
        t = int(self.config["train_points"])
        if t < q:
            idx = torch.rand(n, q, device=self.device).argsort(dim=1)[:, :t]
            pts = torch.gather(pts, 1, idx[..., None].expand(n, t, 3))
            labels = torch.gather(labels, 1, idx)
        logits = self.decode(pts, self.encode(batch["images"].to(self.device)))
        loss = occupancy_bce(logits, labels)
        acc = ((logits >= 0) == (labels > 0.5)).float().mean()
        return {"loss": loss, "accuracy": acc.detach()}

    # --------------------------------------------------------------- prediction
    @torch.no_grad()
    def occupancy(self, images: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Occupancy probabilities ``(N, P)`` in ``[0, 1]`` at object-frame ``points``
        ``(N, P, 3)`` (or ``(P, 3)`` shared by all images), evaluated in chunks of
        ``chunk_points``.

        Raises:
            InvalidInputError: bad images or points.
        """
        images = self.check_images(images, fn="occupancy")
        code = self.encode(images)
        pts = self._points(points, code.shape[0], "occupancy")
        c = int(self.config["chunk_points"])
        out = [self.decode(pts[:, s:s + c], code) for s in range(0, pts.shape[1], c)]
        logits = torch.cat(out, dim=1) if out else pts.new_zeros(code.shape[0], 0)
        return torch.sigmoid(logits)

    @torch.no_grad()
    def predict_meshes(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Meshes:
        """``Meshes`` of ``N`` closed object-frame surfaces ``{sigmoid(f) = mesh_level}``
        (:func:`~geomgen_implicit.extract.extract_meshes`; a prediction without an
        inside gives a mesh with no faces)."""
        images = self.check_images(images)
        code = self.encode(images)
        p = float(self.config["mesh_level"])
        return extract_meshes(
            lambda pts: self.decode(pts, code), code.shape[0],
            resolution0=int(self.config["mesh_resolution0"]), resolution=int(self.config["mesh_resolution"]),
            bound=float(self.config["mesh_bound"]), level=math.log(p / (1.0 - p)),
            chunk_points=int(self.config["chunk_points"]), device=self.device,
        )

    @torch.no_grad()
    def predict(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Meshes:
        """The extracted surfaces (:meth:`predict_meshes`): ``Meshes`` of ``N``, object frame.
        Occupancy probabilities at arbitrary points: :meth:`occupancy`."""
        return self.predict_meshes(images, K)
