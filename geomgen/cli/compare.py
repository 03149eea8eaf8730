"""``geomgen compare PRED GT [--metric NAME]... [--samples N] [--scale gt-10|none]``: two shapes
compared with the installed metrics (point-cloud metrics on surface samples, mesh
metrics on the meshes), by default at Mesh R-CNN's scale (GT box's longest edge 10)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from geomgen.cli._args import load_shape
from geomgen.errors import InvalidInputError

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen compare``."""
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


def run(args: argparse.Namespace) -> int:
    """Print (or JSON) every metric's value; returns 0."""
    import torch

    import geomgen

    if args.samples < 1:
        raise InvalidInputError(f"--samples: must be a positive integer, got {args.samples}")
    pred_kind, pred_obj = load_shape(args.pred)
    gt_kind, gt_obj = load_shape(args.gt)
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

