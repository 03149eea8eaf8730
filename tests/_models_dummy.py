"""Tiny ShapePredictors and fixtures helpers for the tests of geomgen.models.

Imported as ``from _models_dummy import ...`` (pytest puts ``tests/`` on ``sys.path``).

* :class:`DummySphere` - an icosphere of radius ``radius * exp(log_scale)``
  (one learned scalar) in the object frame; its loss is the Chamfer distance
  to the GT surface points, so a few steps of training change it.
* :class:`CameraSphere` - the same sphere in the camera frame (centred at
  ``(0, 0, default_distance)``), for frame conversions.
* :class:`Oracle` - returns the GT meshes of images it has been shown
  (object or camera frame), to check evaluation numbers.
* :func:`use_dummy_plugin` - a context manager installing a plugin manager
  with geomgen's built-ins and these representations (and nothing else).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

import geomgen
from geomgen.components import RepresentationSpec
from geomgen.models import ShapePredictor, default_distance, world_to_camera

#: The tiny dataset of these tests: 2 shapes of each of 3 categories, coarse meshes.
TINY = {"categories": ["box", "sphere", "mug"], "per_category": 2, "resolution": 20, "progress": False}


def tiny_dataset(root: Path, split: str = "train", view: Any = 0) -> Any:
    """The shared tiny ``shapes`` dataset (built once per session into ``root``, then read from its cache)."""
    return geomgen.get_dataset("shapes", root=str(root), split=split, view=view, **TINY)


def tiny_root(tmp_path_factory: Any) -> Path:
    """One cache root for every test module of the session (the first module builds it)."""
    return tmp_path_factory.getbasetemp() / "models-shapes-cache"


class DummySphere(ShapePredictor):
    """Icosphere of radius ``radius * exp(log_scale)``, object frame, image ignored
    except for its size check."""

    output = "mesh"
    frame = "object"
    has_volume = True

    def __init__(self, radius: float = 0.3, level: int = 2, **config: Any) -> None:
        super().__init__({"radius": radius, "level": level, **config})
        self.log_scale = torch.nn.Parameter(torch.zeros(()))
        self.mix = torch.nn.Linear(3, 1)  # makes the output depend (a little) on the image
        torch.nn.init.zeros_(self.mix.weight)
        torch.nn.init.zeros_(self.mix.bias)

    def _center(self) -> torch.Tensor:
        return torch.zeros(3, device=self.device)

    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None) -> torch.Tensor:
        """``(N,)`` radii."""
        x = images.mean(dim=(2, 3))
        return self.config["radius"] * torch.exp(self.log_scale + self.mix(x)[:, 0])

    def _verts(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from geomgen.ops import ico_sphere

        s = ico_sphere(int(self.config["level"]), device=self.device)
        v, f = s.verts_list()[0], s.faces_list()[0]
        r = self(images)
        return v[None] * r[:, None, None] + self._center(), f

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        from geomgen.losses import chamfer_distance

        images = self.check_images(batch["images"], "compute_loss")
        v, _ = self._verts(images)
        gt = batch["pointclouds"].points_padded().to(v)
        if self.frame == "camera":
            gt = world_to_camera(gt, batch["world_from_camera"].to(v))
        loss = chamfer_distance(v, gt)[0]
        return {"loss": loss, "radius": self(images).mean().detach()}

    def predict_meshes(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Any:
        from geomgen.structures import Meshes

        images = self.check_images(images, "predict_meshes")
        with torch.no_grad():
            v, f = self._verts(images)
        return Meshes(list(v), [f] * v.shape[0])

    def predict(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Any:
        return self.predict_meshes(images, K)


class CameraSphere(DummySphere):
    """:class:`DummySphere` in the camera frame, centred at ``(0, 0, default_distance(fov))``."""

    frame = "camera"

    def _center(self) -> torch.Tensor:
        return torch.tensor([0.0, 0.0, default_distance(self.fov)], device=self.device)


class PointsOnly(DummySphere):
    """A point-cloud model without normals (overrides predict_points), no volume."""

    output = "pointcloud"
    has_volume = False

    def predict_points(self, images: torch.Tensor, K: torch.Tensor | None = None, num_points: int = 10000) -> Any:
        from geomgen.structures import PointClouds

        m = self.predict_meshes(images, K)
        return PointClouds(m.verts_list())

    def predict(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Any:
        return self.predict_points(images, K)


def _key(image: torch.Tensor) -> tuple[float, ...]:
    x = image.detach().float().cpu()
    return (round(float(x.sum()), 2), round(float((x * torch.linspace(0, 1, x.shape[-1])).sum()), 2))


class Oracle(ShapePredictor):
    """Returns the GT mesh of every image it was :meth:`show` n (in its frame)."""

    output = "mesh"
    has_volume = True

    def __init__(self, frame: str = "object", **config: Any) -> None:
        super().__init__({"frame": frame, **config})
        self.frame = frame  # type: ignore[misc]
        self.table: dict[tuple[float, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def show(self, batch: Mapping[str, Any]) -> None:
        for i, (v, f) in enumerate(zip(batch["mesh"].verts_list(), batch["mesh"].faces_list())):
            if self.frame == "camera":
                v = world_to_camera(v[None], batch["world_from_camera"][i:i + 1])[0]
            self.table[_key(batch["images"][i])] = (v, f)

    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Any:
        return images

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def predict_meshes(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Any:
        from geomgen.structures import Meshes

        images = self.check_images(images)
        empty = (torch.zeros(0, 3), torch.zeros(0, 3, dtype=torch.int64))
        vf = [self.table.get(_key(im), empty) for im in images]
        return Meshes([v for v, _ in vf], [f for _, f in vf])

    def predict(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Any:
        return self.predict_meshes(images, K)


class DummyPlugin:
    """Registers ``dummy-sphere``, ``dummy-camera`` and ``dummy-points``."""

    @staticmethod
    @geomgen.hookimpl
    def geomgen_register_representations(register: Any) -> None:
        register(RepresentationSpec(name="dummy-sphere", build=DummySphere, output="mesh",
                                    description="test: a sphere", default_config={"radius": 0.3}))
        register(RepresentationSpec(name="dummy-camera", build=CameraSphere, output="mesh",
                                    description="test: a sphere in the camera frame"))
        register(RepresentationSpec(name="dummy-points", build=PointsOnly, output="pointcloud",
                                    description="test: points without normals"))


@contextlib.contextmanager
def use_dummy_plugin() -> Iterator[Any]:
    """Install a plugin manager with the built-ins and :class:`DummyPlugin` only; restore afterwards."""
    from geomgen._registry import PluginManager, set_plugin_manager

    pm = PluginManager()
    pm.load_default_plugins()
    pm.add_plugin(DummyPlugin, "models-dummy", distribution="geomgen-tests", version="0")
    saved = set_plugin_manager(pm)
    try:
        yield pm
    finally:
        set_plugin_manager(saved)
