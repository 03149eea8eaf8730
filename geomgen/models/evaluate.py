"""Score single-view predictors on a dataset: :func:`evaluate`, :class:`EvalReport`, :func:`format_table`.

The protocol is Mesh R-CNN's ShapeNet evaluation (see
:mod:`geomgen.metrics.compare_meshes`), applied in the **object** frame:

1. For each sample, view ``view`` (default 0) is fed to the model; the
   prediction is ``model.predict_points(images, K, num_samples)`` (``P``
   points, with normals when the representation has them).  Predictions of
   camera-frame models are mapped to the object frame with the view's
   ``world_from_camera`` pose (points and normals).
2. The ground truth is ``num_samples`` area-weighted samples (with face
   normals) of the sample's GT mesh, drawn from a generator seeded with
   ``seed`` and the sample's index (so results do not depend on the batch size).
3. Both clouds of a pair are scaled by ``10 / L`` where ``L`` is the longest
   edge of the GT mesh's bounding box (``gt-10``), then
   :func:`~geomgen.metrics.compare_point_clouds` gives ``Chamfer-L2`` (squared
   distances, mean per direction, both directions summed; lower is better),
   ``AbsNormalConsistency`` (mean ``|cos|`` both ways; undefined when the
   prediction has no normals) and ``F1@t`` for ``t`` in ``thresholds``
   (percent, unsquared distances, strict ``<``).
4. ``IoU`` (fraction in [0, 1]) only for models with ``has_volume``: the
   predicted meshes (``predict_meshes``, object frame) are voxelized
   (``mode="solid"``) over exactly ``[-0.5, 0.5]^3`` at the GT grid's
   resolution and compared with the GT voxels; an empty predicted mesh scores 0.

Means: :meth:`EvalReport.category_means` (per category),
:meth:`EvalReport.mean` (the mean of the category means, Mesh R-CNN's headline
number) and :meth:`EvalReport.instance_mean` (every instance weighted alike).
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from geomgen import checks as V
from geomgen.errors import InvalidInputError

__all__ = ["evaluate", "EvalReport", "format_table", "METRIC_COLUMNS", "EVAL_FORMAT"]

#: ``format`` field of :meth:`EvalReport.to_dict`.
EVAL_FORMAT = "geomgen-eval/1"

#: Table columns: (metric key, header, higher is better, number format).
METRIC_COLUMNS: tuple[tuple[str, str, bool, str], ...] = (
    ("Chamfer-L2", "Chamfer-L2 ↓", False, "{:.3f}"),
    ("AbsNormalConsistency", "AbsNormal ↑", True, "{:.3f}"),
    ("F1@0.1", "F1@0.1 ↑", True, "{:.1f}"),
    ("F1@0.3", "F1@0.3 ↑", True, "{:.1f}"),
    ("F1@0.5", "F1@0.5 ↑", True, "{:.1f}"),
    ("IoU", "IoU ↑", True, "{:.3f}"),
)

_UNDEFINED = "—"


def _finite_mean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return sum(vals) / len(vals) if vals else None


@dataclass
class EvalReport:
    """Per-instance results of :func:`evaluate`.

    Attributes:
        name: the model's name (for tables), or None.
        ids: sample ids, in dataset order.
        categories: category of each instance.
        values: metric key -> one float per instance (NaN where undefined,
            e.g. ``AbsNormalConsistency`` of a prediction without normals,
            ``IoU`` of a model without volume).
        config: how the numbers were made (view, num_samples, thresholds, seed,
            dataset description, wall time ...); JSON-able.
    """

    name: str | None
    ids: list[str]
    categories: list[str]
    values: dict[str, list[float]]
    config: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def metrics(self) -> list[str]:
        """The metric keys, in table order first."""
        order = [k for k, *_ in METRIC_COLUMNS]
        return [k for k in order if k in self.values] + sorted(k for k in self.values if k not in order)

    def category_names(self) -> list[str]:
        """Categories in order of first appearance."""
        return list(dict.fromkeys(self.categories))

    def category_means(self) -> dict[str, dict[str, float | None]]:
        """category -> metric -> mean over that category's instances (None when undefined)."""
        out: dict[str, dict[str, float | None]] = {}
        for cat in self.category_names():
            idx = [i for i, c in enumerate(self.categories) if c == cat]
            out[cat] = {k: _finite_mean([self.values[k][i] for i in idx]) for k in self.metrics}
        return out

    def mean(self) -> dict[str, float | None]:
        """metric -> mean of the per-category means (each category weighted alike)."""
        per = self.category_means()
        return {k: _finite_mean([m[k] for m in per.values() if m[k] is not None]) for k in self.metrics}

    def instance_mean(self) -> dict[str, float | None]:
        """metric -> mean over every instance."""
        return {k: _finite_mean(self.values[k]) for k in self.metrics}

    def to_dict(self, instances: bool = True) -> dict[str, Any]:
        """JSON-able dict (NaN -> None): means, per-category means and counts and,
        with ``instances``, the per-instance values."""
        counts: dict[str, int] = {}
        for c in self.categories:
            counts[c] = counts.get(c, 0) + 1
        per = self.category_means()
        out: dict[str, Any] = {
            "format": EVAL_FORMAT,
            "name": self.name,
            "config": self.config,
            "num_instances": len(self),
            "mean": self.mean(),
            "instance_mean": self.instance_mean(),
            "per_category": {c: {"count": counts[c], **per[c]} for c in per},
        }
        if instances:
            out["instances"] = {
                "id": list(self.ids), "category": list(self.categories),
                **{k: [None if math.isnan(v) else v for v in self.values[k]] for k in self.metrics},
            }
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvalReport:
        """Inverse of :meth:`to_dict` (needs the ``instances`` part)."""
        if d.get("format") != EVAL_FORMAT or "instances" not in d:
            raise InvalidInputError("EvalReport.from_dict: expected a to_dict(instances=True) dict of format "
                                    f"{EVAL_FORMAT!r}")
        inst = d["instances"]
        values = {k: [math.nan if v is None else float(v) for v in vs] for k, vs in inst.items()
                  if k not in ("id", "category")}
        return cls(d.get("name"), list(inst["id"]), list(inst["category"]), values, dict(d.get("config") or {}))

    def to_json(self, path: Any, instances: bool = True) -> None:
        """Write :meth:`to_dict` to ``path`` (indented JSON)."""
        from pathlib import Path

        Path(path).write_text(json.dumps(self.to_dict(instances), indent=2, sort_keys=False) + "\n")

    def __repr__(self) -> str:
        m = self.mean()
        shown = ", ".join(f"{k}={v:.4g}" for k, v in m.items() if v is not None)
        return f"EvalReport({self.name!r}, {len(self)} instances, {len(self.category_names())} categories: {shown})"


