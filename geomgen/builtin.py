"""geomgen's own plugin: core metrics, datasets, the mean-shape baseline and the ``info``, ``compare``,
``convert``, ``data``, ``train``, ``eval``, ``sample``, ``predict``, ``view`` and ``render`` commands.

It registers through exactly the hooks a third-party plugin uses (see
:mod:`geomgen.hookspecs`); heavy modules are imported inside the functions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from geomgen.components import CommandSpec, DatasetSpec, MetricSpec, RepresentationSpec
from geomgen.errors import FileFormatError, InvalidInputError
from geomgen.hookspecs import hookimpl

POINTCLOUD_SUFFIXES = {".xyz", ".pwn", ".npz"}


# ----------------------------------------------------------------------------- metrics
def chamfer_l2(pred: Any, gt: Any, **options: Any) -> Any:
    """Chamfer-L2 per batch element, (N,): mean squared nearest-neighbour distance
    pred→gt plus gt→pred (squared distances, both directions summed)."""
    from geomgen.losses import chamfer_distance

    return chamfer_distance(pred, gt, batch_reduction=None, **options)[0]


def chamfer_l1(pred: Any, gt: Any, **options: Any) -> Any:
    """Chamfer with the L1 norm per batch element, (N,): mean of sum|diff| to the
    nearest neighbour, both directions summed."""
    from geomgen.losses import chamfer_distance

    return chamfer_distance(pred, gt, batch_reduction=None, norm=1, **options)[0]


def f1(pred: Any, gt: Any, thresholds: tuple[float, ...] = (0.1, 0.3, 0.5)) -> Any:
    """Precision, recall and F1 at each threshold, in percent, (N,) each
    (unsquared distances, strict <: Mesh R-CNN's protocol)."""
    from geomgen.metrics import f1_score

    return f1_score(pred, gt, thresholds=thresholds)


def voxel_iou_metric(pred: Any, gt: Any, **options: Any) -> Any:
    """IoU per grid pair, (N,): fraction in [0, 1], inside = value >= 0.5 (sdf <= 0),
    two empty grids give 1.0."""
    from geomgen.metrics.iou import voxel_iou as _voxel_iou

    return _voxel_iou(pred, gt, **options)

def normal_consistency_metric(pred: Any, gt: Any, num_samples: int = 10000, abs: bool = False,  # noqa: A002
                       generator: Any = None) -> Any:
    """Normal consistency per mesh pair, (N,): 0.5 * (mean cos pred->GT NN + mean cos
    GT->pred NN) of face normals at ``num_samples`` area-weighted samples per mesh
    (seed 0 unless a generator is given: the CLI passes none to mesh metrics)."""
    import torch

    from geomgen.metrics.normal_consistency import normal_consistency as _nc
    from geomgen.ops import sample_points_from_meshes

    if generator is None:
        generator = torch.Generator().manual_seed(0)
    pp, pn = sample_points_from_meshes(pred, num_samples, return_normals=True, generator=generator)
    gp, gn = sample_points_from_meshes(gt, num_samples, return_normals=True, generator=generator)
    dtype = torch.promote_types(pp.dtype, gp.dtype)
    return _nc(pp.to(dtype), pn.to(dtype), gp.to(dtype), gn.to(dtype), abs=abs)

def compare_meshes_metric(pred: Any, gt: Any, **options: Any) -> Any:
    """Mesh R-CNN's protocol per mesh pair: dict of (N,) tensors (Chamfer-L2,
    NormalConsistency, AbsNormalConsistency, Precision/Recall/F1@0.1..0.5).
    Defaults here: scale=None (the meshes as given; the CLI applies --scale itself),
    reduce=False, seed 0 unless a generator is given."""
    import torch

    from geomgen.metrics.compare_meshes import compare_meshes as _cm

    options.setdefault("scale", None)
    options.setdefault("reduce", False)
    if options.get("generator") is None:
        options["generator"] = torch.Generator().manual_seed(0)
    return _cm(pred, gt, **options)


@hookimpl
def geomgen_register_metrics(register: Any) -> None:
    register(MetricSpec(name="chamfer-l2", fn=chamfer_l2, inputs="pointclouds", higher_is_better=False,
                        description="squared NN distance, mean per direction, both directions summed"))
    register(MetricSpec(name="chamfer-l1", fn=chamfer_l1, inputs="pointclouds", higher_is_better=False,
                        description="L1 NN distance, mean per direction, both directions summed"))
    register(MetricSpec(name="f1", fn=f1, inputs="pointclouds", higher_is_better=True,
                        description="precision/recall/F1 at thresholds 0.1, 0.3, 0.5 (percent, unsquared, <)"))

    register(MetricSpec(name="voxel-iou", fn=voxel_iou_metric, inputs="voxels", higher_is_better=True,
                        description="voxel IoU, fraction in [0, 1], inside = value >= 0.5 (sdf <= 0), "
                                    "two empty grids give 1"))
    register(MetricSpec(name="normal-consistency", fn=normal_consistency_metric, inputs="meshes", higher_is_better=True,
                        description="0.5*(mean cos pred->GT NN + mean cos GT->pred NN) of face normals "
                                    "on 10k area-weighted samples (abs=True: |cos|)"))
    register(MetricSpec(name="compare-meshes", fn=compare_meshes_metric, inputs="meshes", higher_is_better=True,
                        description="Mesh R-CNN protocol: Chamfer-L2 (lower is better), (Abs)NormalConsistency, "
                                    "Precision/Recall/F1@t in percent; meshes as given (scale=None)"))


# ----------------------------------------------------------------------------- commands
def _load_any(path: str) -> tuple[str, Any]:
    """Load ``path`` as a mesh, or as a point cloud when it has no faces."""
    from geomgen.io import load_mesh, load_pointcloud

    if Path(path).suffix.lower() in POINTCLOUD_SUFFIXES:
        return "pointcloud", load_pointcloud(path)
    try:
        return "mesh", load_mesh(path)
    except FileFormatError as exc:
        if "no faces" not in str(exc):
            raise
        return "pointcloud", load_pointcloud(path)


def _configure_info(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="mesh or point cloud files")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return "  ".join(f"{k}={_format_value(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(v) for v in value) + "]"
    return str(value)


def _run_info(args: argparse.Namespace) -> int:
    from geomgen.summary import mesh_summary, pointcloud_summary

    reports = []
    for path in args.paths:
        kind, obj = _load_any(path)
        if kind == "mesh":
            report = mesh_summary(obj.verts_list()[0], obj.faces_list()[0])
            report["has_vertex_colors"] = obj.verts_colors_list() is not None
        else:
            normals = obj.normals_list()
            report = pointcloud_summary(obj.points_list()[0], normals[0] if normals else None)
        reports.append({"path": path, "type": kind, **report})
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for report in reports:
            print(f"{report['path']}  ({report['type']})")
            for key, value in report.items():
                if key not in ("path", "type"):
                    print(f"  {key:<22} {_format_value(value)}")
    return 0


def _configure_compare(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pred", metavar="PRED", help="predicted mesh or point cloud")
    parser.add_argument("gt", metavar="GT", help="ground-truth mesh or point cloud")
    parser.add_argument("--metric", action="append", metavar="NAME",
                        help="metric to compute (repeatable); 'all' runs every installed metric that "
                             "fits the inputs, including mesh metrics (default: every point-cloud metric)")
    parser.add_argument("--samples", type=int, default=10000,
                        help="points sampled from each mesh surface for the point-cloud metrics; mesh "
                             "metrics sample as their own protocol says (default: %(default)s)")
    parser.add_argument("--scale", choices=["gt-10", "none"], default="gt-10",
                        help="'gt-10' scales both so the GT bounding box's longest edge is 10, "
                             "as in Mesh R-CNN's evaluation (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the surface sampling")
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON")


def _points(kind: str, obj: Any, samples: int, generator: Any) -> Any:
    if kind == "pointcloud":
        return obj.points_list()[0][None]
    from geomgen.ops import sample_points_from_meshes

    return sample_points_from_meshes(obj, samples, generator=generator)


def _run_compare(args: argparse.Namespace) -> int:
    import torch

    import geomgen

    if args.samples < 1:
        raise InvalidInputError(f"--samples: must be a positive integer, got {args.samples}")
    pred_kind, pred_obj = _load_any(args.pred)
    gt_kind, gt_obj = _load_any(args.gt)
    both_meshes = pred_kind == gt_kind == "mesh"
    usable = ("pointclouds", "meshes") if both_meshes else ("pointclouds",)
    names = args.metric or ["pointclouds"]
    if names in (["pointclouds"], ["all"]):  # every installed metric of those inputs
        wanted = usable if names == ["all"] else ("pointclouds",)
        names = [m for m in geomgen.list_metrics() if geomgen.get_metric_spec(m).inputs in wanted]
    specs = {name: geomgen.get_metric_spec(name) for name in names}
    for name, spec in specs.items():
        if spec.inputs not in usable:
            raise InvalidInputError(f"--metric {name}: takes {spec.inputs}; compare gives it "
                                    + ("meshes or point samples" if both_meshes else "point samples"))
    generator = torch.Generator().manual_seed(args.seed)
    pred = _points(pred_kind, pred_obj, args.samples, generator)
    gt = _points(gt_kind, gt_obj, args.samples, generator)
    if args.scale == "gt-10":
        box = gt_obj.verts_list()[0] if gt_kind == "mesh" else gt[0]  # the GT mesh's box, as Mesh R-CNN
        extent = float((box.max(0).values - box.min(0).values).max()) if box.numel() else 0.0
        if extent <= 0:
            raise InvalidInputError(f"{args.gt}: ground truth has a zero-size bounding box; use --scale none")
        factor = 10.0 / extent
        pred, gt = pred * factor, gt * factor
        if both_meshes:
            pred_obj, gt_obj = pred_obj.scale_verts(factor), gt_obj.scale_verts(factor)
    results: dict[str, float] = {}
    for name, spec in specs.items():
        value = spec.fn(pred_obj, gt_obj) if spec.inputs == "meshes" else spec.fn(pred, gt)
        if isinstance(value, dict):
            for key, item in value.items():  # keys two metrics share are qualified by the metric
                results[f"{name}:{key}" if key in results else key] = float(torch.as_tensor(item).reshape(-1)[0])
        else:
            results[name] = float(torch.as_tensor(value).reshape(-1)[0])
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(f"pred: {args.pred}\ngt:   {args.gt}\nscale: {args.scale}, samples: {args.samples}")
        for key, value in results.items():
            print(f"  {key:<16} {value:.6g}")
    return 0


def _configure_convert(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", metavar="SRC", help="input mesh or point cloud")
    parser.add_argument("dst", metavar="DST", help="output file; the format follows the extension")


def _run_convert(args: argparse.Namespace) -> int:
    from geomgen.io import save_mesh, save_pointcloud

    kind, obj = _load_any(args.src)
    if kind == "mesh" and Path(args.dst).suffix.lower() in POINTCLOUD_SUFFIXES:
        raise InvalidInputError(f"{args.dst}: a point-cloud format cannot hold the faces of {args.src}")
    (save_mesh if kind == "mesh" else save_pointcloud)(args.dst, obj)
    print(f"wrote {args.dst}")
    return 0


@hookimpl
def geomgen_register_commands(register: Any) -> None:
    register(CommandSpec(name="info", help="print statistics of mesh or point-cloud files",
                         configure=_configure_info, run=_run_info))
    register(CommandSpec(name="compare", help="compare two shapes with the installed metrics",
                         configure=_configure_compare, run=_run_compare))
    register(CommandSpec(name="convert", help="convert a mesh or point cloud between file formats",
                         configure=_configure_convert, run=_run_convert))
    register(CommandSpec(name="data", help="list, inspect, build and preview datasets (contact sheet PNG)",
                         configure=_configure_data, run=_run_data))
    register(CommandSpec(name="train", help="train a representation (voxel, mesh, ...) or a generator (vae, gan, "
                                            "...) on a dataset",
                         configure=_configure_train, run=_run_train))
    register(CommandSpec(name="eval", help="evaluate single-view models (Mesh R-CNN protocol, beside the mean-shape "
                                           "baseline) or generators (MMD, COV, 1-NNA, NLL)",
                         configure=_configure_eval, run=_run_eval))
    register(CommandSpec(name="sample", help="draw shapes from a (pretrained) generator: meshes and a PNG grid",
                         configure=_configure_sample, run=_run_sample))
    register(CommandSpec(name="predict", help="predict 3D shapes from images with a (pretrained) model",
                         configure=_configure_predict, run=_run_predict))
    register(CommandSpec(name="view", help="show meshes, point clouds or voxels in an interactive Open3D window",
                         configure=_configure_view, run=_run_view))
    register(CommandSpec(name="render", help="render meshes, point clouds or voxels offscreen to a PNG",
                         configure=_configure_render, run=_run_render))


# ----------------------------------------------------------------------------- datasets
def _accepted_keywords(cls: type) -> set[str] | None:
    """Keyword names ``cls(...)`` accepts, following ``**kwargs`` up the base
    classes' ``__init__``; None when some ``**kwargs`` cannot be resolved."""
    import inspect

    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names |= {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names - {"self"}
    return None


def _construct(name: str, cls: type, root: Any, split: Any, config: dict[str, Any]) -> Any:
    """``cls(root, split, **config)``, with unknown options reported as InvalidInputError."""
    import difflib

    accepted = _accepted_keywords(cls)
    if accepted is not None:
        unknown = sorted(set(config) - accepted)
        if unknown:
            hints = [m for u in unknown for m in difflib.get_close_matches(u, sorted(accepted), n=1)]
            hint = f" (did you mean {', '.join(repr(h) for h in hints)}?)" if hints else ""
            raise InvalidInputError(f"dataset {name!r}: unknown option(s) {unknown}{hint}; accepted: "
                                    f"{sorted(accepted - {'root', 'split'})}")
    return cls(root, split, **config)


def _build_shapes(root: Any = None, split: str = "train", **config: Any) -> Any:
    """Procedural shapes (:class:`geomgen.data.shapes.ShapesDataset`); ``root`` = cache root."""
    from geomgen.data.shapes import ShapesDataset

    return _construct("shapes", ShapesDataset, root, split, config)


def _build_mesh_folder(root: Any = None, split: str = "all", **config: Any) -> Any:
    """A folder of mesh files (:class:`geomgen.data.mesh_folder.MeshFolderDataset`)."""
    from geomgen.data.mesh_folder import MeshFolderDataset

    return _construct("mesh-folder", MeshFolderDataset, root, split, config)


def _build_shapenet(root: Any = None, split: str = "train", **config: Any) -> Any:
    """ShapeNetCore v1/v2 (:class:`geomgen.data.shapenet.ShapeNetCore`)."""
    from geomgen.data.shapenet import ShapeNetCore

    return _construct("shapenet", ShapeNetCore, root, split, config)


def _build_r2n2(root: Any = None, split: str = "train", **config: Any) -> Any:
    """3D-R2N2 renderings + voxels (:class:`geomgen.data.r2n2.R2N2`)."""
    from geomgen.data.r2n2 import R2N2

    return _construct("r2n2", R2N2, root, split, config)


# the class each builder constructs, for `geomgen data --set` to route options (see geomgen.data.preview)
_build_shapes.dataset_class = "geomgen.data.shapes:ShapesDataset"  # type: ignore[attr-defined]
_build_mesh_folder.dataset_class = "geomgen.data.mesh_folder:MeshFolderDataset"  # type: ignore[attr-defined]
_build_shapenet.dataset_class = "geomgen.data.shapenet:ShapeNetCore"  # type: ignore[attr-defined]
_build_r2n2.dataset_class = "geomgen.data.r2n2:R2N2"  # type: ignore[attr-defined]


@hookimpl
def geomgen_register_datasets(register: Any) -> None:
    register(DatasetSpec(name="shapes", build=_build_shapes,
                         description="procedural shapes, 10 categories: renders, depth, masks, voxels, "
                                     "points, occupancy (generated, cached)"))
    register(DatasetSpec(name="mesh-folder", build=_build_mesh_folder,
                         description="any folder of OBJ/OFF/PLY/STL meshes, sampled like 'shapes'"))
    register(DatasetSpec(name="shapenet", build=_build_shapenet,
                         description="ShapeNetCore v1/v2 meshes, sampled like 'shapes' (root = ShapeNetCore folder)"))
    register(DatasetSpec(name="r2n2", build=_build_r2n2,
                         description="3D-R2N2 renderings and 32^3 voxels of ShapeNet (root = ShapeNetRendering)"))


# ----------------------------------------------------------------------------- data command
def _configure_data(parser: argparse.ArgumentParser) -> None:
    from geomgen.data.preview import configure_cli

    configure_cli(parser)


def _run_data(args: argparse.Namespace) -> int:
    from geomgen.data.preview import run_cli

    return run_cli(args)


# ----------------------------------------------------------------------------- train / eval / predict commands
def _configure_train(parser: argparse.ArgumentParser) -> None:
    from geomgen.models.commands import configure_train

    configure_train(parser)


def _run_train(args: argparse.Namespace) -> int:
    from geomgen.models.commands import run_train

    return run_train(args)


def _configure_eval(parser: argparse.ArgumentParser) -> None:
    from geomgen.models.commands import configure_eval

    configure_eval(parser)


def _run_eval(args: argparse.Namespace) -> int:
    from geomgen.models.commands import run_eval

    return run_eval(args)


def _configure_sample(parser: argparse.ArgumentParser) -> None:
    from geomgen.generative.commands import configure_sample

    configure_sample(parser)


def _run_sample(args: argparse.Namespace) -> int:
    from geomgen.generative.commands import run_sample

    return run_sample(args)


def _configure_predict(parser: argparse.ArgumentParser) -> None:
    from geomgen.models.commands import configure_predict

    configure_predict(parser)


def _run_predict(args: argparse.Namespace) -> int:
    from geomgen.models.commands import run_predict

    return run_predict(args)


# ----------------------------------------------------------------------------- view / render commands
def _configure_view(parser: argparse.ArgumentParser) -> None:
    from geomgen.viewer.commands import configure_view

    configure_view(parser)


def _run_view(args: argparse.Namespace) -> int:
    from geomgen.viewer.commands import run_view

    return run_view(args)


def _configure_render(parser: argparse.ArgumentParser) -> None:
    from geomgen.viewer.commands import configure_render

    configure_render(parser)


def _run_render(args: argparse.Namespace) -> int:
    from geomgen.viewer.commands import run_render

    return run_render(args)


# ----------------------------------------------------------------------------- representations
def _build_mean_shape(**config: Any) -> Any:
    """The mean-shape baseline (:class:`geomgen.models.baseline.MeanShape`, keyword arguments:
    :class:`geomgen.config.MeanShapeConfig` keys); fit it before use."""
    from geomgen.models.baseline import MeanShape

    return MeanShape(**config)


@hookimpl
def geomgen_register_representations(register: Any) -> None:
    from geomgen.config import MeanShapeConfig

    register(RepresentationSpec(name="mean-shape", build=_build_mean_shape, output="mesh", tags=("baseline",),
                                description="baseline: the thresholded mean training occupancy, the same mesh "
                                            "for every image (ignores the image; fit() it first)",
                                config=MeanShapeConfig))
