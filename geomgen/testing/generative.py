"""Test helpers for generator plugins: a tiny synthetic dataset and a contract check.

* :class:`ToyShapes` - boxes and spheres of random size (two classes), as
  sample dicts of :mod:`geomgen.data` (``voxels``, ``points``, ``normals``,
  ``label``, ``category``, ``id``), built analytically in milliseconds, so
  generator tests can fit a model in seconds.
* :func:`toy_batch` - a collated batch of it.
* :func:`check_generator` - asserts that a model honours
  :class:`~geomgen.generative.ShapeGenerator`'s contract (a third-party
  generator's tests can call it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from geomgen import checks as V

__all__ = ["ToyShapes", "toy_batch", "check_generator", "TOY_CATEGORIES"]

#: Classes of :class:`ToyShapes`, in label order.
TOY_CATEGORIES: tuple[str, ...] = ("box", "sphere")


def _box_surface(half: torch.Tensor, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` uniform samples on the surface of the box ``[-half, half]`` and their normals."""
    hx, hy, hz = (float(v) for v in half)
    areas = torch.tensor([hy * hz, hy * hz, hx * hz, hx * hz, hx * hy, hx * hy], dtype=torch.float64)
    face = torch.multinomial(areas, n, replacement=True, generator=g)
    uv = torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1
    axis = face // 2
    sign = (face % 2).to(torch.float64) * 2 - 1
    pts = torch.zeros(n, 3, dtype=torch.float64)
    nrm = torch.zeros(n, 3, dtype=torch.float64)
    h = half.to(torch.float64)
    for a in range(3):
        sel = axis == a
        others = [b for b in range(3) if b != a]
        pts[sel, a] = sign[sel] * h[a]
        pts[sel, others[0]] = uv[sel, 0] * h[others[0]]
        pts[sel, others[1]] = uv[sel, 1] * h[others[1]]
        nrm[sel, a] = sign[sel]
    return pts.float(), nrm.float()


class ToyShapes(torch.utils.data.Dataset):
    """``n`` synthetic shapes: axis-aligned boxes (label 0) and spheres (label 1).

    Shape ``i`` is a box when ``i`` is even; its size comes from
    ``seed`` and ``i`` only: box half-extents uniform in ``[0.15, 0.4]`` per
    axis, sphere radius uniform in ``[0.15, 0.4]``; centred at the origin
    plus a uniform offset of at most ``jitter`` per axis.

    Args:
        n: number of shapes, >= 1.
        resolution: ``R`` of the occupancy grids over ``[-0.5, 0.5]^3`` (a
            voxel is inside when its centre is).
        num_points: surface samples per shape.
        seed: dataset seed.
        jitter: largest centre offset per axis.
        categories: which classes to include (subset of :data:`TOY_CATEGORIES`);
            labels always index ``self.categories``.

    Samples: ``{"id", "category", "label", "voxels" (R, R, R) float {0, 1},
    "points" (P, 3), "normals" (P, 3)}`` (collate with
    :func:`geomgen.data.collate_samples`).
    """

    def __init__(self, n: int = 64, resolution: int = 16, num_points: int = 512, seed: int = 0,
                 jitter: float = 0.05, categories: tuple[str, ...] = TOY_CATEGORIES) -> None:
        fn = "ToyShapes"
        self.n = V.check_int(n, "n", min_value=1, fn=fn)
        self.resolution = V.check_int(resolution, "resolution", min_value=2, fn=fn)
        self.num_points = V.check_int(num_points, "num_points", min_value=1, fn=fn)
        self.seed = V.check_int(seed, "seed", min_value=0, fn=fn)
        self.jitter = float(jitter)
        cats = tuple(categories)
        if not cats or any(c not in TOY_CATEGORIES for c in cats):
            raise V.fail("categories", f"must be a non-empty subset of {TOY_CATEGORIES}, got {categories!r}", fn)
        self.categories = cats

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -self.n <= index < self.n:
            raise IndexError(f"ToyShapes index {index} out of range for {self.n} shapes")
        i = index % self.n
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        cat = self.categories[i % len(self.categories)]
        centre = (torch.rand(3, generator=g) * 2 - 1) * self.jitter
        R = self.resolution
        c = (torch.arange(R, dtype=torch.float32) + 0.5) / R - 0.5
        z, y, x = torch.meshgrid(c, c, c, indexing="ij")
        xyz = torch.stack([x, y, z], -1) - centre
        if cat == "box":
            half = 0.15 + 0.25 * torch.rand(3, generator=g)
            occ = (xyz.abs() <= half).all(-1)
            pts, nrm = _box_surface(half, self.num_points, g)
        else:
            r = 0.15 + 0.25 * float(torch.rand((), generator=g))
            occ = xyz.norm(dim=-1) <= r
            d = torch.randn(self.num_points, 3, generator=g)
            nrm = d / d.norm(dim=1, keepdim=True).clamp_min(1e-12)
            pts = nrm * r
        return {"id": f"{cat}/{i:04d}", "category": cat, "label": self.categories.index(cat),
                "voxels": occ.float(), "points": pts + centre, "normals": nrm}


