"""The contract of generative shape models: :class:`ShapeGenerator` and batch helpers.

Every generator plugin (autoregressive, VAE, GAN, and third-party ones) builds
a subclass of :class:`ShapeGenerator`.  The core trainer task
(:class:`~geomgen.generative.GenerativeTask`), ``geomgen sample``, the
generative metrics and the pretrained-model loader only talk to this
interface.

Shapes: ``N`` shapes, ``R`` voxels per axis, ``P`` points, ``L`` latent size.

Frame.  Generators work in the object frame of the datasets: shapes
normalised into ``[-0.5, 0.5]^3``, +Y up.  Voxel grids cover that cube
(origin ``(-0.5,) * 3``, voxel size ``1 / R``, indexed ``[n, z, y, x]`` as
:class:`~geomgen.structures.Voxels`); point clouds are ``(N, P, 3)`` xyz in it.

Units.  Log-likelihoods and ELBOs are **natural-log units (nats) per shape**,
summed over the voxels (or points) of a shape, one value per shape;
``bits per voxel`` is ``-log_prob / (R^3 ln 2)``.

Randomness.  :meth:`ShapeGenerator.sample` draws every random number from one
``torch.Generator`` seeded with ``seed`` (``None``: seeded from torch's global
RNG, so ``torch.manual_seed`` still makes a script reproducible).  The same
model, ``n``, ``condition`` and ``seed`` give the same samples on the same
device.  Subclasses implement :meth:`ShapeGenerator.generate` and use only the
generator they are given.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from geomgen import checks as V
from geomgen.config import GeneratorConfig
from geomgen.errors import GeomgenError, InvalidInputError

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
]

#: Geometry a generator samples.
OUTPUTS: tuple[str, ...] = ("voxels", "pointcloud")
#: What :attr:`ShapeGenerator.likelihood` may say.
LIKELIHOODS: tuple[str | None, ...] = ("exact", "elbo", None)


class LikelihoodUnavailableError(GeomgenError, NotImplementedError):
    """The model defines no (bound on the) likelihood of a shape, e.g. a GAN."""


# ----------------------------------------------------------------------------- batch helpers
def downsample_occupancy(grids: torch.Tensor, resolution: int, threshold: float = 0.5) -> torch.Tensor:
    """Occupancy grids ``(N, D, D, D)`` -> ``(N, R, R, R)`` float {0, 1}.

    ``D`` must be a multiple of ``R``: a coarse voxel is occupied when at
    least ``threshold`` of the ``(D/R)^3`` fine voxels in it are (the fraction
    of its volume inside the shape).  ``D == R`` only binarises at
    ``threshold``.

    Raises:
        InvalidInputError: not a cubic 4-D grid, or ``D`` not a multiple of ``R``.
    """
    fn = "downsample_occupancy"
    V.check_tensor(grids, "grids", ndim=4, shape_desc="(N, D, D, D)", fn=fn)
    D = int(grids.shape[1])
    if grids.shape[2] != D or grids.shape[3] != D:
        raise V.fail("grids", f"must be cubic (N, D, D, D), got {tuple(grids.shape)}", fn)
    resolution = V.check_int(resolution, "resolution", min_value=1, fn=fn)
    if D % resolution:
        raise V.fail("resolution", f"must divide the grid side {D}, got {resolution}", fn)
    g = grids.float()
    if D != resolution:
        k = D // resolution
        g = F.avg_pool3d(g[:, None], kernel_size=k, stride=k)[:, 0]
    return (g >= threshold - 1e-6).float()


def batch_voxels(batch: Mapping[str, Any], resolution: int, threshold: float = 0.5) -> torch.Tensor:
    """The ``(B, 1, R, R, R)`` float {0, 1} occupancy of a
    :func:`~geomgen.data.collate_samples` batch (key ``"voxels"``: a
    :class:`~geomgen.structures.Voxels` or an ``(B, D, D, D)`` tensor), at
    resolution ``R`` (see :func:`downsample_occupancy`)."""
    if "voxels" not in batch:
        raise InvalidInputError(f"batch has no 'voxels' (keys: {sorted(batch)}); a voxel generator needs "
                                "datasets that voxelise their shapes")
    v = batch["voxels"]
    grids = v.grids if hasattr(v, "grids") else v
    return downsample_occupancy(grids, resolution, threshold)[:, None]


def batch_points(batch: Mapping[str, Any], num_points: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(B, P, 3)`` surface points of a batch (key ``"pointclouds"``, or
    ``"points"`` ``(B, P0, 3)``): a random subset of ``P`` points of each cloud
    without replacement (with replacement when a cloud has fewer than ``P``),
    drawn from ``generator`` (``None``: torch's global RNG).  Padding is never
    picked."""
    fn = "batch_points"
    num_points = V.check_int(num_points, "num_points", min_value=1, fn=fn)
    if "pointclouds" in batch:
        pc = batch["pointclouds"]
        pts, lengths = pc.points_padded(), pc.num_points_per_cloud()
    elif "points" in batch:
        pts = batch["points"]
        lengths = torch.full((pts.shape[0],), pts.shape[1], dtype=torch.int64, device=pts.device)
    else:
        raise InvalidInputError(f"batch has no 'pointclouds' or 'points' (keys: {sorted(batch)})")
    B, P0 = pts.shape[0], pts.shape[1]
    if B and int(lengths.min()) < 1:
        raise InvalidInputError(f"{fn}: a point cloud of the batch is empty")
    dev = pts.device
    keys = torch.rand(B, P0, generator=generator, device="cpu" if generator is None else generator.device)
    keys = keys.to(dev)
    keys = keys.masked_fill(torch.arange(P0, device=dev)[None] >= lengths[:, None], 2.0)
    if P0 >= num_points and int(lengths.min()) >= num_points:
        idx = keys.topk(num_points, dim=1, largest=False).indices
    else:  # some cloud is short: sample with replacement among its valid points
        u = torch.rand(B, num_points, generator=generator, device="cpu" if generator is None else generator.device)
        idx = (u.to(dev) * lengths[:, None]).long().clamp_max(lengths[:, None] - 1)
    return torch.gather(pts, 1, idx[..., None].expand(-1, -1, 3))


