"""Hyper-parameters of the ``voxel`` representation: :class:`VoxelConfig`.

Imports no torch, so the registry lists the schema without loading the model.
"""

from __future__ import annotations

from geomgen.config import PredictorConfig, doublings, param

__all__ = ["VoxelConfig", "MESH_METHODS"]

#: Accepted ``method`` values of :func:`geomgen_voxel.convert.voxels_to_meshes` (``mesh_method``).
MESH_METHODS: tuple[str, ...] = ("marching-cubes", "cubify")


class VoxelConfig(PredictorConfig):
    """Hyper-parameters of :class:`geomgen_voxel.model.VoxelPredictor`
    (``geomgen.get_model("voxel", **config)``); the defaults are the shipped model's.

    ``S = start_resolution``, ``G = decoder_resolution``: the decoder grows an
    ``S^3`` grid to ``G^3`` and a voxel shuffle makes it ``32^3``.
    """

    model_name = "voxel"

    encoder: str = param("tiny", "image encoder", vocabulary="geomgen.nn.RESNET_PRESETS")
    code_dim: int = param(128, "D, size of the global shape code (a linear layer after pooling)", ge=1)
    norm: str = param("batch", "norm of the encoder and decoder", vocabulary="geomgen.nn.NORM_KINDS")
    decoder_channels: tuple[int, ...] = param(
        (32, 32, 16), "channels of the decoder's grids from S^3 to G^3 (log2(G / S) + 1 entries)", ge=1, min_length=1)
    start_resolution: int = param(4, "S, side of the decoder's first grid (<= decoder_resolution)",
                                  choices=(1, 2, 4, 8, 16))
    decoder_resolution: int = param(16, "G, side of the decoder's last grid (voxel-shuffled to 32^3)",
                                    choices=(8, 16, 32))
    up_mode: str = param("transpose", "geomgen.nn.Up3d mode: 'transpose', 'trilinear' or 'nearest'")
    blocks_per_level: int = param(0, "3-D residual blocks after each up-sampling", ge=0)
    pos_weight: float = param(1.0, "BCE weight of occupied voxels (1: the plain mean)", gt=0.0, le=1000.0)
    mesh_method: str = param("marching-cubes", "how predict_meshes meshes the probabilities", choices=MESH_METHODS)
    mesh_level: float = param(0.5, "occupancy probability of the surface", gt=0.0, lt=1.0)
    surface_offset: float = param(0.5, "inward move of the mesh vertices (voxels)", ge=-2.0, le=2.0)

    def check(self) -> None:
        super().check()
        s, g = self.start_resolution, self.decoder_resolution
        if s > g:
            raise self.fail("start_resolution", f"must be <= decoder_resolution ({g}), got {s}")
        levels = (doublings(g, s) or 0) + 1  # choices are powers of 2: always a doubling
        if len(self.decoder_channels) != levels:
            raise self.fail("decoder_channels", f"must have {levels} entries for start_resolution={s}, "
                            f"decoder_resolution={g} (grids {s}..{g}), got {len(self.decoder_channels)}")
