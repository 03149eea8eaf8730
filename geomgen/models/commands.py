"""The ``geomgen train``, ``geomgen eval`` and ``geomgen predict`` sub-commands.

Registered by geomgen's own plugin (:mod:`geomgen.builtin`) through the
``geomgen_register_commands`` hook, like any plugin's commands.

* ``geomgen train NAME`` - :func:`~geomgen.models.train_representation` with
  every :class:`~geomgen.train.TrainConfig` flag; defaults: the shipped
  model's recipe (manifest), ``--out-dir runs/NAME``.  Works under torchrun.
* ``geomgen eval NAME... | all`` - :func:`~geomgen.models.evaluate` on the test
  split, with the mean-shape baseline, printed as a table (``--json``, ``--markdown``).
* ``geomgen predict IMAGE... --repr NAME -o OUT`` - writes one shape file per
  image (mesh, point cloud, binvox, depth npz) and optional renders.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from geomgen.errors import InvalidInputError

__all__ = ["configure_train", "run_train", "configure_eval", "run_eval", "configure_predict", "run_predict",
           "DEFAULT_EXTENSIONS"]

#: File written per prediction when ``-o`` is a folder, by the model's ``output``.
DEFAULT_EXTENSIONS: dict[str, str] = {"mesh": ".obj", "voxels": ".binvox", "pointcloud": ".ply",
                                      "depth": ".npz", "implicit": ".obj"}
_MESH_EXTS = (".obj", ".ply", ".off", ".stl", ".glb", ".gltf")
_POINT_EXTS = (".ply", ".xyz", ".pwn", ".npz")


def _json_arg(text: str | None, flag: str) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as e:
        raise InvalidInputError(f"{flag}: not valid JSON ({e}): {text!r}") from None
    if not isinstance(value, dict):
        raise InvalidInputError(f"{flag}: must be a JSON object, got {text!r}")
    return value


def _manifest() -> dict[str, Any]:
    from geomgen.weights import read_manifest

    try:
        return read_manifest()
    except Exception:  # noqa: BLE001 - a broken manifest must not break training/eval defaults
        return {"models": {}}


def _default_data_config(dataset: str) -> dict[str, Any]:
    """The dataset config of the shipped weights (manifest ``dataset``) when it is this dataset."""
    d = _manifest().get("dataset") or {}
    cfg = d.get("config") if isinstance(d, dict) else None
    if isinstance(cfg, dict) and d.get("name", dataset) == dataset:
        return dict(cfg)
    return {}


def _data_config(args: argparse.Namespace) -> dict[str, Any]:
    cfg = _default_data_config(args.dataset) if args.data_config is None else {}
    cfg.update(_json_arg(args.data_config, "--data-config"))
    return cfg


# ----------------------------------------------------------------------------- train
def configure_train(parser: argparse.ArgumentParser) -> None:
    from geomgen.train import TrainConfig

    parser.add_argument("name", metavar="NAME", help="representation or generator to train (geomgen plugins lists "
                                                     "them)")
    parser.add_argument("--dataset", default="shapes", help="registered dataset (default: %(default)s)")
    parser.add_argument("--data-config", metavar="JSON", default=None,
                        help="dataset options as JSON, e.g. '{\"per_category\": {\"train\": 100}}' "
                             "(default: the shipped weights' dataset config)")
    parser.add_argument("--model-config", metavar="JSON", default=None,
                        help="model build options as JSON (default: the representation's default_config)")
    defaults = TrainConfig(max_steps=2000, val_every=250, early_stopping_metric="F1@0.3",
                           early_stopping_mode="max")
    TrainConfig.add_arguments(parser, defaults)
    for action in parser._actions:
        if action.dest == "out_dir":
            action.help = "folder for model.pt, metrics.csv, loss.png and checkpoints (default: runs/NAME)"
    parser.description = ("Train a representation or a generator with the core trainer. Defaults: the shipped "
                          "weights' recipe (pretrained manifest) where there is one, else the defaults shown (for "
                          "generators: validation loss, no early stopping); flags override both.")
    # defaults are wrapped so that run_train can tell them from given flags: recipe < flags
    parser.set_defaults(**{a.dest: _Default(a.default) for a in parser._actions
                           if a.dest in {f.name for f in _fields(TrainConfig)}})


class _Default:
    """A flag's default value, not given on the command line."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return repr(self.value)


def _fields(cls: type) -> list[Any]:
    import dataclasses

    return [f for f in dataclasses.fields(cls) if not f.name.startswith("_")]


def _recipe(name: str) -> dict[str, Any]:
    """TrainConfig fields of the shipped weights' recipe (manifest ``models[name]["train"]["recipe"]``)."""
    import dataclasses

    from geomgen.train import TrainConfig

    entry = _manifest().get("models", {}).get(name) or {}
    train = entry.get("train") or {}
    if isinstance(train, dict):  # {"recipe": {...}} (scripts/train_pretrained.py), {"config": {...}} or flat
        train = train.get("recipe", train.get("config", train))
    names = {f.name for f in dataclasses.fields(TrainConfig)} - {"out_dir", "resume", "device", "progress",
                                                                  "num_workers", "tensorboard", "plot"}
    return {k: v for k, v in train.items() if k in names} if isinstance(train, dict) else {}


