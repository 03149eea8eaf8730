"""Evaluation metrics for 3D reconstruction (Mesh R-CNN protocol) and voxel IoU.

F1 follows Mesh R-CNN: unsquared distances, strict ``<``, percentages; Chamfer-L2
uses squared distances summed over both directions.  MMD, COV and 1-NNA of
generated shape sets follow PointFlow (:mod:`geomgen.metrics.generative`).
"""

from geomgen.metrics.compare_meshes import compare_meshes, compare_point_clouds
from geomgen.metrics.fscore import f1_score
from geomgen.metrics.generative import (
    generative_metrics,
    mmd_cov,
    one_nn_accuracy,
    pairwise_chamfer,
    pairwise_voxel_distance,
)
from geomgen.metrics.iou import voxel_iou
from geomgen.metrics.normal_consistency import normal_consistency

__all__ = [
    "f1_score",
    "voxel_iou",
    "normal_consistency",
    "compare_meshes",
    "compare_point_clouds",
    "pairwise_chamfer",
    "pairwise_voxel_distance",
    "mmd_cov",
    "one_nn_accuracy",
    "generative_metrics",
]
