"""Losses for 3D geometry: Chamfer, mesh regularizers, depth, occupancy and KL.

Reductions are stated in each docstring (Chamfer follows PyTorch3D: squared
distances for ``norm=2``, both directions summed).
"""

from geomgen.losses.chamfer import chamfer_distance
from geomgen.losses.depth import scale_invariant_depth_loss
from geomgen.losses.kl import gaussian_kl
from geomgen.losses.mesh_regularizers import mesh_edge_loss, mesh_laplacian_smoothing, mesh_normal_consistency
from geomgen.losses.occupancy import occupancy_bce

__all__ = [
    "chamfer_distance",
    "mesh_edge_loss",
    "mesh_laplacian_smoothing",
    "mesh_normal_consistency",
    "scale_invariant_depth_loss",
    "occupancy_bce",
    "gaussian_kl",
]