# ----------------------------------------------------------------------------- evaluation
def _one_view(dataset: Any, view: int) -> tuple[Any, int]:
    """A dataset serving view ``view`` and the index to pass to single_view.

    Datasets with a ``view`` attribute (:class:`geomgen.data.base.MeshSampleDataset`)
    are shallow-copied with ``view=view`` so every sample gives exactly that view;
    others must serve all views (then ``single_view`` picks it)."""
    current = getattr(dataset, "view", None)
    num_views = getattr(getattr(dataset, "config", None), "num_views", None)
    if isinstance(num_views, int) and not 0 <= view < num_views:
        raise InvalidInputError(f"evaluate: argument 'view' must be in [0, {num_views}) for this dataset, got {view}")
    if current is None or current == "all":
        return dataset, view
    if current == view:
        return dataset, 0
    ds = copy.copy(dataset)
    ds.view = view
    return ds, 0


def _object_frame(points: torch.Tensor, normals: torch.Tensor | None, model: Any,
                  world_from_camera: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(P, 3)`` points (and normals) of one item in the model's frame -> object frame."""
    from geomgen.models.base import camera_to_world

    if model.frame != "camera":
        return points, normals
    T = world_from_camera[None].to(points)
    p = camera_to_world(points[None], T)[0]
    n = None if normals is None else camera_to_world(normals[None], T, normals=True)[0]
    return p, n


def _sample_mesh(verts: torch.Tensor, faces: torch.Tensor, num: int, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(num, 3)`` area-weighted samples with normals of one mesh; a mesh without
    faces gives its vertices (or the origin) and zero normals (bad, but defined)."""
    from geomgen.ops import sample_points_from_meshes
    from geomgen.structures import Meshes

    if faces.shape[0] > 0:
        p, n = sample_points_from_meshes(Meshes([verts], [faces]), num, return_normals=True, generator=generator)
        return p[0], n[0]
    p = verts if verts.shape[0] > 0 else verts.new_zeros(1, 3)
    return p, torch.zeros_like(p)


def _voxel_iou(meshes: list[tuple[torch.Tensor, torch.Tensor]], gt: Any) -> list[float]:
    """IoU of each object-frame mesh (solid voxelization over [-0.5, 0.5]^3) with the GT Voxels."""
    from geomgen.metrics.iou import voxel_iou
    from geomgen.ops import voxelize
    from geomgen.structures import Meshes

    gt_grids = gt.grids if hasattr(gt, "grids") else torch.as_tensor(gt)
    res = tuple(int(r) for r in gt_grids.shape[1:])
    out = [0.0] * len(meshes)
    keep = [i for i, (v, f) in enumerate(meshes) if f.shape[0] > 0 and v.shape[0] > 0]
    if not keep:
        return out
    batch = Meshes([meshes[i][0].double().cpu() for i in keep], [meshes[i][1].cpu() for i in keep])
    bounds = torch.tensor([[-0.5, 0.5]] * 3, dtype=torch.float64)
    pred = voxelize(batch, resolution=res, mode="solid", bounds=bounds).grids
    ious = voxel_iou(pred.float(), gt_grids[keep].float().cpu())
    for j, i in enumerate(keep):
        out[i] = float(ious[j])
    return out


def evaluate(
    model: Any,
    dataset: Any,
    *,
    view: int = 0,
    num_samples: int = 10000,
    batch_size: int = 16,
    thresholds: Sequence[float] = (0.1, 0.3, 0.5),
    seed: int = 0,
    progress: bool = True,
    device: Any = None,
    name: str | None = None,
) -> EvalReport:
    """Evaluate a :class:`~geomgen.models.ShapePredictor` on every sample of ``dataset``.

    See the module docstring for the protocol.

    Args:
        model: the predictor (put in eval mode for the run, then restored).
        dataset: sample dicts of :mod:`geomgen.data` (e.g.
            ``geomgen.get_dataset("shapes", split="test")``), with ``images``,
            ``K``, ``world_from_camera``, GT ``verts``/``faces`` and (for IoU)
            ``voxels``.
        view: the stored view given to the model.
        num_samples: points per predicted and per GT cloud (10000 in Mesh R-CNN).
        batch_size: images per forward pass.
        thresholds: F1 thresholds in gt-10 units.
        seed: seeds the GT sampling and the model's own sampling (the global
            RNG is forked, so the caller's RNG state is untouched): the report
            is deterministic for a given seed (and batch size, when the model
            samples its points itself).
        progress: tqdm progress bar.
        device: where the model runs; default the model's device.
        name: the model's name in the report (default ``model.config``'s
            ``"name"`` if any, else the class name).

    Returns:
        :class:`EvalReport`.

    Raises:
        InvalidInputError: bad arguments or an empty dataset.
    """
    from geomgen.data import collate_samples
    from geomgen.metrics import compare_point_clouds
    from geomgen.models.base import ShapePredictor, camera_to_world, single_view

    fn = "evaluate"
    if not isinstance(model, ShapePredictor):
        raise InvalidInputError(f"{fn}: argument 'model' must be a geomgen.models.ShapePredictor, got "
                                f"{type(model).__name__}")
    num_samples = V.check_int(num_samples, "num_samples", min_value=1, fn=fn)
    batch_size = V.check_int(batch_size, "batch_size", min_value=1, fn=fn)
    seed = V.check_int(seed, "seed", min_value=0, fn=fn)
    view = V.check_int(view, "view", fn=fn)
    ts = tuple(float(t) for t in thresholds)
    try:
        n_items = len(dataset)
    except TypeError:
        raise InvalidInputError(f"{fn}: argument 'dataset' must be a sized dataset, got "
                                f"{type(dataset).__name__}") from None
    if n_items == 0:
        raise InvalidInputError(f"{fn}: argument 'dataset' is empty")
    ds, sv = _one_view(dataset, view)
    if device is not None:
        model = model.to(device)
    dev = model.device
    was_training = model.training
    model.eval()
    # the default predict_points samples predict_meshes: do it here, once, with our generator,
    # and reuse the meshes for IoU
    own_sampling = type(model).predict_points is ShapePredictor.predict_points
    want_iou = bool(model.has_volume)
    keys = ["Chamfer-L2", "AbsNormalConsistency"] + [f"F1@{t!r}" for t in ts] + (["IoU"] if want_iou else [])
    values: dict[str, list[float]] = {k: [] for k in keys}
    ids: list[str] = []
    cats: list[str] = []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_items, desc=f"eval {name or type(model).__name__}", unit="img", leave=False)
    start = time.perf_counter()
    fork_devices = [dev] if dev.type == "cuda" else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=fork_devices):
            for b0 in range(0, n_items, batch_size):
                idx = list(range(b0, min(b0 + batch_size, n_items)))
                batch = single_view(collate_samples([ds[i] for i in idx]), sv)
                B = len(idx)
                images = batch["images"].to(dev)
                K = batch["K"].to(dev) if "K" in batch else None
                wfc = batch["world_from_camera"]
                torch.manual_seed(seed * 1_000_003 + b0)
                gens = [torch.Generator().manual_seed(seed * 1_000_003 + i) for i in idx]
                meshes: list[tuple[torch.Tensor, torch.Tensor]] | None = None
                if own_sampling or want_iou:
                    m = model.predict_meshes(images, K)
                    meshes = []
                    for b, (v, f) in enumerate(zip(m.verts_list(), m.faces_list())):
                        v = v.detach().float().cpu()
                        if model.frame == "camera" and v.shape[0]:
                            v = camera_to_world(v[None], wfc[b:b + 1].to(v))[0]
                        meshes.append((v, f.detach().cpu()))
                pred_pts: list[torch.Tensor] = []
                pred_nrm: list[torch.Tensor | None] = []
                if own_sampling:
                    assert meshes is not None
                    for (v, f), g in zip(meshes, gens):
                        p, n = _sample_mesh(v, f, num_samples, g)
                        pred_pts.append(p)
                        pred_nrm.append(n)
                else:
                    pc = model.predict_points(images, K, num_points=num_samples)
                    nl = pc.normals_list()
                    for b, p in enumerate(pc.points_list()):
                        p = p.detach().float().cpu()
                        n = None if nl is None else nl[b].detach().float().cpu()
                        if p.shape[0] == 0:  # nothing predicted: one point at the origin (defined, bad)
                            p, n = p.new_zeros(1, 3), (None if n is None else p.new_zeros(1, 3))
                        p, n = _object_frame(p, n, model, wfc[b])
                        pred_pts.append(p)
                        pred_nrm.append(n)
                gt_pts, gt_nrm = [], []
                for (v, f), g in zip(zip(batch["mesh"].verts_list(), batch["mesh"].faces_list()), gens):
                    p, n = _sample_mesh(v.float().cpu(), f.cpu(), num_samples, g)
                    gt_pts.append(p)
                    gt_nrm.append(n)
                has_normals = all(n is not None for n in pred_nrm)
                for b in range(B):
                    v = batch["mesh"].verts_list()[b].float()
                    scale = 10.0 / float((v.max(0).values - v.min(0).values).max())
                    res = compare_point_clouds(pred_pts[b][None] * scale,
                                               pred_nrm[b][None] if has_normals else None,
                                               gt_pts[b][None] * scale,
                                               gt_nrm[b][None] if has_normals else None,
                                               thresholds=ts, reduce=True)
                    values["Chamfer-L2"].append(float(res["Chamfer-L2"]))
                    values["AbsNormalConsistency"].append(float(res.get("AbsNormalConsistency", math.nan)))
                    for t in ts:
                        values[f"F1@{t!r}"].append(float(res[f"F1@{t!r}"]))
                if want_iou:
                    assert meshes is not None
                    values["IoU"].extend(_voxel_iou(meshes, batch["voxels"]))
                ids.extend(str(i) for i in batch.get("id", idx))
                cats.extend(str(c) for c in batch.get("category", ["all"] * B))
                if bar is not None:
                    bar.update(B)
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    config = {
        "view": view, "num_samples": num_samples, "thresholds": list(ts), "seed": seed,
        "batch_size": batch_size, "frame": model.frame, "output": model.output,
        "dataset": _describe(dataset), "wall_s": round(time.perf_counter() - start, 3),
    }
    return EvalReport(name or type(model).__name__, ids, cats, values, config)


def _describe(dataset: Any) -> dict[str, Any]:
    """A short JSON-able description of a dataset (name, split, size)."""
    out: dict[str, Any] = {"name": getattr(dataset, "name", type(dataset).__name__)}
    for attr in ("split",):
        if hasattr(dataset, attr):
            out[attr] = getattr(dataset, attr)
    out["size"] = len(dataset)
    return out


# ----------------------------------------------------------------------------- tables
def _fmt(value: float | None, spec: str) -> str:
    return _UNDEFINED if value is None or (isinstance(value, float) and math.isnan(value)) else spec.format(value)


def format_table(reports: Mapping[str, EvalReport] | Sequence[EvalReport], per_category: bool = True,
                 markdown: bool = False) -> str:
    """The Mesh R-CNN style results table of several models.

    Rows: with ``per_category`` one block per category (a row per model),
    then the block ``mean`` (mean over categories) and ``instances`` (mean
    over instances); without, only those two blocks.  Columns: Chamfer-L2 ↓,
    AbsNormal ↑, F1@0.1/0.3/0.5 ↑, IoU ↑ (``—`` where undefined).  In
    markdown the best value of each block and column is bold.

    Args:
        reports: model name -> report (or a list of reports, named by ``.name``).
        per_category: include the per-category blocks.
        markdown: a GitHub markdown table instead of aligned plain text.
    """
    if not isinstance(reports, Mapping):
        reports = {(r.name or f"model{i}"): r for i, r in enumerate(reports)}
    if not reports:
        raise InvalidInputError("format_table: argument 'reports' is empty")
    columns = list(METRIC_COLUMNS)
    blocks: list[tuple[str, list[tuple[str, dict[str, float | None]]]]] = []
    if per_category:
        cats: list[str] = []
        for r in reports.values():
            cats.extend(c for c in r.category_names() if c not in cats)
        per = {name: r.category_means() for name, r in reports.items()}
        for c in cats:
            blocks.append((c, [(name, per[name].get(c, {})) for name in reports]))
    blocks.append(("mean", [(name, r.mean()) for name, r in reports.items()]))
    blocks.append(("instances", [(name, r.instance_mean()) for name, r in reports.items()]))
    header = ["Category", "Model"] + [h for _, h, _, _ in columns]
    rows: list[list[str]] = []
    for block, entries in blocks:
        best: dict[str, float] = {}
        for key, _, higher, _ in columns:
            vals = [e[1].get(key) for e in entries if e[1].get(key) is not None]
            if len(vals) > 1:
                best[key] = max(vals) if higher else min(vals)
        for j, (name, means) in enumerate(entries):
            row = [block if (j == 0 or markdown) else "", name]
            for key, _, _, spec in columns:
                cell = _fmt(means.get(key), spec)
                if markdown and key in best and means.get(key) is not None and \
                        spec.format(means[key]) == spec.format(best[key]):
                    cell = f"**{cell}**"
                row.append(cell)
            rows.append(row)
    if markdown:
        lines = ["| " + " | ".join(header) + " |",
                 "|" + "|".join([":---", ":---"] + ["---:"] * len(columns)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(header[c]), *(len(r[c]) for r in rows)) for c in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(cells[c].ljust(widths[c]) if c < 2 else cells[c].rjust(widths[c])
                         for c in range(len(cells))).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    n_models = len(reports)
    for i, r in enumerate(rows):
        if i and i % n_models == 0 and n_models > 1:
            out.append("")
        out.append(line(r))
    return "\n".join(out)
