"""Hyper-parameters of the ``pointcloud`` representation: :class:`PointCloudConfig`.

Imports no torch, so the registry lists the schema without loading the model.
"""

from __future__ import annotations

from geomgen.config import PredictorConfig, param

__all__ = ["PointCloudConfig", "DECODERS"]

#: Accepted values of ``decoder``.
DECODERS: tuple[str, ...] = ("folding", "mlp")


class PointCloudConfig(PredictorConfig):
    """Hyper-parameters of :class:`geomgen_pointcloud.model.PointCloudPredictor`
    (``geomgen.get_model("pointcloud", **config)``); the defaults are the shipped model's."""

    model_name = "pointcloud"

    encoder: str = param("tiny", "image encoder", vocabulary="geomgen.nn.RESNET_PRESETS")
    code_dim: int = param(256, "D, size of the global shape code (a linear layer after pooling)", ge=1)
    norm: str = param("batch", "norm of the encoder blocks", vocabulary="geomgen.nn.NORM_KINDS")
    decoder: str = param("folding", "point decoder: learned folded patches or one MLP", choices=DECODERS)
    num_points: int = param(1024, "P, points per shape in training and in predict", ge=1)
    num_patches: int = param(8, "folding patches", ge=1)
    hidden: int = param(128, "hidden width of the folding patches / the MLP decoder", ge=1)
    layers: int = param(2, "hidden layers of each folding patch / of the MLP decoder", ge=1)
    normal_k: int = param(16, "neighbours of the PCA normals", ge=3)
    mesh_points: int = param(30000, "points decoded for predict_meshes (folding only; the MLP uses its P)", ge=1)
    mesh_resolution: int = param(48, "voxels per axis of the reconstruction grid over [-0.55, 0.55]^3",
                                 ge=4, le=256)
    mesh_level: float = param(0.75, "marching-cubes level on the binary solid (0.5: half a voxel out)",
                              gt=0.0, lt=1.0)