def toy_batch(n: int = 8, resolution: int = 16, num_points: int = 512, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """The collated batch of a whole :class:`ToyShapes` (``voxels`` a
    :class:`~geomgen.structures.Voxels`, ``pointclouds``, ``label`` ...)."""
    from geomgen.data import collate_samples

    ds = ToyShapes(n, resolution, num_points, seed, **kwargs)
    return collate_samples([ds[i] for i in range(len(ds))])


def check_generator(model: Any, batch: Mapping[str, Any], *, n: int = 2) -> dict[str, Any]:
    """Assert ``model`` honours the :class:`~geomgen.generative.ShapeGenerator` contract.

    Checks: class attributes; ``compute_loss`` / ``training_step`` give finite
    losses with gradients reaching parameters; ``sample(n, seed=s)`` has the
    right type and shape, is reproducible, differs across seeds, leaves the
    training mode and torch's global RNG alone; ``log_prob`` / ``elbo`` are
    ``(N,)`` finite nats where ``likelihood`` says so, else raise
    :class:`~geomgen.generative.LikelihoodUnavailableError`; ``to_meshes``;
    ``validation_metrics``.  Returns what it computed (``loss``, ``samples``).
    """
    import inspect

    from geomgen.generative import OUTPUTS, LikelihoodUnavailableError, ShapeGenerator
    from geomgen.structures import Meshes, PointClouds, Voxels
    from geomgen.train import OptimizerStep

    assert isinstance(model, ShapeGenerator), f"{type(model).__name__} is not a ShapeGenerator"
    assert model.output in OUTPUTS, f"output {model.output!r} not in {OUTPUTS}"
    assert model.likelihood in ("exact", "elbo", None)
    model.train()
    result = model.training_step(batch, 0)
    losses: list[torch.Tensor] = []
    if inspect.isgenerator(result):
        for item in result:
            step = item if isinstance(item, OptimizerStep) else OptimizerStep(*item)
            assert torch.isfinite(step.loss), f"non-finite loss for optimizer {step.optimizer}"
            model.zero_grad(set_to_none=True)
            step.loss.backward()
            losses.append(step.loss.detach())
    else:
        assert "loss" in result, f"training_step returned {sorted(result)} without 'loss'"
        assert result["loss"].dim() == 0 and torch.isfinite(result["loss"]), f"bad loss {result['loss']}"
        model.zero_grad(set_to_none=True)
        result["loss"].backward()
        losses.append(result["loss"].detach())
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads), "no finite gradients reached the parameters"

    state = torch.random.get_rng_state()
    a = model.sample(n, seed=3)
    b = model.sample(n, seed=3)
    c = model.sample(n, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state), "sample(seed=...) changed torch's global RNG"
    assert model.training, "sample() did not restore training mode"
    if model.output == "voxels":
        assert isinstance(a, Voxels) and a.grids.shape == (n,) + (model.resolution,) * 3, f"bad sample {a}"
        assert torch.equal(a.grids, b.grids), "same seed gave different samples"
        assert not torch.equal(a.grids, c.grids), "different seeds gave identical samples"
        assert float(a.grids.min()) >= 0 and float(a.grids.max()) <= 1
    else:
        assert isinstance(a, PointClouds) and a.points_padded().shape == (n, model.num_points, 3), f"bad sample {a}"
        assert torch.equal(a.points_padded(), b.points_padded()), "same seed gave different samples"
        assert not torch.equal(a.points_padded(), c.points_padded()), "different seeds gave identical samples"
    if model.conditional:
        model.sample(n, condition=0, seed=0)
    meshes = model.to_meshes(a)
    assert isinstance(meshes, Meshes) and len(meshes) == n

    model.eval()
    x = batch["voxels"] if model.output == "voxels" else batch["pointclouds"]
    cond = batch.get("label") if model.conditional else None
    with torch.no_grad():
        if model.likelihood is None:
            for method in (model.log_prob, model.elbo):
                try:
                    method(x, cond)
                except LikelihoodUnavailableError:
                    pass
                else:  # pragma: no cover - a failed contract
                    raise AssertionError(f"{method.__name__} of an implicit model must raise LikelihoodUnavailableError")
        else:
            ll = model.log_prob(x, cond) if model.likelihood == "exact" else model.elbo(x, cond)
            N = len(batch["label"]) if "label" in batch else ll.shape[0]
            assert ll.shape == (N,) and torch.isfinite(ll).all(), f"bad log-likelihood {ll}"
        metrics = model.validation_metrics(batch)
    assert all(math.isfinite(float(v)) for v in metrics.values()), f"non-finite validation metrics {metrics}"
    model.train()
    return {"loss": losses, "samples": a, "metrics": metrics}
