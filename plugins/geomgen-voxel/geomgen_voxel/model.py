"""The ``voxel`` representation: image -> 32^3 occupancy grid in the object frame.

Shape letters: ``N`` images, ``D`` code size, ``R = 32`` voxels per axis.

Architecture: :class:`~geomgen.nn.ResNetEncoder` global (average-pooled) code
``(N, D)`` -> :class:`~geomgen.nn.VoxelDecoder` (linear layer to a coarse
``S^3`` grid, transposed-convolution up-sampling to ``G^3``, ``G =
decoder_resolution``) -> ``(N, f^3, G, G, G)`` -> voxel shuffle (each channel
``(dz * f + dy) * f + dx`` is the logit of child ``(dz, dy, dx)`` of a ``G^3``
cell, ``f = R / G``; the 3-D pixel shuffle) -> ``(N, R, R, R)`` occupancy
logits over the object frame's ``[-0.5, 0.5]^3`` with
``grid[n, k, j, i]`` <-> ``(z, y, x)``: exactly the layout of the ``shapes``
dataset's ``voxels`` (voxel ``(k, j, i)`` covers ``-0.5 + [i, i+1] x [j, j+1]
x [k, k+1] / R``).  The default ``G = 16`` costs a third of a decoder that
up-samples to ``32^3`` itself (one thread: 0.15 s vs 0.52 s forward + backward
for a batch of 32): transposed 3-D convolutions at ``32^3`` dominate training
time on CPU.

Loss: binary cross-entropy between the logits and the ground-truth voxels
(:func:`geomgen.losses.occupancy_bce`, nats), averaged over all ``N R^3``
voxels.  With ``pos_weight = w != 1`` occupied voxels weigh ``w`` and the
mean is the weighted mean ``sum(w_v l_v) / sum(w_v)``.  (On the ``shapes``
data about 11 % of the voxels are occupied; ``w = 1`` is the default: see
``pos_weight`` in :class:`VoxelPredictor` for the measured effect.)

Meshes: :func:`geomgen_voxel.convert.voxels_to_meshes` of the predicted
probabilities (``mesh_method``, ``mesh_level``, ``surface_offset``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from geomgen.errors import InvalidInputError
from geomgen.losses import occupancy_bce
from geomgen.models import ShapePredictor
from geomgen.nn import RESNET_PRESETS, ResNetEncoder, VoxelDecoder
from geomgen.structures import Meshes, Voxels
from geomgen_voxel.convert import MESH_METHODS, voxels_to_meshes

__all__ = ["VoxelPredictor", "RESOLUTION", "voxel_shuffle"]

#: Voxels per axis of the predicted grids (the ``shapes`` dataset's resolution).
RESOLUTION = 32
#: World position of the min corner of voxel ``(0, 0, 0)`` (object frame).
ORIGIN = (-0.5, -0.5, -0.5)

_FN = "VoxelPredictor"


def _int(value: Any, name: str, lo: int, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise InvalidInputError(f"{_FN}: argument '{name}' must be an integer {rng}, got {value!r}")
    return value


def _float(value: Any, name: str, lo: float, hi: float, *, open_lo: bool = False, open_hi: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (v > lo if open_lo else v >= lo) and (v < hi if open_hi else v <= hi)
    if not ok:
        br = ("(" if open_lo else "[") + f"{lo:g}, {hi:g}" + (")" if open_hi else "]")
        raise InvalidInputError(f"{_FN}: argument '{name}' must be a number in {br}, got {value!r}")
    return float(value)


def voxel_shuffle(x: torch.Tensor, factor: int) -> torch.Tensor:
    """3-D pixel shuffle: ``(N, f^3, G, G, G)`` -> ``(N, f G, f G, f G)``.

    ``out[n, f k + dz, f j + dy, f i + dx] = x[n, (dz f + dy) f + dx, k, j, i]``.
    """
    n, c, d, h, w = x.shape
    f = factor
    if c != f**3:
        raise InvalidInputError(f"voxel_shuffle: argument 'x' must have {f**3} channels, got {c}")
    if f == 1:
        return x[:, 0]
    return x.view(n, f, f, f, d, h, w).permute(0, 4, 1, 5, 2, 6, 3).reshape(n, d * f, h * f, w * f)


class VoxelPredictor(ShapePredictor):
    """Single-view occupancy-grid predictor (object frame, 32^3 over ``[-0.5, 0.5]^3``).

    Args:
        encoder: :data:`geomgen.nn.RESNET_PRESETS` name of the image encoder.
        code_dim: ``D``, size of the global shape code (a linear layer after pooling).
        norm: norm of the encoder and decoder (``"batch"``, ``"group"``, ...).
        decoder_channels: channels of the decoder's grids from ``S^3`` to
            ``G^3`` (``len = log2(G / S) + 1``).
        start_resolution: ``S``, side of the decoder's first grid (1, 2, 4, 8, 16, <= ``G``).
        decoder_resolution: ``G``, side of the decoder's last grid (8, 16 or 32);
            a voxel shuffle makes it ``32^3`` (module docstring).
        up_mode: :class:`~geomgen.nn.Up3d` mode (``"transpose"``, ``"trilinear"``, ``"nearest"``).
        blocks_per_level: 3-D residual blocks after each up-sampling.
        pos_weight: loss weight of occupied voxels (module docstring), > 0.
        mesh_method: ``"marching-cubes"`` or ``"cubify"`` for :meth:`predict_meshes`.
        mesh_level: probability threshold of the surface, in ``(0, 1)``.
        surface_offset: inward vertex move in voxels
            (:func:`~geomgen_voxel.convert.voxels_to_meshes`), in ``[-2, 2]``.
        image_size, fov: input size (pixels) and vertical field of view (degrees).
    """

    output = "voxels"
    frame = "object"
    has_volume = True

    def __init__(
        self,
        encoder: str = "tiny",
        code_dim: int = 128,
        norm: str = "batch",
        decoder_channels: Sequence[int] = (32, 32, 16),
        start_resolution: int = 4,
        decoder_resolution: int = 16,
        up_mode: str = "transpose",
        blocks_per_level: int = 0,
        pos_weight: float = 1.0,
        mesh_method: str = "marching-cubes",
        mesh_level: float = 0.5,
        surface_offset: float = 0.5,
        image_size: int = 64,
        fov: float = 40.0,
    ) -> None:
        if encoder not in RESNET_PRESETS:
            raise InvalidInputError(f"{_FN}: argument 'encoder' must be one of {tuple(RESNET_PRESETS)}, "
                                    f"got {encoder!r}")
        code_dim = _int(code_dim, "code_dim", 1)
        if decoder_resolution not in (8, 16, 32) or isinstance(decoder_resolution, bool):
            raise InvalidInputError(f"{_FN}: argument 'decoder_resolution' must be 8, 16 or 32, "
                                    f"got {decoder_resolution!r}")
        if (start_resolution not in (1, 2, 4, 8, 16) or isinstance(start_resolution, bool)
                or start_resolution > decoder_resolution):
            raise InvalidInputError(f"{_FN}: argument 'start_resolution' must be one of 1, 2, 4, 8, 16 and "
                                    f"<= decoder_resolution ({decoder_resolution}), got {start_resolution!r}")
        if isinstance(decoder_channels, (str, bytes)) or not isinstance(decoder_channels, Sequence):
            raise InvalidInputError(f"{_FN}: argument 'decoder_channels' must be a list of integers, "
                                    f"got {decoder_channels!r}")
        chans = [_int(c, "decoder_channels", 1) for c in decoder_channels]
        n_levels = (decoder_resolution // start_resolution).bit_length()  # log2(G / S) + 1
        if len(chans) != n_levels:
            raise InvalidInputError(f"{_FN}: argument 'decoder_channels' must have {n_levels} entries for "
                                    f"start_resolution={start_resolution}, decoder_resolution={decoder_resolution} "
                                    f"(grids {start_resolution}..{decoder_resolution}), got {len(chans)}")
        blocks_per_level = _int(blocks_per_level, "blocks_per_level", 0)
        pos_weight = _float(pos_weight, "pos_weight", 0.0, 1e3, open_lo=True)
        if mesh_method not in MESH_METHODS:
            raise InvalidInputError(f"{_FN}: argument 'mesh_method' must be one of {MESH_METHODS}, "
                                    f"got {mesh_method!r}")
        mesh_level = _float(mesh_level, "mesh_level", 0.0, 1.0, open_lo=True, open_hi=True)
        surface_offset = _float(surface_offset, "surface_offset", -2.0, 2.0)
        image_size = _int(image_size, "image_size", 8)
        fov = _float(fov, "fov", 0.0, 180.0, open_lo=True, open_hi=True)
        super().__init__({
            "encoder": encoder, "code_dim": code_dim, "norm": norm, "decoder_channels": chans,
            "start_resolution": start_resolution, "decoder_resolution": decoder_resolution, "up_mode": up_mode,
            "blocks_per_level": blocks_per_level,
            "pos_weight": pos_weight, "mesh_method": mesh_method, "mesh_level": mesh_level,
            "surface_offset": surface_offset, "image_size": image_size, "fov": fov,
        })
        self.encoder = ResNetEncoder.from_name(encoder, norm=norm, out_dim=code_dim)
        self.factor = RESOLUTION // decoder_resolution
        self.decoder = VoxelDecoder(code_dim, self.factor**3, decoder_resolution, channels=chans,
                                    start_resolution=start_resolution, up_mode=up_mode,
                                    blocks_per_level=blocks_per_level, norm=norm)

    # ------------------------------------------------------------------ network
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, 3, H, W)`` images in [0, 1] -> ``(N, D)`` shape codes."""
        return self.encoder(images * 2.0 - 1.0).pooled

    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, 3, H, W)`` images -> ``(N, R, R, R)`` occupancy logits (``[n, k, j, i]`` <->
        ``(z, y, x)``, object frame); ``K`` is unused (object-frame output)."""
        return voxel_shuffle(self.decoder(self.encode(images)), self.factor)

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """Binary cross-entropy (module docstring) against ``batch["voxels"]``.

        Returns:
            ``{"loss", "bce", "iou"}``: the (weighted) mean BCE over voxels and
            batch, the plain mean BCE, and the batch-mean IoU of the
            thresholded (``mesh_level``) prediction (no gradient).

        Raises:
            InvalidInputError: the batch's voxels are not ``32^3`` grids.
        """
        logits = self(batch["images"].to(self.device))
        gt = batch["voxels"]
        target = (gt.grids if isinstance(gt, Voxels) else torch.as_tensor(gt)).to(self.device, logits.dtype)
        if target.shape != logits.shape:
            raise InvalidInputError(f"{_FN}.compute_loss: batch['voxels'] must be ({logits.shape[0]}, "
                                    f"{RESOLUTION}, {RESOLUTION}, {RESOLUTION}) grids, got {tuple(target.shape)}")
        bce = occupancy_bce(logits, target)
        w = float(self.config["pos_weight"])
        loss = bce if w == 1.0 else occupancy_bce(logits, target, weights=1.0 + (w - 1.0) * target)
        with torch.no_grad():
            pred = torch.sigmoid(logits) >= float(self.config["mesh_level"])
            gtb = target > 0.5
            inter = (pred & gtb).flatten(1).sum(1).float()
            union = (pred | gtb).flatten(1).sum(1).float()
            iou = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)).mean()
        return {"loss": loss, "bce": bce.detach(), "iou": iou}

    # --------------------------------------------------------------- prediction
    @torch.no_grad()
    def predict(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Voxels:
        """``Voxels`` of ``N`` occupancy probabilities ``(N, 32, 32, 32)`` over the object
        frame's ``[-0.5, 0.5]^3`` (``origin (-0.5,)*3``, ``voxel_size 1/32``)."""
        images = self.check_images(images)
        probs = torch.sigmoid(self(images))
        return Voxels(probs, origin=ORIGIN, voxel_size=1.0 / RESOLUTION, validate=False)

    @torch.no_grad()
    def predict_meshes(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Meshes:
        """``Meshes`` of ``N`` closed object-frame surfaces of :meth:`predict`
        (:func:`~geomgen_voxel.convert.voxels_to_meshes` with the configured
        ``mesh_method``, ``mesh_level`` and ``surface_offset``)."""
        vox = self.predict(images, K)
        return voxels_to_meshes(vox, str(self.config["mesh_method"]), float(self.config["mesh_level"]),
                                float(self.config["surface_offset"]))
