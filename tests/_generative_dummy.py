"""Tiny generators and a test plugin for the tests of geomgen.generative.

* :class:`IndependentVoxels` - every voxel an independent Bernoulli with a
  learned logit (per class when conditional): the simplest model with an
  exact likelihood, so fitting it lowers the NLL in a few steps.
* :class:`JitterPoints` - a point generator without likelihood: a learned
  sphere radius plus noise (stands in for a GAN).
* :func:`use_generator_plugin` - a plugin manager with geomgen's built-ins,
  these two generators (``indep-voxels``, ``jitter-points``) and the
  ``toy`` dataset (:class:`geomgen.testing.generative.ToyShapes`, one seed per split).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

import torch
import torch.nn.functional as F

import geomgen
from geomgen.components import DatasetSpec, GeneratorSpec
from geomgen.generative import ShapeGenerator, batch_points, batch_voxels
from geomgen.testing.generative import ToyShapes


class IndependentVoxels(ShapeGenerator):
    output = "voxels"
    likelihood = "exact"

    def __init__(self, resolution: int = 8, num_classes: int = 0, categories: Any = ()) -> None:
        super().__init__({"resolution": resolution, "num_classes": num_classes, "categories": list(categories)})
        self.logits = torch.nn.Parameter(torch.zeros(max(1, num_classes), resolution, resolution, resolution))

    def _logits(self, labels: torch.Tensor | None, n: int) -> torch.Tensor:
        if labels is None:
            return self.logits[:1].expand(n, -1, -1, -1)
        return self.logits[labels]

    def log_prob(self, x: Any, condition: Any = None) -> torch.Tensor:
        v = self.as_input(x)[:, 0]
        labels = self.labels_for(condition, v.shape[0]) if (condition is not None or not self.conditional) else None
        if self.conditional and labels is None:
            raise ValueError("conditional model: give the labels")
        lg = self._logits(labels, v.shape[0])
        return -F.binary_cross_entropy_with_logits(lg, v, reduction="none").flatten(1).sum(1)

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        v = batch_voxels(batch, self.resolution).to(self.device)
        labels = self.batch_labels_of(batch, int(v.shape[0]))
        ll = self.log_prob(v, labels)
        loss = -ll.mean() / self.resolution ** 3
        return {"loss": loss, "bits_per_voxel": loss.detach() / math.log(2.0)}

    def generate(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, **options: Any) -> torch.Tensor:
        p = torch.sigmoid(self._logits(labels, n))
        return torch.bernoulli(p, generator=generator)


class JitterPoints(ShapeGenerator):
    output = "pointcloud"
    likelihood = None

    def __init__(self, num_points: int = 256, num_classes: int = 0, categories: Any = ()) -> None:
        super().__init__({"num_points": num_points, "num_classes": num_classes, "categories": list(categories)})
        self.log_radius = torch.nn.Parameter(torch.tensor(math.log(0.1)))

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        pts = batch_points(batch, self.num_points).to(self.device)
        r = pts.norm(dim=-1).mean()
        loss = (self.log_radius.exp() - r) ** 2
        return {"loss": loss}

    def generate(self, n: int, labels: torch.Tensor | None, generator: torch.Generator, **options: Any) -> torch.Tensor:
        d = torch.randn(n, self.num_points, 3, generator=generator, device=self.device)
        return d / d.norm(dim=-1, keepdim=True) * self.log_radius.exp()


def _build_toy(root: Any = None, split: str = "train", n: int = 16, resolution: int = 8, num_points: int = 256,
               view: Any = None, progress: Any = None, **config: Any) -> ToyShapes:
    seed = {"train": 0, "val": 1, "test": 2}[split]
    return ToyShapes(n, resolution, num_points, seed, **config)


class GeneratorPlugin:
    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_generators(register: Any) -> None:
        register(GeneratorSpec(name="indep-voxels", build=IndependentVoxels, output="voxels"))
        register(GeneratorSpec(name="jitter-points", build=JitterPoints, output="pointcloud"))

    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_datasets(register: Any) -> None:
        register(DatasetSpec(name="toy", build=_build_toy))


@contextlib.contextmanager
def use_generator_plugin() -> Iterator[Any]:
    """Install a plugin manager with the built-ins and :class:`GeneratorPlugin` only; restore afterwards."""
    from geomgen._registry import PluginManager, set_plugin_manager

    pm = PluginManager()
    pm.load_default_plugins()
    pm.add_plugin(GeneratorPlugin, "generative-dummy", distribution="geomgen-tests", version="0")
    saved = set_plugin_manager(pm)
    try:
        yield pm
    finally:
        set_plugin_manager(saved)
