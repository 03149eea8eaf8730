"""Hyper-parameters of the ``implicit`` representation: :class:`ImplicitConfig`.

Imports no torch, so the registry lists the schema without loading the model.
"""

from __future__ import annotations

from geomgen.config import PredictorConfig, doublings, param

__all__ = ["ImplicitConfig", "CONDITIONINGS"]

#: Accepted ``conditioning`` values of :class:`geomgen_implicit.decoder.OccupancyDecoder`.
CONDITIONINGS: tuple[str, ...] = ("cbn", "add")


class ImplicitConfig(PredictorConfig):
    """Hyper-parameters of :class:`geomgen_implicit.model.OccupancyPredictor`
    (``geomgen.get_model("implicit", **config)``); the defaults are the shipped model's."""

    model_name = "implicit"

    encoder: str = param("tiny", "image encoder", vocabulary="geomgen.nn.RESNET_PRESETS")
    code_dim: int = param(128, "D, size of the shape code (a linear layer after pooling)", ge=1)
    norm: str = param("batch", "norm of the encoder", vocabulary="geomgen.nn.NORM_KINDS")
    hidden: int = param(64, "width of the decoder's residual blocks", ge=1)
    num_blocks: int = param(4, "residual blocks of the decoder", ge=1)
    conditioning: str = param("cbn", "how the code enters the decoder: conditional batch norm or added",
                              choices=CONDITIONINGS)
    train_points: int = param(1024, "query points per sample and training step", ge=1)
    mesh_resolution0: int = param(16, "cells per axis of the first (dense) mesh extraction level", ge=2, le=256)
    mesh_resolution: int = param(64, "cells per axis of the final extraction level (mesh_resolution0 * 2^k)",
                                 ge=2, le=512)
    mesh_bound: float = param(0.55, "the extraction grid covers [-mesh_bound, mesh_bound]^3", gt=0.0, lt=10.0)
    mesh_level: float = param(0.5, "occupancy probability of the surface", gt=0.0, lt=1.0)
    chunk_points: int = param(16384, "query points per shape per decoder call at inference", ge=1)

    def check(self) -> None:
        super().check()
        if doublings(self.mesh_resolution, self.mesh_resolution0) is None:
            raise self.fail("mesh_resolution", f"must be mesh_resolution0 ({self.mesh_resolution0}) times a power "
                            f"of 2, got {self.mesh_resolution}")
