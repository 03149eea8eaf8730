"""``geomgen view PATH... [--side-by-side | --batch] [--point-size X] [--wireframe] [--normals]
[--screenshot PNG]``: an interactive Open3D window (keys: see :data:`geomgen.viewer.window.KEY_HELP`).

Several paths are shown side by side (default) or one after the other with
``--batch`` (N / P page through).  ``--screenshot PNG`` saves the first view to
PNG and closes the window.

``view`` and ``render`` (:mod:`geomgen.cli.render`) also show things that are
not files (after the paths, in this order), through :func:`add_sources` /
:func:`load_sources`:

* ``--dataset NAME [--split test] [--index I]... [--set KEY=VALUE]...`` - dataset
  samples: the GT meshes beside their surface points (the indices are the batch
  that N / P page through); ``--set`` is routed as for ``geomgen data``
  (:func:`geomgen.cli._args.route_dataset_options`);
* ``--predict IMAGE... [--repr NAME]... [--weights model.pt]`` - single-view
  predictions of the images (one object per representation, side by side; the
  images are the batch that N / P page through); camera-frame predictions
  (OpenCV axes) are turned to +Y up, the camera on +Z
  (:func:`geomgen.render.opencv_to_y_up`);
* ``--dataset NAME --repr NAME...`` (no ``--predict``) - predictions from each
  sample's first view **beside its ground truth**, mapped to the object frame
  with the view's pose.

Errors (missing or unreadable files, no display, Open3D missing) are
:mod:`geomgen.errors` errors: the CLI prints them and exits with status 1;
usage errors exit with 2 (argparse).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from geomgen.cli._args import add_set_argument, parse_sets, route_dataset_options
from geomgen.errors import InvalidInputError, MeshFileNotFoundError

__all__ = ["configure", "run", "add_sources", "load_sources", "check_paths"]


def check_paths(paths: list[str]) -> None:
    """Raise :class:`~geomgen.errors.MeshFileNotFoundError` naming the first of ``paths`` that does not exist."""
    for p in paths:
        if not Path(p).expanduser().exists():
            raise MeshFileNotFoundError(f"{p}: no such file")


def add_sources(parser: argparse.ArgumentParser) -> None:
    """The non-file sources shared by ``view`` and ``render``: ``--dataset``, ``--split``,
    ``--index``, ``--set``, ``--predict``, ``--repr``, ``--weights``."""
    g = parser.add_argument_group("datasets and predictions")
    g.add_argument("--dataset", metavar="NAME", default=None, help="show samples of a registered dataset")
    g.add_argument("--split", default="test", help="dataset split (default: %(default)s)")
    g.add_argument("--index", type=int, action="append", default=None, metavar="I",
                   help="sample index, repeatable (default: 0)")
    add_set_argument(g, dest="sets")
    g.add_argument("--predict", nargs="+", default=None, metavar="IMAGE",
                   help="images to predict shapes from (pretrained single-view models)")
    g.add_argument("--repr", dest="reprs", action="append", default=None, metavar="NAME",
                   help="representation for --predict, repeatable (default: voxel)")
    g.add_argument("--weights", default=None, metavar="PATH", help="model file for --predict (one --repr)")


def load_sources(args: argparse.Namespace) -> tuple[list[Any], list[str]]:
    """``(objects, titles)`` of the paths, dataset samples and predictions asked for
    (options of :func:`add_sources` and ``args.paths``).

    Raises:
        InvalidInputError: nothing to show, an index out of range, options that need another.
        MeshFileNotFoundError: a missing path or image.
    """
    import geomgen

    check_paths(args.paths)
    objects: list[Any] = list(args.paths)
    titles = [Path(p).name for p in args.paths]
    if args.dataset is not None:
        from geomgen.data import collate_samples

        kwargs = route_dataset_options(args.dataset, parse_sets(args.sets), {"split": args.split})
        ds = geomgen.get_dataset(args.dataset, **kwargs)
        samples = []
        for i in args.index or [0]:
            if not -len(ds) <= i < len(ds):
                raise InvalidInputError(f"--index {i}: {args.dataset} {args.split} has {len(ds)} samples")
            samples.append(ds[i])
        batch = collate_samples(samples)  # the indices are the batch N / P page through
        objects += [batch["mesh"], batch["pointclouds"]]
        titles += [f"{args.dataset} GT mesh", f"{args.dataset} GT points"]
    elif args.index or args.sets:
        raise InvalidInputError("--index / --set need --dataset NAME")
    if args.weights is not None and len(args.reprs or ["voxel"]) != 1:
        raise InvalidInputError("--weights: give exactly one --repr with it")
    if args.predict:
        check_paths(args.predict)
        for r in args.reprs or ["voxel"]:
            objects.append(_prediction(list(args.predict), r, args.weights))
            titles.append(r)
    elif args.dataset is not None and args.reprs:
        from geomgen.models.base import single_view

        batch = single_view(batch, 0)
        for r in args.reprs:
            objects.append(_prediction(batch["images"], r, args.weights, batch["K"], batch["world_from_camera"]))
            titles.append(r)
    elif args.reprs or args.weights:
        raise InvalidInputError("--repr / --weights need --predict IMAGE... or --dataset NAME")
    if not objects:
        raise InvalidInputError("nothing to show: give PATH..., --dataset NAME or --predict IMAGE...")
    return objects, titles


def _prediction(images: Any, representation: str, weights: str | None, K: Any = None,
                world_from_camera: Any = None) -> Any:
    """Meshes of a single-view model's predictions of ``images``, in the object frame
    when the ``(N, 4, 4)`` ``world_from_camera`` poses are given, else (camera-frame
    models) with OpenCV's y-down / z-forward axes turned to +Y up."""
    import torch

    from geomgen.models.base import camera_to_world
    from geomgen.models.predict import load_images, resolve_model
    from geomgen.render.cameras import opencv_to_y_up, scale_intrinsics
    from geomgen.structures import Meshes

    model = resolve_model(representation, weights)
    x, sizes = load_images(images, model.image_size)
    x = x.to(model.device)
    if K is not None:
        K = scale_intrinsics(K, sizes, model.image_size, fn="predict")
    with torch.no_grad():
        meshes = model.predict_meshes(x, None if K is None else K.to(model.device))
    if model.frame != "camera":
        return meshes
    verts = []
    for i, v in enumerate(meshes.verts_list()):
        v = v.detach().cpu()
        if world_from_camera is not None:
            v = camera_to_world(v[None], world_from_camera[i:i + 1].to(v))[0]
        else:
            v = opencv_to_y_up(v)
        verts.append(v)
    return Meshes(verts, [f.cpu() for f in meshes.faces_list()])


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen view``."""
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="mesh, point cloud, voxel or depth-map files (OBJ, PLY, OFF, STL, GLB, XYZ, PWN, NPY, BINVOX; "
                             "NPZ with points, a voxel grid, or depth + K as geomgen predict writes)")
    layout = parser.add_mutually_exclusive_group()
    layout.add_argument("--side-by-side", dest="layout", action="store_const", const="side-by-side",
                        help="show the files next to each other, each scaled to the same size (default)")
    layout.add_argument("--batch", dest="layout", action="store_const", const="batch",
                        help="show the files one at a time; N / P (or Right / Left) page through them")
    parser.set_defaults(layout="side-by-side")
    parser.add_argument("--point-size", type=float, default=3.0, metavar="X",
                        help="point size in pixels (default: %(default)s)")
    parser.add_argument("--wireframe", action="store_true", help="start with the mesh wireframe shown (key W)")
    parser.add_argument("--normals", action="store_true", help="start with normals shown (key O)")
    parser.add_argument("--size", type=int, nargs=2, default=(960, 720), metavar=("W", "H"),
                        help="window size (default: 960 720)")
    parser.add_argument("--screenshot", metavar="PNG", default=None,
                        help="save a screenshot of the first view to PNG and close (no interaction)")
    add_sources(parser)


def run(args: argparse.Namespace) -> int:
    """Open the window (or save the screenshot); returns 0 when it closes."""
    from geomgen.viewer.window import check_display, show

    if not args.point_size > 0:
        raise InvalidInputError(f"--point-size: must be > 0, got {args.point_size}")
    check_paths(args.paths)
    check_display()
    objects, names = load_sources(args)
    titles = names if args.layout == "batch" and len(names) == len(objects) and not args.predict \
        and args.dataset is None else None
    viewer = show(*objects, titles=titles, width=args.size[0], height=args.size[1],
                  point_size=args.point_size, wireframe=args.wireframe, show_normals=args.normals,
                  block=False, layout=args.layout, window_name="geomgen view: " + " | ".join(names),
                  verbose=args.screenshot is None)
    assert viewer is not None
    try:
        if args.screenshot is not None:
            viewer.step()
            print(f"wrote {viewer.screenshot(args.screenshot)}")
        else:
            viewer.run()
    finally:
        viewer.close()
    return 0

