"""Hyper-parameters of the ``mesh`` representation: :class:`MeshConfig`.

Imports no torch, so the registry lists the schema without loading the model.
"""

from __future__ import annotations

from geomgen.config import PredictorConfig, param

__all__ = ["MeshConfig", "INITS"]

#: Accepted values of ``init``: an ico-sphere, or the cubified prediction of a voxel head.
INITS: tuple[str, ...] = ("sphere", "voxel")


class MeshConfig(PredictorConfig):
    """Hyper-parameters of :class:`geomgen_mesh.model.MeshPredictor`
    (``geomgen.get_model("mesh", **config)``); the defaults are the shipped model's.

    Lengths are in object units (shapes fit ``[-0.5, 0.5]^3``); the initial mesh
    and the voxel head sit at ``(0, 0, distance)`` in the camera frame.
    """

    model_name = "mesh"

    encoder: str = param("tiny", "image encoder", vocabulary="geomgen.nn.RESNET_PRESETS")
    init: str = param("sphere", "initial mesh: an ico-sphere or the cubified voxel head's prediction", choices=INITS)
    ico_level: int = param(3, "subdivision level of the initial ico-sphere (2: 162 vertices, 3: 642)", ge=0)
    radius: float = param(0.35, "radius of the initial sphere", gt=0.0)
    stages: int = param(3, "refinement stages", ge=1)
    hidden: int = param(64, "vertex feature width", ge=1)
    graph_convs: int = param(2, "graph convolutions per stage", ge=1)
    max_offset: float = param(0.3, "bound of one stage's vertex offsets", gt=0.0)
    align_levels: tuple[int, ...] = param((1, 2, 3), "pyramid levels sampled by vert_align (0: stride 2)",
                                          ge=0, min_length=1)
    voxel_resolution: int = param(32, "R, voxels per axis of the init='voxel' head's camera-frame grid", ge=1)
    voxel_side: float = param(1.6, "side of the voxel head's grid", gt=0.0)
    cubify_thresh: float = param(0.3, "occupancy probability the voxel head's grid is cubified at", gt=0.0, lt=1.0)
    w_chamfer: float = param(1.0, "loss weight of the chamfer distance", ge=0.0)
    w_normal: float = param(0.01, "loss weight of the chamfer normal term", ge=0.0)
    w_edge: float = param(0.2, "loss weight of the mean squared edge length", ge=0.0)
    w_voxel: float = param(0.05, "loss weight of the voxel head's BCE (init='voxel')", ge=0.0)
    loss_points: int = param(1024, "points sampled from each predicted mesh for the loss", ge=1)
    gt_points: int = param(1024, "ground-truth surface points used by the loss (a random subset)", ge=1)
    max_init_verts: int = param(4000, "a cubified initial mesh with more vertices falls back to the sphere", ge=1)
    distance: float | None = param(None, "camera distance of the object centre (None: the shapes renders')",
                                   gt=0.0)
