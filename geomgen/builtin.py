"""geomgen's own plugin: core metrics, datasets, the mean-shape baseline and the ``info``, ``compare``,
``convert``, ``data``, ``train``, ``eval``, ``sample``, ``predict``, ``view`` and ``render`` commands.

It registers through exactly the hooks a third-party plugin uses (see
:mod:`geomgen.hookspecs`); heavy modules are imported inside the functions.
The commands live in :mod:`geomgen.cli` (one module per command), named here
by module only, so listing them imports nothing.
"""

from __future__ import annotations

from typing import Any

from geomgen.components import CommandSpec, DatasetSpec, MetricSpec, RepresentationSpec
from geomgen.errors import InvalidInputError
from geomgen.hookspecs import hookimpl


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
#: ``(name, help)`` of geomgen's own commands; each is the module ``geomgen.cli.<name>``,
#: imported only when the command runs.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("info", "print statistics of mesh or point-cloud files"),
    ("compare", "compare two shapes with the installed metrics"),
    ("convert", "convert a mesh or point cloud between file formats"),
    ("models", "list installed models, or show a model's config schema (keys, types, defaults, bounds)"),
    ("data", "list, inspect, build and preview datasets (contact sheet PNG)"),
    ("train", "train a representation (voxel, mesh, ...) or a generator (vae, gan, ...) on a dataset"),
    ("eval", "evaluate single-view models (Mesh R-CNN protocol, beside the mean-shape baseline) or generators "
             "(MMD, COV, 1-NNA, NLL)"),
    ("sample", "draw shapes from a (pretrained) generator: meshes and a PNG grid"),
    ("predict", "predict 3D shapes from images with a (pretrained) model"),
    ("view", "show meshes, point clouds or voxels in an interactive Open3D window"),
    ("render", "render meshes, point clouds or voxels offscreen to a PNG"),
    ("fit", "fit a mesh to calibrated multi-view masks (differentiable rendering)"),
)


@hookimpl
def geomgen_register_commands(register: Any) -> None:
    """Register :data:`COMMANDS` as lazy commands (``CommandSpec(module="geomgen.cli.<name>")``)."""
    for name, help_ in COMMANDS:
        register(CommandSpec(name=name, help=help_, module=f"geomgen.cli.{name}"))


# ----------------------------------------------------------------------------- datasets
def _construct(name: str, cls: type, root: Any, split: Any, config: dict[str, Any]) -> Any:
    """``cls(root, split, **config)``, with unknown options reported as InvalidInputError."""
    import difflib

    from geomgen.data.keywords import accepted_keywords

    accepted = accepted_keywords(cls)
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


# the class each builder constructs, for `geomgen data --set` to route options (geomgen.data.keywords)
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


# ----------------------------------------------------------------------------- representations
@hookimpl
def geomgen_register_representations(register: Any) -> None:
    from geomgen.config import MeanShapeConfig

    register(RepresentationSpec(name="mean-shape", build="geomgen.models.baseline:MeanShape", output="mesh",
                                tags=("baseline",),
                                description="baseline: the thresholded mean training occupancy, the same mesh "
                                            "for every image (ignores the image; fit() it first)",
                                config=MeanShapeConfig))
