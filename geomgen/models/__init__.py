"""Single-view shape prediction: the predictor contract, training task, evaluation,
mean-shape baseline, pretrained weights and :func:`geomgen.predict`.

* :mod:`~geomgen.models.base` - :class:`ShapePredictor` (what every representation
  plugin builds), frames and batch helpers.
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
from geomgen.models.training import MODEL_FORMAT, TrainedModel, load_model, save_model, train_representation  # noqa: E402

__all__ += ["RepresentationTask", "train_representation", "TrainedModel", "save_model", "load_model",
            "MODEL_FORMAT"]
