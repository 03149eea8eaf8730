"""``geomgen predict IMAGE... [--repr NAME] -o OUT``: 3D shapes from images with a (pretrained) model.

Writes one shape file per image (mesh, point cloud, ``.binvox``, depth ``.npz``;
the extension picks the format) and, with ``--render``, each predicted mesh
rendered next to its input image (:func:`geomgen.render.render_prediction`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from geomgen.errors import InvalidInputError

__all__ = ["configure", "run", "DEFAULT_EXTENSIONS"]

#: File written per prediction when ``-o`` is a folder, by the model's ``output``.
DEFAULT_EXTENSIONS: dict[str, str] = {"mesh": ".obj", "voxels": ".binvox", "pointcloud": ".ply",
                                      "depth": ".npz", "implicit": ".obj"}
_MESH_EXTS = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")
_POINT_EXTS = (".ply", ".xyz", ".pwn", ".npz")


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen predict``."""
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="input image files (PNG, JPEG, ...)")
    parser.add_argument("--repr", dest="representation", default=None, metavar="NAME",
                        help="representation (default: mesh, or the one the --weights file holds)")
    parser.add_argument("-o", "--output", required=True, metavar="OUT",
                        help="output file (its extension picks the format: .obj .ply .off .stl .glb for meshes, "
                             ".binvox for voxels, .npz for depth, .ply/.xyz/.npz points with --points); with "
                             "several images, or a path without extension, a folder (created) with one file per "
                             "image named after it")
    parser.add_argument("--weights", metavar="PATH", help="model file instead of the pretrained weights")
    parser.add_argument("--points", action="store_true",
                        help="write a point cloud (pointcloud and depth models; depth gives camera-frame points)")
    parser.add_argument("--format", dest="fmt", metavar="EXT",
                        help="extension of the files written into a folder (default by representation: "
                             + ", ".join(f"{k} {v}" for k, v in DEFAULT_EXTENSIONS.items()) + ")")
    parser.add_argument("--render", metavar="PNG_OR_DIR",
                        help="also render each predicted mesh (orbit view) next to its input image: a .png "
                             "(one sheet for all images) or a folder (one PNG per image)")
    parser.add_argument("--device", default=None, help="device (default: cpu)")


def _outputs(args: argparse.Namespace, output: str) -> list[Path]:
    images = args.images
    out = Path(args.output)
    ext = args.fmt
    if ext is not None and not ext.startswith("."):
        ext = "." + ext
    folder = len(images) > 1 or out.suffix == "" or out.is_dir()
    if not folder:
        return [out]
    if out.suffix and not out.is_dir():
        raise InvalidInputError(f"-o {args.output}: with {len(images)} images OUT must be a folder (no extension)")
    ext = ext or (".ply" if args.points else DEFAULT_EXTENSIONS.get(output, ".obj"))
    out.mkdir(parents=True, exist_ok=True)
    paths, seen = [], set()
    for i, img in enumerate(images):
        stem = Path(img).stem or f"image{i}"
        name = stem if stem not in seen else f"{stem}-{i}"
        seen.add(name)
        paths.append(out / (name + ext))
    return paths


def _points_of(pred: Any, index: int) -> Any:
    from geomgen.structures import PointClouds

    if hasattr(pred, "to_pointclouds"):
        pred = pred.to_pointclouds()
    if not isinstance(pred, PointClouds):
        raise InvalidInputError("--points: this representation predicts no point cloud; use a mesh format")
    pts = pred.points_list()[index]
    normals = pred.normals_list()
    return PointClouds([pts], normals=None if normals is None else [normals[index]])


