"""Evaluation metrics for 3D reconstruction (Mesh R-CNN protocol) and voxel IoU.

F1 follows Mesh R-CNN: unsquared distances, strict ``<``, percentages; Chamfer-L2
uses squared distances summed over both directions.
"""

from geomgen.metrics.compare_meshes import compare_meshes, compare_point_clouds
from geomgen.metrics.fscore import f1_score
from geomgen.metrics.iou import voxel_iou
from geomgen.metrics.normal_consistency import normal_consistency

__all__ = ["f1_score", "voxel_iou", "normal_consistency", "compare_meshes", "compare_point_clouds"]