def batch_labels(batch: Mapping[str, Any]) -> torch.Tensor | None:
    """The ``(B,)`` int64 class labels of a batch (key ``"label"``), or None."""
    labels = batch.get("label")
    if labels is None:
        return None
    return torch.as_tensor(labels, dtype=torch.int64)


def voxels_from_grids(grids: torch.Tensor) -> Any:
    """``(N, R, R, R)`` occupancies in ``[0, 1]`` -> :class:`~geomgen.structures.Voxels`
    covering ``[-0.5, 0.5]^3`` (origin ``-0.5``, voxel size ``1 / R``)."""
    from geomgen.structures import Voxels

    R = int(grids.shape[-1])
    return Voxels(grids.clamp(0, 1), origin=(-0.5, -0.5, -0.5), voxel_size=1.0 / R)


# ----------------------------------------------------------------------------- the contract
class ShapeGenerator(nn.Module):
    """Base class of generative shape models.

    Class attributes (set by subclasses):
        output: ``"voxels"`` or ``"pointcloud"`` - what :meth:`sample` returns.
        likelihood: ``"exact"`` (:meth:`log_prob` is the exact
            log-likelihood, e.g. autoregressive), ``"elbo"`` (:meth:`elbo` is
            a lower bound, e.g. VAE) or ``None`` (implicit model, e.g. GAN:
            both raise :class:`LikelihoodUnavailableError`).

    Args:
        config: the build arguments (stored as ``self.config`` and saved with
            the weights).  Keys the base class reads: ``resolution`` (voxel
            generators, ``R``), ``num_points`` (point generators, ``P``),
            ``num_classes`` (0 = unconditional), ``categories`` (names of the
            classes, so ``condition="chair"`` works); the last two are checked
            by :class:`geomgen.config.GeneratorConfig`, the base of the
            generators' config classes.

    Subclasses implement :meth:`generate` and :meth:`compute_loss` and, where
    defined, :meth:`log_prob` / :meth:`elbo`.  Models with several optimizers
    (GANs) override :meth:`configure_optimizers` and make
    :meth:`training_step` a Python generator yielding
    :class:`~geomgen.train.OptimizerStep` items (see :mod:`geomgen.train.task`).
    """

    output: ClassVar[str] = "voxels"
    likelihood: ClassVar[str | None] = None

    def __init__(self, config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.config: dict[str, Any] = dict(config or {})
        base = GeneratorConfig.from_dict({"num_classes": self.config.get("num_classes", 0),
                                          "categories": self.config.get("categories") or ()},
                                         name=type(self).__name__)
        self.num_classes: int = base.num_classes
        self.categories: tuple[str, ...] = base.categories

    # ------------------------------------------------------------------ info
    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def resolution(self) -> int:
        """``R`` of a voxel generator."""
        return int(self.config.get("resolution", 32))

    @property
    def num_points(self) -> int:
        """``P`` of a point-cloud generator."""
        return int(self.config.get("num_points", 2048))

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    # ------------------------------------------------------------------ inputs
    def labels_for(self, condition: Any, n: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Class labels ``(n,)`` int64 for :meth:`sample`'s ``condition``.

        ``condition``: None (unconditional models: None; conditional models:
        labels drawn uniformly from ``generator``), an int label, a category
        name, or a sequence / ``(n,)`` tensor of them.

        Raises:
            InvalidInputError: a condition for an unconditional model, an
                unknown category (listing the known ones), a label out of
                ``[0, num_classes)`` or a length other than ``n``.
        """
        fn = f"{type(self).__name__}.sample"
        if condition is None:
            if not self.conditional:
                return None
            return torch.randint(self.num_classes, (n,), generator=generator,
                                 device="cpu" if generator is None else generator.device).to(self.device)
        if not self.conditional:
            raise V.fail("condition", f"this model is unconditional (num_classes=0), got {condition!r}", fn)
        items: list[Any]
        if isinstance(condition, (int, str)) and not isinstance(condition, bool):
            items = [condition] * n
        elif isinstance(condition, torch.Tensor):
            if condition.dim() > 1 or condition.is_floating_point() or condition.dtype == torch.bool:
                raise V.fail("condition", f"must be an (n,) integer tensor, got {tuple(condition.shape)} "
                             f"{condition.dtype}", fn)
            items = condition.reshape(-1).tolist() if condition.dim() == 1 else [int(condition)] * n
        elif isinstance(condition, Iterable):
            items = list(condition)
        else:
            raise V.fail("condition", f"must be a label, a category name or a list of them, got "
                         f"{type(condition).__name__}", fn)
        if len(items) != n:
            raise V.fail("condition", f"has {len(items)} entries for n={n} samples", fn)
        labels = []
        for c in items:
            if isinstance(c, str):
                if c not in self.categories:
                    known = ", ".join(self.categories) or "none (the model has no category names; give integer labels)"
                    raise V.fail("condition", f"unknown category {c!r}; known: {known}", fn)
                labels.append(self.categories.index(c))
            elif isinstance(c, int) and not isinstance(c, bool) and 0 <= c < self.num_classes:
                labels.append(int(c))
            else:
                raise V.fail("condition", f"labels must be integers in [0, {self.num_classes}), got {c!r}", fn)
        return torch.tensor(labels, dtype=torch.int64, device=self.device)

    def batch_labels_of(self, batch: Mapping[str, Any], n: int | None = None,
                        fn: str | None = None) -> torch.Tensor | None:
        """The ``(B,)`` int64 class labels of a training batch on the model's
        device, or None for an unconditional model.

        ``n``: the batch size ``B`` the labels must have (None: any).  ``fn``
        names the caller in errors (default ``<Model>.compute_loss``).

        Raises:
            InvalidInputError: a conditional model and a batch without a
                ``"label"`` key, or labels of another length or out of
                ``[0, num_classes)``.
        """
        if not self.conditional:
            return None
        fn = fn or f"{type(self).__name__}.compute_loss"
        labels = batch_labels(batch)
        if labels is None:
            raise V.fail("batch", f"a class-conditional model needs the batch's 'label' (keys: {sorted(batch)})", fn)
        if labels.dim() != 1 or (n is not None and labels.shape[0] != n) or (
                labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes)):
            want = "(B,)" if n is None else f"({n},)"
            raise V.fail("batch", f"'label' must be {want} integers in [0, {self.num_classes}), "
                         f"got {labels.tolist()}", fn)
        return labels.to(self.device)

    def as_input(self, x: Any, fn: str = "log_prob") -> torch.Tensor:
        """Shapes as the model's input tensor: voxel generators take a
        :class:`~geomgen.structures.Voxels` or ``(N, R, R, R)`` / ``(N, 1, R, R, R)``
        occupancies (binarised at 0.5, resampled from a multiple of ``R``) and
        return ``(N, 1, R, R, R)`` float; point generators take a
        :class:`~geomgen.structures.PointClouds` (equal sizes) or ``(N, P', 3)``
        and return ``(N, P', 3)``, on the model's device."""
        fn = f"{type(self).__name__}.{fn}"
        if self.output == "voxels":
            g = x.grids if hasattr(x, "grids") else x
            V.check_tensor(g, "x", shape_desc="(N, R, R, R) or (N, 1, R, R, R)", fn=fn)
            if g.dim() == 5 and g.shape[1] == 1:
                g = g[:, 0]
            if g.dim() != 4:
                raise V.fail("x", f"must be (N, R, R, R) or (N, 1, R, R, R) occupancies, got {tuple(g.shape)}", fn)
            if not torch.isfinite(g.float()).all():
                raise V.fail("x", "has NaN/Inf values", fn)
            R = self.resolution
            if g.shape[-1] % R or any(s != g.shape[-1] for s in g.shape[1:]):
                raise V.fail("x", f"must be cubic grids with a side that is a multiple of R={R}, "
                             f"got {tuple(g.shape)}", fn)
            return downsample_occupancy(g, R)[:, None].to(self.device)
        pts = x.points_padded() if hasattr(x, "points_padded") else x
        V.check_tensor(pts, "x", ndim=3, shape_desc="(N, P, 3)", floating=True, fn=fn)
        if pts.shape[-1] != 3:
            raise V.fail("x", f"must be (N, P, 3) points, got {tuple(pts.shape)}", fn)
        if hasattr(x, "num_points_per_cloud") and int(x.num_points_per_cloud().min()) != pts.shape[1]:
            raise V.fail("x", "clouds of different sizes: give equal-size clouds", fn)
        return pts.float().to(self.device)

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, condition: Any = None, seed: int | None = None, **options: Any) -> Any:
        """Draw ``n`` new shapes.

        Args:
            n: number of shapes, >= 1.
            condition: class condition (see :meth:`labels_for`).
            seed: seeds the one ``torch.Generator`` every random number comes
                from; None seeds it from torch's global RNG.
            **options: model-specific sampling options (e.g. ``temperature``).

        Returns:
            voxel generators: :class:`~geomgen.structures.Voxels` of ``n``
            ``(R, R, R)`` occupancies in ``[0, 1]`` over ``[-0.5, 0.5]^3``
            (binary for autoregressive models, probabilities for decoders;
            ``.occupancy(0.5)`` binarises); point generators:
            :class:`~geomgen.structures.PointClouds` of ``n`` clouds of ``P``
            points.  Runs in eval mode without gradients (the training mode
            is restored afterwards).
        """
        from geomgen.structures import PointClouds

        fn = f"{type(self).__name__}.sample"
        n = V.check_int(n, "n", min_value=1, fn=fn)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        seed = V.check_int(seed, "seed", min_value=0, fn=fn)
        dev = self.device
        g = torch.Generator(device=dev)
        g.manual_seed(seed)
        labels = self.labels_for(condition, n, g)
        was_training = self.training
        self.eval()
        try:
            with torch.no_grad():
                out = self.generate(n, labels, g, **options)
        finally:
            self.train(was_training)
        if self.output == "voxels":
            if out.dim() == 5:
                out = out[:, 0]
            return voxels_from_grids(out.float())
        return PointClouds(out.float())

    def generate(self, n: int, labels: torch.Tensor | None, generator: torch.Generator,
                 **options: Any) -> torch.Tensor:  # pragma: no cover - abstract
        """``n`` samples as a tensor: ``(n, R, R, R)`` occupancies in ``[0, 1]``
        or ``(n, P, 3)`` points; ``labels`` ``(n,)`` or None; every random
        number from ``generator`` (on the model's device)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement generate")

    def to_meshes(self, samples: Any) -> Any:
        """Meshes of samples (:meth:`sample`'s output): marching cubes at level
        0.5 for voxels (closed, in the object frame), splat-fill-marching cubes
        (:func:`geomgen.ops.reconstruct_surface`) for point clouds."""
        from geomgen.ops import reconstruct_surface

        if hasattr(samples, "grids"):
            return _voxel_meshes(samples)
        return reconstruct_surface(samples.points_padded(), samples.num_points_per_cloud())

    # ------------------------------------------------------------------ likelihoods
    def _no_likelihood(self, what: str) -> LikelihoodUnavailableError:
        name = self.config.get("name") or type(self).__name__
        return LikelihoodUnavailableError(
            f"{name}: {what} is not defined for this model ({type(self).__name__} is an implicit generative "
            "model without a likelihood); compare samples with geomgen.metrics.generative_metrics "
            "(MMD, COV, 1-NNA) instead")

    def log_prob(self, x: Any, condition: Any = None) -> torch.Tensor:
        """``(N,)`` log-likelihood of each shape in nats (summed over voxels/points).

        Raises:
            LikelihoodUnavailableError: the model has no tractable likelihood.
        """
        raise self._no_likelihood("log_prob")

    def elbo(self, x: Any, condition: Any = None) -> torch.Tensor:
        """``(N,)`` evidence lower bound of each shape in nats (<= log-likelihood).

        Models with an exact likelihood return :meth:`log_prob` (the bound is tight).

        Raises:
            LikelihoodUnavailableError: the model defines no likelihood bound.
        """
        if self.likelihood == "exact":
            return self.log_prob(x, condition)
        raise self._no_likelihood("elbo")

    def bits_per_voxel(self, x: Any, condition: Any = None) -> torch.Tensor:
        """``(N,)`` negative log-likelihood (or negative ELBO) in bits per voxel:
        ``-log p(x) / (R^3 ln 2)`` (voxel generators)."""
        if self.output != "voxels":
            raise InvalidInputError(f"{type(self).__name__}.bits_per_voxel: only for voxel generators")
        ll = self.log_prob(x, condition) if self.likelihood == "exact" else self.elbo(x, condition)
        return -ll / (self.resolution ** 3 * math.log(2.0))

    # ------------------------------------------------------------------ training
    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:  # pragma: no cover
        """Training loss of a :func:`~geomgen.data.collate_samples` batch:
        ``{"loss": scalar, **named terms}`` (means over the batch)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement compute_loss")

    def training_step(self, batch: Mapping[str, Any], step: int) -> Any:
        """One training step for :class:`~geomgen.generative.GenerativeTask`:
        :meth:`compute_loss` by default; GANs yield
        :class:`~geomgen.train.OptimizerStep` items instead."""
        return self.compute_loss(batch)

    def configure_optimizers(self, config: Any) -> Any:
        """``None``: one optimizer over all parameters built from the
        :class:`~geomgen.train.TrainConfig`; or a mapping ``name -> optimizer``
        (see :mod:`geomgen.train.task`)."""
        return None

    def validation_metrics(self, batch: Mapping[str, Any]) -> dict[str, float | torch.Tensor]:
        """Batch means of the loss terms, plus ``nll`` (nats per shape) and, for
        voxel generators, ``bits_per_voxel`` when a likelihood (or bound) is defined."""
        out: dict[str, float | torch.Tensor] = {k: v.detach() if isinstance(v, torch.Tensor) else v
                                                 for k, v in self.compute_loss(batch).items()}
        if self.likelihood is not None:
            x = batch_voxels(batch, self.resolution) if self.output == "voxels" else \
                batch_points(batch, self.num_points, torch.Generator().manual_seed(0))
            cond = self.batch_labels_of(batch, fn=f"{type(self).__name__}.validation_metrics")
            ll = self.log_prob(x, cond) if self.likelihood == "exact" else self.elbo(x, cond)
            out["nll"] = -ll.mean()
            if self.output == "voxels":
                out["bits_per_voxel"] = -ll.mean() / (self.resolution ** 3 * math.log(2.0))
        return out


def _voxel_meshes(samples: Any) -> Any:
    """Closed meshes of binarised voxel samples: marching cubes on the grid
    padded with one empty voxel per side, placed in the grid's world frame."""
    from geomgen.ops import marching_cubes

    occ = samples.occupancy(0.5).float()
    occ = F.pad(occ, (1, 1, 1, 1, 1, 1))
    size = samples.voxel_size
    origin = samples.origin + 0.5 * size - size  # centre of padded voxel (0, 0, 0)
    return marching_cubes(occ, 0.5, spacing=size, origin=origin)