def _write(path: Path, model: Any, pred: Any, meshes: Any, index: int, points: bool) -> None:
    from geomgen.io import save_binvox, save_depthmaps, save_mesh, save_pointcloud
    from geomgen.structures import DepthMaps, Meshes, Voxels

    ext = path.suffix.lower()
    if ext == ".binvox":
        if not isinstance(pred, Voxels):
            raise InvalidInputError(f"{path}: .binvox needs a voxel representation; {model.output!r} models "
                                    "write meshes (.obj, .ply, .off)")
        save_binvox(path, pred, index)
    elif ext == ".npz" and isinstance(pred, DepthMaps) and not points:
        save_depthmaps(path, pred, index)
    elif points or ext in (".xyz", ".pwn", ".npz"):
        if ext not in _POINT_EXTS:
            raise InvalidInputError(f"{path}: --points writes .ply, .xyz, .pwn or .npz files")
        save_pointcloud(path, _points_of(pred, index))
    elif ext in _MESH_EXTS:
        v, f = meshes.verts_list()[index], meshes.faces_list()[index]
        save_mesh(path, Meshes([v.detach().cpu()], [f.cpu()]))
    else:
        raise InvalidInputError(f"{path}: unknown output extension {ext!r}; use one of "
                                f"{', '.join(_MESH_EXTS + ('.binvox', '.npz', '.xyz'))}")


def _render(args: argparse.Namespace, name: str, model: Any, images: Any, meshes: Any) -> list[Path]:
    import torch

    from geomgen.io import image_grid, save_image
    from geomgen.render import render_prediction

    size = 128
    pairs = []
    for i in range(len(args.images)):
        render = render_prediction(meshes.verts_list()[i], meshes.faces_list()[i], model.frame, size)
        inp = torch.nn.functional.interpolate(images[i:i + 1].cpu(), size=(size, size), mode="bilinear",
                                              align_corners=False)[0].clamp(0, 1)
        pairs.append((inp, render))
    target = Path(args.render)
    written = []
    if target.suffix.lower() == ".png":
        tiles, labels = [], []
        for img, (inp, render) in zip(args.images, pairs):
            tiles += [inp, render]
            labels += [Path(img).name, name]
        target.parent.mkdir(parents=True, exist_ok=True)
        save_image(target, image_grid(tiles, 2, labels=labels))
        written.append(target)
    elif target.suffix:
        raise InvalidInputError(f"--render {args.render}: give a .png file or a folder")
    else:
        target.mkdir(parents=True, exist_ok=True)
        for i, (img, (inp, render)) in enumerate(zip(args.images, pairs)):
            path = target / f"{Path(img).stem or f'image{i}'}.png"
            save_image(path, image_grid([inp, render], 2, labels=[Path(img).name, name]))
            written.append(path)
    return written


def run(args: argparse.Namespace) -> int:
    """Predict, write one file per image (and the renders); returns 0."""
    import torch

    from geomgen.models.predict import load_images, resolve_named_model

    wanted = args.representation if args.representation is not None else (None if args.weights else "mesh")
    name, model = resolve_named_model(wanted, args.weights, device=args.device)
    name = name or model.output
    paths = _outputs(args, model.output)
    images, _ = load_images(list(args.images), model.image_size)
    with torch.no_grad():
        x = images.to(model.device)
        pred = model.predict(x)
        need_mesh = args.render is not None or any(p.suffix.lower() in _MESH_EXTS for p in paths)
        meshes = pred if hasattr(pred, "faces_list") else (model.predict_meshes(x) if need_mesh else None)
    for i, path in enumerate(paths):
        _write(path, model, pred, meshes, i, args.points)
        nf = int(meshes.faces_list()[i].shape[0]) if meshes is not None and path.suffix.lower() in _MESH_EXTS \
            and not args.points else None
        extra = f" ({nf} faces{', empty prediction' if nf == 0 else ''})" if nf is not None else ""
        print(f"wrote {path}{extra}")
    if args.render:
        for p in _render(args, name, model, images, meshes):
            print(f"wrote {p}")
    if model.frame == "camera":
        print("note: coordinates are in the input camera's frame (OpenCV: x right, y down, z forward)")
    return 0