def _is_generator(name: str) -> bool:
    import geomgen

    return name in geomgen.list_models(kind="generator")


def run_train(args: argparse.Namespace) -> int:
    from geomgen.models.training import train_representation
    from geomgen.train import TrainConfig

    generator = _is_generator(args.name)
    recipe = _recipe(args.name)  # the shipped recipe beats our defaults, given flags beat the recipe
    cfg: dict[str, Any] = {}
    for f in _fields(TrainConfig):
        value = getattr(args, f.name, None)
        if isinstance(value, _Default):
            default = value.value
            if generator and f.name in ("early_stopping_metric", "early_stopping_mode"):
                default = None if f.name == "early_stopping_metric" else "min"  # no F1 for generators
            value = recipe.get(f.name, default)
        cfg[f.name] = value
    if cfg.get("out_dir") is None:
        cfg["out_dir"] = str(Path("runs") / args.name)
    if isinstance(cfg.get("betas"), list):
        cfg["betas"] = tuple(cfg["betas"])
    config = TrainConfig.from_dict(cfg)
    if generator:
        from geomgen.generative.training import train_generator as train
    else:
        train = train_representation
    result = train(args.name, config, model_config=_json_arg(args.model_config, "--model-config"),
                   dataset=args.dataset, dataset_config=_data_config(args))
    if result.model_path is None:  # not the main process under torchrun
        return 0
    out = Path(config.out_dir)
    s = result.summary
    best = f", best {config.early_stopping_metric} {s.best_metric:.4g} at step {s.best_step}" \
        if s.best_metric is not None else ""
    print(f"trained {args.name}: {s.steps} steps in {s.wall_time_s:.1f} s{best}")
    print(f"  model:   {result.model_path}")
    for label, file in (("metrics", "metrics.csv"), ("plot", "loss.png"), ("config", "config.json")):
        if (out / file).exists():
            print(f"  {label + ':':<8} {out / file}")
    print(f"evaluate with: geomgen eval {args.name} --weights {result.model_path}")
    if generator:
        print(f"sample with:   geomgen sample --weights {result.model_path} -n 16 -o samples/")
    return 0


# ----------------------------------------------------------------------------- eval
def configure_eval(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="+", metavar="NAME",
                        help="representations to evaluate ('all' = every pretrained one; 'mean-shape' = the "
                             "baseline alone) or generators (their samples against the split: MMD, COV, 1-NNA, NLL)")
    parser.add_argument("--weights", action="append", metavar="PATH",
                        help="model file instead of the pretrained weights (repeat once per NAME, in order)")
    parser.add_argument("--dataset", default="shapes", help="registered dataset (default: %(default)s)")
    parser.add_argument("--split", default="test", help="split to evaluate on (default: %(default)s)")
    parser.add_argument("--data-config", metavar="JSON", default=None,
                        help="dataset options as JSON (default: the shipped weights' dataset config)")
    parser.add_argument("--view", type=int, default=0, help="view fed to the models (default: %(default)s)")
    parser.add_argument("--num-samples", type=int, default=None,
                        help="points per predicted and GT cloud (default: 10000; generators: 2048)")
    parser.add_argument("--generate", type=int, default=None, metavar="G",
                        help="generators: shapes to sample (default: as many as the split has)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the point sampling (default: %(default)s)")
    parser.add_argument("--device", default=None, help="device of the models (default: cpu)")
    parser.add_argument("--no-baseline", action="store_true", help="leave out the mean-shape baseline")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--per-category", dest="per_category", action="store_true", default=True,
                       help="one block per category, then the means (default)")
    group.add_argument("--summary", dest="per_category", action="store_false", help="only the means")
    parser.add_argument("--json", metavar="PATH", help="also write every report (per instance) as JSON")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table as markdown")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                        help="progress bars (default: on)")


def _eval_models(args: argparse.Namespace) -> list[tuple[str, Any]]:
    """``(label, model)`` per NAME ('all' expanded; 'mean-shape' is handled by the caller)."""
    from geomgen.models.predict import resolve_model
    from geomgen.weights import list_pretrained

    names: list[str] = []
    for n in args.names:
        if n == "all":
            pre = list_pretrained(kind="representation")
            if not pre:
                from geomgen.weights import manifest_path

                raise InvalidInputError(f"eval all: no pretrained weights are installed (manifest "
                                        f"'{manifest_path()}'); train one with: geomgen train NAME")
            names.extend(p for p in pre if p not in names and p != "mean-shape")
        elif n not in names:
            names.append(n)
    weights = list(args.weights or [])
    models_only = [n for n in names if n != "mean-shape"]
    if weights and len(weights) != len(models_only):
        raise InvalidInputError(f"--weights: give one per NAME ({len(models_only)}: {', '.join(models_only)}), "
                                f"got {len(weights)}")
    out = []
    for i, n in enumerate(models_only):
        model = resolve_model(n, weights[i] if weights else None, device=args.device)
        out.append((n, model))
    return out


