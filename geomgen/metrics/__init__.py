"""Evaluation metrics for 3D reconstruction and generation."""

from geomgen.metrics.fscore import f1_score

__all__ = ["f1_score"]
