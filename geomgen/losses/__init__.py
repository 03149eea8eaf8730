"""Losses for 3D geometry (Chamfer, ...)."""

from geomgen.losses.chamfer import chamfer_distance

__all__ = ["chamfer_distance"]
