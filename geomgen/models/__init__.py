"""Single-view shape prediction: the predictor contract, training, evaluation,
the mean-shape baseline and :func:`geomgen.predict`.

* :mod:`~geomgen.models.base` - :class:`ShapePredictor` (what every representation
  plugin builds), frames and batch helpers.
* :mod:`~geomgen.models.evaluate` - :func:`evaluate` (Mesh R-CNN protocol, object
  frame), :class:`EvalReport`, :func:`format_table`.
* :mod:`~geomgen.models.baseline` - :class:`MeanShape`, the mean-shape baseline
  (registered as ``"mean-shape"``).
* :mod:`~geomgen.models.training` - :func:`train_representation`.
* :mod:`~geomgen.models.predict` - :func:`geomgen.predict`, image(s) in, shapes out.
* ``geomgen train`` / ``eval`` / ``predict`` live in :mod:`geomgen.cli`.

Model files and shipped weights (for generators too) live in
:mod:`geomgen.weights`; ``save_model``, ``load_model``, ``TrainedModel``,
``MODEL_FORMAT``, ``list_pretrained``, ``pretrained_info``, ``load_pretrained``
and ``write_manifest_entry`` are re-exported here unchanged.
"""

from geomgen.models.base import (
    FRAMES,
    ShapePredictor,
    camera_to_world,
    default_distance,
    default_intrinsics,
    rigid_inverse,
    single_view,
    transform_points,
    world_to_camera,
)

__all__ = [
    "FRAMES",
    "ShapePredictor",
    "single_view",
    "default_intrinsics",
    "default_distance",
    "transform_points",
    "rigid_inverse",
    "world_to_camera",
    "camera_to_world",
]

from geomgen.models.task import RepresentationTask  # noqa: E402
from geomgen.models.training import train_representation  # noqa: E402
from geomgen.weights import MODEL_FORMAT, TrainedModel, load_model, save_model  # noqa: E402

__all__ += ["RepresentationTask", "train_representation", "TrainedModel", "save_model", "load_model",
            "MODEL_FORMAT"]

from geomgen.models.evaluate import EvalReport, evaluate, format_table  # noqa: E402
from geomgen.models.baseline import MeanShape, fit_mean_shape  # noqa: E402

__all__ += ["evaluate", "EvalReport", "format_table", "MeanShape", "fit_mean_shape"]

from geomgen.weights import (  # noqa: E402
    list_pretrained,
    load_pretrained,
    pretrained_info,
    write_manifest_entry,
)

__all__ += ["list_pretrained", "pretrained_info", "load_pretrained", "write_manifest_entry"]