def _baseline(args: argparse.Namespace, dcfg: dict[str, Any]) -> Any:
    """The shipped mean-shape baseline when it was fitted on this dataset's train
    split (same dataset and config as the manifest's), else one fitted now."""
    import geomgen
    from geomgen.models.baseline import MeanShape
    from geomgen.weights import list_pretrained, load_pretrained, read_manifest

    shipped = read_manifest().get("dataset", {})
    same = {k: v for k, v in dcfg.items() if k != "progress"} == {
        k: v for k, v in dict(shipped.get("config", {})).items() if k != "progress"}
    if "mean-shape" in list_pretrained() and args.dataset == shipped.get("name") and same:
        return load_pretrained("mean-shape")
    train = geomgen.get_dataset(args.dataset, split="train", view=args.view, **dcfg)
    return MeanShape().fit(train, progress=args.progress).eval()


def run_eval(args: argparse.Namespace) -> int:
    import geomgen
    from geomgen.models.evaluate import evaluate, format_table

    dcfg = _data_config(args)
    dcfg.setdefault("progress", args.progress)
    generators = [n for n in args.names if n != "all" and _is_generator(n)]
    if generators:
        if len(generators) != len(args.names):
            raise InvalidInputError(f"eval: evaluate generators ({', '.join(generators)}) and representations "
                                    "in separate calls")
        from geomgen.generative.commands import run_eval_generators

        return run_eval_generators(args, generators, dcfg)
    if args.num_samples is None:
        args.num_samples = 10000
    models = _eval_models(args)  # fail fast on unknown names / missing weights, before building data
    want_baseline = not args.no_baseline or "mean-shape" in args.names
    test = geomgen.get_dataset(args.dataset, split=args.split, view=args.view, **dcfg)
    if want_baseline:
        models.append(("mean-shape", _baseline(args, dcfg)))
    reports = {}
    for label, model in models:
        reports[label] = evaluate(model, test, view=args.view, num_samples=args.num_samples,
                                  batch_size=args.batch_size, seed=args.seed, progress=args.progress,
                                  device=args.device, name=label)
    print(f"{args.dataset} {args.split} split: {len(test)} shapes, view {args.view}, {args.num_samples} points, "
          "gt-10 scale (Chamfer-L2 of squared distances, F1 in %, IoU fraction)")
    print(format_table(reports, per_category=args.per_category))
    if args.markdown:
        Path(args.markdown).write_text(format_table(reports, per_category=args.per_category, markdown=True) + "\n")
        print(f"wrote {args.markdown}")
    if args.json:
        Path(args.json).write_text(json.dumps({k: r.to_dict() for k, r in reports.items()}, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


# ----------------------------------------------------------------------------- predict
def configure_predict(parser: argparse.ArgumentParser) -> None:
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


def render_prediction(verts: Any, faces: Any, frame: str, size: int = 128, fit: bool = True) -> Any:
    """``(3, size, size)`` Lambert render of one predicted mesh from an orbit
    view (azimuth 30, elevation 20 degrees), the mesh centred and scaled to
    fit (``fit=False``: as is, so the object frame's ``[-0.5, 0.5]^3`` cube
    fills the view and sizes stay comparable); camera-frame meshes are turned
    Y-up first (azimuth 0 = the input camera's side).  A mesh without faces
    gives a white image."""
    import torch

    from geomgen.models.base import default_distance, default_intrinsics
    from geomgen.render import PerspectiveCameras, orbit_poses, render_meshes
    from geomgen.structures import Meshes

    if faces.shape[0] == 0 or verts.shape[0] == 0:
        return torch.ones(3, size, size)
    v = verts.detach().float().cpu()
    if frame == "camera":  # OpenCV (y down, z forward) -> y up, the camera on +z
        v = v * torch.tensor([1.0, -1.0, -1.0])
    if fit:
        lo, hi = v.min(0).values, v.max(0).values
        extent = float((hi - lo).max())
        v = (v - (lo + hi) / 2) / (extent if extent > 0 else 1.0)
    K = default_intrinsics(1, size, size, 40.0)
    pose = orbit_poses(30.0, 20.0, default_distance(40.0), up=(0.0, 1.0, 0.0)).float()
    cams = PerspectiveCameras(K, pose, (size, size))
    return render_meshes(Meshes([v], [faces.cpu()]), cams, colors=torch.tensor([0.55, 0.7, 0.9])).image[0]


def _render(args: argparse.Namespace, name: str, model: Any, images: Any, meshes: Any) -> list[Path]:
    import torch

    from geomgen.io import image_grid, save_image

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


def run_predict(args: argparse.Namespace) -> int:
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

