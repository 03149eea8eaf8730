"""``geomgen info PATH... [--json]``: statistics of mesh or point-cloud files
(:func:`geomgen.summary.mesh_summary` / :func:`~geomgen.summary.pointcloud_summary`)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from geomgen.cli._args import load_shape

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen info``."""
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


def run(args: argparse.Namespace) -> int:
    """Print one report per file (or a JSON list); returns 0."""
    from geomgen.summary import mesh_summary, pointcloud_summary

    reports = []
    for path in args.paths:
        kind, obj = load_shape(path)
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
