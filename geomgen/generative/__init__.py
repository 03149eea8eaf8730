"""Generative models of 3D shapes: the contract, trainer task, training, sampling and evaluation.

* :mod:`~geomgen.generative.base` - :class:`ShapeGenerator` (``sample(n,
  condition=None, seed=None)``, ``log_prob`` / ``elbo`` in nats,
  ``to_meshes``), batch helpers.
* :mod:`~geomgen.generative.task` - :class:`GenerativeTask` for the core trainer.
* :mod:`~geomgen.generative.training` - :func:`train_generator`.
* :mod:`~geomgen.generative.loading` - :func:`load_generator` (by name or model file).

The models themselves come from plugins (``autoregressive``, ``vae``, ``gan``
ship with geomgen); ``geomgen.list_models(kind="generator")`` lists them.
"""

from geomgen.generative.base import (
    LIKELIHOODS,
    OUTPUTS,
    LikelihoodUnavailableError,
    ShapeGenerator,
    batch_labels,
    batch_points,
    batch_voxels,
    downsample_occupancy,
    voxels_from_grids,
)
from geomgen.generative.loading import load_generator
from geomgen.generative.task import GenerativeTask
from geomgen.generative.training import train_generator

__all__ = [
    "OUTPUTS",
    "LIKELIHOODS",
    "ShapeGenerator",
    "LikelihoodUnavailableError",
    "batch_voxels",
    "batch_points",
    "batch_labels",
    "downsample_occupancy",
    "voxels_from_grids",
    "GenerativeTask",
    "train_generator",
    "load_generator",
]
