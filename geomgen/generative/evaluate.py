"""Evaluate a generator against held-out shapes: :func:`evaluate_generator`.

Protocol (what ``geomgen eval GENERATOR`` and the README table use):

* ``G`` samples are drawn with one seed (``G`` = number of references by default).
* **Chamfer** metrics: every sample and reference becomes ``P`` surface points
  in the object frame (``[-0.5, 0.5]^3``): voxel samples through their closed
  marching-cubes mesh (:meth:`~geomgen.generative.ShapeGenerator.to_meshes`,
  uniform area sampling), point samples directly (random subset of ``P``),
  references from the dataset's surface samples.  Distance: Chamfer-L2,
  squared distances, mean per direction, summed over the two directions
  (:func:`geomgen.metrics.pairwise_chamfer`), *not* rescaled.
* **IoU** metrics (voxel generators): distance ``1 - IoU`` between the binarised
  sample and the reference grid downsampled to the model's resolution
  (:func:`~geomgen.generative.downsample_occupancy`).
* MMD, COV and 1-NNA with PointFlow's definitions
  (:func:`geomgen.metrics.generative_metrics`): MMD lower is better, COV
  higher, 1-NNA closest to 50 %.
* Likelihood (models that define one): mean ``-log p(x)`` (exact models) or
  ``-ELBO`` over the references in nats per shape, and in bits per voxel.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from geomgen import checks as V
from geomgen.errors import InvalidInputError

__all__ = ["GeneratorReport", "evaluate_generator", "reference_batch", "sample_surface_points",
           "format_generator_table"]


@dataclass
class GeneratorReport:
    """What :func:`evaluate_generator` returns.

    Attributes:
        name: label of the model.
        output: ``"voxels"`` or ``"pointcloud"``.
        num_samples, num_references: ``G`` and ``R`` of the metrics.
        metrics: ``{"chamfer": {"MMD", "COV", "1-NNA"}, "iou": {...}}``
            (``iou`` only for voxel generators); COV and 1-NNA fractions.
        nll: mean negative log-likelihood (or negative ELBO, see
            ``likelihood``) of the references, nats per shape; None when undefined.
        bits_per_voxel: ``nll / (R^3 ln 2)`` (voxel generators), else None.
        likelihood: the model's ``likelihood`` attribute.
        seed: sampling seed.
        num_points: ``P`` of the Chamfer clouds.
        empty_samples: samples with no occupied voxel / mesh (their Chamfer
            clouds are all at the origin).
        sample_seconds: wall time of drawing the ``G`` samples.
    """

    name: str
    output: str
    num_samples: int
    num_references: int
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    nll: float | None = None
    bits_per_voxel: float | None = None
    likelihood: str | None = None
    seed: int = 0
    num_points: int = 2048
    empty_samples: int = 0
    sample_seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reference_batch(references: Any) -> dict[str, Any]:
    """A collated batch of ``references``: a dataset / list of sample dicts of
    :mod:`geomgen.data` (collated with :func:`~geomgen.data.collate_samples`)
    or an already collated batch (returned as is)."""
    from geomgen.data import collate_samples

    if isinstance(references, Mapping):
        return dict(references)
    try:
        n = len(references)
    except TypeError:
        raise InvalidInputError("evaluate_generator: argument 'references' must be a dataset, a list of sample "
                                f"dicts or a collated batch, got {type(references).__name__}") from None
    if n == 0:
        raise InvalidInputError("evaluate_generator: argument 'references' is empty")
    return collate_samples([references[i] for i in range(n)])


def sample_surface_points(meshes: Any, num_points: int, seed: int = 0) -> tuple[torch.Tensor, int]:
    """``(N, P, 3)`` uniform surface samples of each mesh (area-weighted,
    generator seeded with ``seed``) and the number of empty meshes, whose
    ``P`` points are all at the origin."""
    from geomgen.ops import sample_points_from_meshes

    N = len(meshes)
    faces = meshes.num_faces_per_mesh()
    out = torch.zeros(N, num_points, 3)
    keep = [i for i in range(N) if int(faces[i]) > 0]
    if keep:
        sub = meshes[keep] if len(keep) < N else meshes
        g = torch.Generator().manual_seed(int(seed))
        pts = sample_points_from_meshes(sub, num_points, generator=g)
        pts = pts[0] if isinstance(pts, tuple) else pts
        out[keep] = pts.float().cpu()
    return out, N - len(keep)


def _points_of(model: Any, samples: Any, num_points: int, seed: int) -> tuple[torch.Tensor, int]:
    if model.output == "voxels":
        return sample_surface_points(model.to_meshes(samples), num_points, seed)
    from geomgen.generative.base import batch_points

    g = torch.Generator().manual_seed(int(seed))
    return batch_points({"pointclouds": samples.cpu() if hasattr(samples, "cpu") else samples}, num_points, g), 0


def evaluate_generator(
    model: Any,
    references: Any,
    *,
    num_samples: int | None = None,
    seed: int = 0,
    num_points: int = 2048,
    distances: Sequence[str] | None = None,
    likelihood: bool = True,
    condition: Any = None,
    batch_size: int = 50,
    name: str | None = None,
) -> GeneratorReport:
    """Sample ``model`` and compare the samples with ``references``.

    Args:
        model: a :class:`~geomgen.generative.ShapeGenerator`.
        references: held-out shapes: a dataset (e.g. the ``shapes`` test
            split), list of sample dicts, or a collated batch with
            ``pointclouds`` (and ``voxels`` for the IoU metrics).
        num_samples: ``G`` (default: the number of references).
        seed: sampling seed (samples are drawn in chunks of ``batch_size``
            with seeds ``seed, seed + 1, ...``; point sampling uses ``seed``).
        num_points: ``P`` surface points per shape for the Chamfer metrics.
        distances: subset of ``("chamfer", "iou")``; default both for voxel
            generators, ``("chamfer",)`` for point generators.
        likelihood: also compute the references' NLL / negative ELBO when
            the model defines one (torch's RNG forked and seeded with ``seed``
            meanwhile, so stochastic bounds are reproducible).
        condition: passed to ``sample`` (e.g. a class name); for
            conditional models None draws random classes.
        batch_size: shapes per ``sample`` / likelihood call.
        name: label of the report (default: the model's class name).

    Returns:
        :class:`GeneratorReport` (see the module docstring for the protocol).
    """
    from geomgen.generative.base import batch_labels, downsample_occupancy
    from geomgen.metrics import generative_metrics

    fn = "evaluate_generator"
    ref = reference_batch(references)
    R = len(ref["label"]) if "label" in ref else len(ref["pointclouds"])
    G = R if num_samples is None else V.check_int(num_samples, "num_samples", min_value=1, fn=fn)
    num_points = V.check_int(num_points, "num_points", min_value=1, fn=fn)
    batch_size = V.check_int(batch_size, "batch_size", min_value=1, fn=fn)
    seed = V.check_int(seed, "seed", min_value=0, fn=fn)
    if distances is None:
        distances = ("chamfer", "iou") if model.output == "voxels" else ("chamfer",)
    for d in distances:
        if d not in ("chamfer", "iou") or (d == "iou" and model.output != "voxels"):
            raise V.fail("distances", f"{d!r} is not one of 'chamfer', 'iou' (iou for voxel generators only)", fn)
    report = GeneratorReport(name=name or type(model).__name__, output=model.output, num_samples=G,
                             num_references=R, likelihood=model.likelihood, seed=seed, num_points=num_points)
    model.eval()
    t0 = time.time()
    chunks = []
    for k, start in enumerate(range(0, G, batch_size)):
        n = min(batch_size, G - start)
        cond = condition
        if isinstance(condition, (list, tuple, torch.Tensor)):
            cond = condition[start:start + n]
        s = model.sample(n, condition=cond, seed=seed + k)
        chunks.append(s.grids.cpu() if model.output == "voxels" else s.points_padded().cpu())
    report.sample_seconds = time.time() - t0
    gen = torch.cat(chunks)
    if model.output == "voxels":
        from geomgen.generative.base import voxels_from_grids

        samples: Any = voxels_from_grids(gen)
    else:
        from geomgen.structures import PointClouds

        samples = PointClouds(gen)
    if "chamfer" in distances:
        gpts, report.empty_samples = _points_of(model, samples, num_points, seed)
        g = torch.Generator().manual_seed(seed + 1)
        from geomgen.generative.base import batch_points

        rpts = batch_points(ref, num_points, g).float().cpu()
        report.metrics["chamfer"] = generative_metrics(gpts, rpts, distance="chamfer")
    if "iou" in distances:
        if "voxels" not in ref:
            raise V.fail("references", "have no 'voxels' for the IoU metrics", fn)
        v = ref["voxels"]
        rgrids = downsample_occupancy((v.grids if hasattr(v, "grids") else v).cpu(), model.resolution)
        report.metrics["iou"] = generative_metrics((gen >= 0.5).float(), rgrids, distance="iou")
    if likelihood and model.likelihood is not None:
        x = ref["voxels"] if model.output == "voxels" else ref["pointclouds"]
        labels = batch_labels(ref) if model.conditional else None
        total = 0.0
        # stochastic bounds (a VAE's ELBO) draw from torch's global RNG: fork and seed it
        devices = [model.device.index or 0] if model.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            for start in range(0, R, batch_size):
                idx = list(range(start, min(start + batch_size, R)))
                xb = x[idx] if hasattr(x, "__getitem__") else x
                cb = None if labels is None else labels[idx]
                ll = model.log_prob(xb, cb) if model.likelihood == "exact" else model.elbo(xb, cb)
                total += float(ll.double().sum())
        report.nll = -total / R
        if model.output == "voxels":
            report.bits_per_voxel = report.nll / (model.resolution ** 3 * math.log(2.0))
    return report


def format_generator_table(reports: Mapping[str, GeneratorReport], markdown: bool = False) -> str:
    """One row per model: Chamfer MMD (x 10^3), COV %, 1-NNA %; IoU MMD
    (``1 - IoU``), COV %, 1-NNA %; NLL (nats per shape) and bits/voxel."""
    head = ["model", "output", "CD-MMD(x1e3)", "CD-COV%", "CD-1NNA%", "IoU-MMD", "IoU-COV%", "IoU-1NNA%",
            "NLL nats", "bits/voxel"]
    rows = []
    for label, r in reports.items():
        c, i = r.metrics.get("chamfer", {}), r.metrics.get("iou", {})

        def f(d: Mapping[str, float], k: str, scale: float, fmt: str) -> str:
            return format(d[k] * scale, fmt) if k in d else "-"

        nll = "-" if r.nll is None else f"{r.nll:.1f}" + ("" if r.likelihood == "exact" else " (ELBO)")
        bpv = "-" if r.bits_per_voxel is None else f"{r.bits_per_voxel:.4f}"
        rows.append([label, r.output, f(c, "MMD", 1e3, ".2f"), f(c, "COV", 100, ".1f"), f(c, "1-NNA", 100, ".1f"),
                     f(i, "MMD", 1, ".3f"), f(i, "COV", 100, ".1f"), f(i, "1-NNA", 100, ".1f"), nll, bpv])
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(h), *(len(r[j]) for r in rows)) for j, h in enumerate(head)]
    lines = ["  ".join(h.rjust(w) if j > 1 else h.ljust(w) for j, (h, w) in enumerate(zip(head, widths)))]
    lines += ["  ".join(x.rjust(w) if j > 1 else x.ljust(w) for j, (x, w) in enumerate(zip(r, widths))) for r in rows]
    return "\n".join(lines)
