"""The mean-shape baseline: one shape for every image (:class:`MeanShape`).

It averages the ground-truth occupancy grids of a training split, thresholds
the mean at the level that maximises the mean voxel IoU against those grids,
and predicts the marching-cubes surface of it whatever the input image.  A
single-view model has to beat it to show that it uses the image at all (the
acceptance bar of ``geomgen eval``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from geomgen.config import MeanShapeConfig
from geomgen.errors import GeomgenError, InvalidInputError
from geomgen.models.base import ShapePredictor

__all__ = ["MeanShape", "fit_mean_shape", "THRESHOLDS"]

#: Candidate occupancy thresholds of :meth:`MeanShape.fit` (0.05, 0.10, ..., 0.95).
THRESHOLDS: tuple[float, ...] = tuple(round(0.05 * i, 2) for i in range(1, 20))


def _voxels_of(dataset: Any, index: int) -> np.ndarray:
    """The ``(R, R, R)`` GT occupancy grid of sample ``index``, read cheaply: only the
    ``voxels`` array of a cached sample file when the dataset has one."""
    cache = getattr(dataset, "cache", None)
    records = getattr(dataset, "records", None)
    if cache is not None and records is not None and hasattr(cache, "file_of"):
        try:
            with np.load(cache.file_of(records[index].id), allow_pickle=False) as z:
                return np.asarray(z["voxels"])
        except Exception:  # noqa: BLE001 - fall back to the dataset's own (repairing) reader
            pass
    if hasattr(dataset, "load_arrays"):
        return np.asarray(dataset.load_arrays(index)["voxels"])
    v = dataset[index]["voxels"]
    return np.asarray(v.grids[0] if hasattr(v, "grids") else v)


class MeanShape(ShapePredictor):
    """Predicts the thresholded mean training occupancy, ignoring the image.

    Args:
        config: a :class:`~geomgen.config.MeanShapeConfig` (or a mapping of its
            keys); ``None``: the defaults.
        **overrides: :class:`~geomgen.config.MeanShapeConfig` keys replacing
            those of ``config`` (``resolution`` is set by :meth:`fit` from the data).

    Buffers:
        mean_occupancy: ``(R, R, R)`` float in [0, 1], ``[k, j, i]`` <-> ``(z, y, x)``,
            over ``[-0.5, 0.5]^3`` (object frame).
        threshold: 0-d, the occupancy level of the surface.

    Raises:
        InvalidInputError: a bad config key or value (named in the message).
    """

    output = "mesh"
    frame = "object"
    has_volume = True

    def __init__(self, config: MeanShapeConfig | Mapping[str, Any] | None = None, /, **overrides: Any) -> None:
        c = MeanShapeConfig.resolve(config, **overrides)
        super().__init__(c.to_dict())
        self.register_buffer("mean_occupancy", torch.zeros(c.resolution, c.resolution, c.resolution))
        self.register_buffer("threshold", torch.tensor(0.5))
        self.fitted_on: int = 0

    @property
    def resolution(self) -> int:
        return int(self.config["resolution"])

    def fit(self, dataset: Any, progress: bool = False) -> MeanShape:
        """Average the GT voxel grids of ``dataset`` and pick the threshold in
        :data:`THRESHOLDS` with the best mean IoU against them.  Returns ``self``."""
        n = len(dataset)
        if n == 0:
            raise InvalidInputError("MeanShape.fit: argument 'dataset' is empty")
        items = range(n)
        if progress:
            from tqdm.auto import tqdm

            items = tqdm(items, desc="mean shape", unit="shape", leave=False)
        grids = np.stack([_voxels_of(dataset, i) >= 0.5 for i in items])  # (M, R, R, R) bool
        if grids.ndim != 4 or len(set(grids.shape[1:])) != 1:
            raise InvalidInputError(f"MeanShape.fit: expected cubic (R, R, R) voxel grids, got {grids.shape[1:]}")
        R = grids.shape[1]
        occ = torch.from_numpy(grids).reshape(n, -1)
        mean = occ.float().mean(0)
        gt_count = occ.sum(1).float()
        best_t, best_iou = THRESHOLDS[0], -1.0
        for t in THRESHOLDS:
            pred = mean >= t
            inter = occ[:, pred].sum(1).float()
            union = gt_count + float(pred.sum()) - inter
            iou = torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(union)).mean().item()
            if iou > best_iou + 1e-12:
                best_t, best_iou = t, iou
        if R != self.resolution:
            self.config["resolution"] = R
        self.mean_occupancy = mean.reshape(R, R, R).to(self.mean_occupancy.device)
        self.threshold = torch.tensor(float(best_t), device=self.threshold.device)
        self.train_iou = best_iou
        self.fitted_on = n
        return self

    def _load_from_state_dict(self, state_dict: Mapping[str, Any], prefix: str, *args: Any, **kwargs: Any) -> None:
        key = prefix + "mean_occupancy"
        if key in state_dict and tuple(state_dict[key].shape) != tuple(self.mean_occupancy.shape):
            self.mean_occupancy = torch.zeros_like(state_dict[key], device=self.mean_occupancy.device)
            self.config["resolution"] = int(state_dict[key].shape[0])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)  # type: ignore[arg-type]

    # ------------------------------------------------------------ contract
    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None) -> torch.Tensor:
        """``(N, R, R, R)`` mean occupancy, the same for every image."""
        images = self.check_images(images, "forward")
        return self.mean_occupancy.expand(images.shape[0], -1, -1, -1)

    def compute_loss(self, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        raise GeomgenError("mean-shape has no trainable parameters: nothing to train; fit it with "
                           "MeanShape().fit(dataset) or geomgen.models.fit_mean_shape()")

    def validation_metrics(self, batch: Mapping[str, Any]) -> dict[str, float | torch.Tensor]:
        """``F1@0.3`` only (there is no loss)."""
        from geomgen.metrics import compare_point_clouds
        from geomgen.models.base import _longest_edge

        pred = self.predict_points(batch["images"], batch.get("K"), num_points=2000)
        pts = pred.points_padded()
        gt = batch["pointclouds"].points_padded().to(pts)
        scale = 10.0 / _longest_edge(batch).to(pts)
        res = compare_point_clouds(pts * scale[:, None, None], None, gt * scale[:, None, None], None,
                                   thresholds=(0.3,), pred_lengths=pred.num_points_per_cloud(),
                                   gt_lengths=batch["pointclouds"].num_points_per_cloud())
        return {"F1@0.3": res["F1@0.3"]}

    def mesh(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(V, 3)`` vertices (object frame) and ``(F, 3)`` faces of the mean shape:
        marching cubes of the mean occupancy (padded with empty voxels, so the
        surface is closed) at :attr:`threshold`.  No faces before :meth:`fit`."""
        from geomgen.ops import marching_cubes

        R = self.resolution
        vol = torch.nn.functional.pad(self.mean_occupancy.detach().float().cpu(), (1, 1, 1, 1, 1, 1))
        step = 1.0 / R
        origin = -0.5 - 0.5 * step  # centre of the padding voxel before voxel 0
        with torch.no_grad():
            m = marching_cubes(vol, float(self.threshold), kind="occupancy", spacing=step,
                               origin=(origin, origin, origin))
        return m.verts_list()[0].to(self.device), m.faces_list()[0].to(self.device)

    def predict_meshes(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Any:
        """``Meshes`` of ``N`` copies of :meth:`mesh` (object frame)."""
        from geomgen.structures import Meshes

        images = self.check_images(images, "predict_meshes")
        v, f = self.mesh()
        n = images.shape[0]
        return Meshes([v.clone() for _ in range(n)], [f.clone() for _ in range(n)])

    def predict(self, images: torch.Tensor, K: torch.Tensor | None = None) -> Any:
        """Same as :meth:`predict_meshes`."""
        return self.predict_meshes(images, K)


def fit_mean_shape(dataset_name: str = "shapes", dataset_config: Mapping[str, Any] | None = None,
                   progress: bool = False) -> MeanShape:
    """A :class:`MeanShape` fitted on the ``train`` split of a registered dataset
    (``geomgen.get_dataset(dataset_name, split="train", **dataset_config)``)."""
    import geomgen

    cfg = dict(dataset_config or {})
    cfg.setdefault("view", 0)
    ds = geomgen.get_dataset(dataset_name, split="train", **cfg)
    return MeanShape().fit(ds, progress=progress).eval()
