"""Conformance checks of the :class:`~geomgen.models.ShapePredictor` contract, for plugin tests.

    from geomgen.testing.models import check_representation

    def test_contract(batch):                  # a single_view(collate_samples(...)) batch
        check_representation("voxel", batch)

Raises ``AssertionError`` with a message saying which part of the contract a
model breaks (types, batch size, frames, finiteness, loss, autograd, config
round trip, eval-mode prediction).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["check_representation", "STRUCTURES"]

#: ``ShapePredictor.output`` -> the class name of what ``predict`` must return.
STRUCTURES: dict[str, tuple[str, ...]] = {
    "mesh": ("Meshes",),
    "voxels": ("Voxels",),
    "pointcloud": ("PointClouds",),
    "depth": ("DepthMaps",),
    "implicit": ("Meshes", "Voxels"),
}


def _finite_tensors(obj: Any, normals: bool = True) -> list[torch.Tensor]:
    """The floating tensors a structure holds (lists of vertices/points (and normals), grids, depth)."""
    out: list[torch.Tensor] = []
    for attr in ("verts_list", "points_list") + (("normals_list",) if normals else ()):
        fn = getattr(obj, attr, None)
        if callable(fn):
            items = fn()
            if items is not None:
                out.extend(items)
    for attr in ("grids",):
        if isinstance(getattr(obj, attr, None), torch.Tensor):
            out.append(getattr(obj, attr))
    if hasattr(obj, "depth") and hasattr(obj, "masks"):
        out.append(obj.depth[obj.masks])
    return [t for t in out if isinstance(t, torch.Tensor) and t.is_floating_point()]


def _check_structure(what: str, obj: Any, n: int, allowed: tuple[str, ...]) -> None:
    names = {c.__name__ for c in type(obj).__mro__}
    assert names & set(allowed), f"{what} returned {type(obj).__name__}, expected {' or '.join(allowed)}"
    assert len(obj) == n, f"{what} returned {len(obj)} items for {n} images"
    for t in _finite_tensors(obj):
        assert bool(torch.isfinite(t).all()), f"{what} returned non-finite values"
        assert not t.requires_grad, f"{what} must run without autograd (wrap it in torch.no_grad())"


def _check_frame(what: str, obj: Any, frame: str, batch: Mapping[str, Any]) -> None:
    """Rough frame check: object-frame geometry near [-0.5, 0.5]^3 (|x| < 2), camera-frame
    geometry well in front of the camera (median z > 1; the shapes sit at z ~ 2.66)."""
    if hasattr(obj, "unproject"):  # depth maps: their camera-frame points
        obj = obj.to_pointclouds()
    pts = [p for p in _finite_tensors(obj, normals=False) if p.dim() == 2 and p.shape[-1] == 3 and p.shape[0] > 0]
    if not pts:
        return
    cat = torch.cat([p.detach().float().cpu() for p in pts])
    if frame == "object":
        assert float(cat.abs().max()) < 2.0, (f"{what}: object-frame geometry should lie near [-0.5, 0.5]^3, "
                                              f"got coordinates up to {float(cat.abs().max()):.3g}")
    else:
        assert float(cat[:, 2].median()) > 1.0, (f"{what}: camera-frame geometry should sit in front of the camera "
                                                 f"(around z = distance), got median z {float(cat[:, 2].median()):.3g}")


def check_representation(name_or_model: str | torch.nn.Module, batch: Mapping[str, Any], *,
                         config: Mapping[str, Any] | None = None, check_train_mode: bool = True) -> Any:
    """Assert that a representation model follows the ShapePredictor contract.

    Checks: it is a ``ShapePredictor`` with valid ``output``/``frame``/
    ``has_volume``; its ``config`` is JSON-able and holds ``image_size`` and
    ``fov``; ``geomgen.get_model(name, **config)`` (for a registered name)
    rebuilds a model with the same ``state_dict`` keys and shapes;
    ``compute_loss(batch)`` gives a finite scalar ``"loss"`` (and scalar extra
    terms) that back-propagates into at least one parameter;
    ``validation_metrics`` gives finite ``F1@0.3``; in eval mode ``predict``,
    ``predict_meshes`` and ``predict_points`` return ``N`` finite items of the
    right structure, in the model's frame, without autograd; ``forward`` runs;
    bad images raise :class:`~geomgen.errors.InvalidInputError`.

    Args:
        name_or_model: a registered representation name (built with its
            defaults plus ``config``) or a model.
        batch: a :func:`geomgen.models.single_view` batch (``images``, ``K``,
            ``world_from_camera``, ``mesh``, ``pointclouds``, ``voxels``, ...).
        config: build options when a name is given (e.g. a small width).
        check_train_mode: also run ``compute_loss`` in train mode (default).

    Returns:
        the model (in eval mode).
    """
    import geomgen
    from geomgen.errors import InvalidInputError
    from geomgen.models import FRAMES, ShapePredictor, single_view

    name = name_or_model if isinstance(name_or_model, str) else None
    model = geomgen.get_model(name, **dict(config or {})) if name is not None else name_or_model
    assert isinstance(model, ShapePredictor), f"{name or type(model).__name__} is not a ShapePredictor"
    assert model.output in STRUCTURES, f"output {model.output!r} is not one of {sorted(STRUCTURES)}"
    assert model.frame in FRAMES, f"frame {model.frame!r} is not one of {FRAMES}"
    assert isinstance(model.has_volume, bool), "has_volume must be a bool"

    # config: JSON-able, rebuildable
    cfg = model.config
    assert isinstance(cfg, dict) and "image_size" in cfg and "fov" in cfg, \
        "config must be a dict with image_size and fov (call super().__init__(config))"
    try:
        text = json.dumps(cfg)
    except (TypeError, ValueError) as e:
        raise AssertionError(f"config is not JSON-able: {e}") from None
    if name is not None:
        again = geomgen.get_model(name, **json.loads(text))
        a, b = model.state_dict(), again.state_dict()
        assert list(a) == list(b), f"get_model({name!r}, **config) rebuilds other state_dict keys: " \
                                   f"{sorted(set(a) ^ set(b))[:5]}"
        bad = [k for k in a if a[k].shape != b[k].shape]
        assert not bad, f"get_model({name!r}, **config) rebuilds other shapes for {bad[:5]}"
        again.load_state_dict(a)

    batch = single_view(batch)
    images = batch["images"].to(model.device)
    n = images.shape[0]
    K = batch.get("K")

    # loss: finite scalar, differentiable
    if check_train_mode:
        model.train()
        model.zero_grad(set_to_none=True)
        losses = model.compute_loss(batch)
        assert isinstance(losses, Mapping) and "loss" in losses, "compute_loss must return a dict with 'loss'"
        for k, v in losses.items():
            assert isinstance(v, torch.Tensor) and v.dim() == 0, f"compute_loss()[{k!r}] must be a 0-d tensor"
            assert bool(torch.isfinite(v)), f"compute_loss()[{k!r}] is not finite: {float(v)}"
        assert losses["loss"].requires_grad, "compute_loss()['loss'] does not require grad"
        losses["loss"].backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert any(g is not None and bool(g.abs().sum() > 0) for g in grads), \
            "the loss does not reach any parameter (all gradients are None or zero)"
        for p in model.parameters():
            if p.grad is not None:
                assert bool(torch.isfinite(p.grad).all()), "non-finite gradient"
        model.zero_grad(set_to_none=True)

    # eval-mode prediction
    model.eval()
    with torch.no_grad():
        model(images, K)
        pred = model.predict(images, K)
    _check_structure("predict", pred, n, STRUCTURES[model.output])
    _check_frame("predict", pred, model.frame, batch)
    meshes = model.predict_meshes(images, K)
    _check_structure("predict_meshes", meshes, n, ("Meshes",))
    _check_frame("predict_meshes", meshes, model.frame, batch)
    points = model.predict_points(images, K, num_points=500)
    _check_structure("predict_points", points, n, ("PointClouds",))
    assert all(int(c) >= 1 for c in points.num_points_per_cloud()), "predict_points returned an empty cloud"
    _check_frame("predict_points", points, model.frame, batch)
    with torch.no_grad():
        metrics = model.validation_metrics(batch)
    assert "F1@0.3" in metrics, "validation_metrics must report 'F1@0.3'"
    f1 = float(torch.as_tensor(metrics["F1@0.3"]).float().mean())
    assert math.isfinite(f1) and 0.0 <= f1 <= 100.0, f"validation_metrics F1@0.3 = {f1} is not in [0, 100]"

    # bad input is a geomgen error
    for bad in (images[:, :2], images[..., : images.shape[-1] // 2]):
        try:
            model.predict(bad, None)
        except InvalidInputError:
            pass
        except Exception as e:  # noqa: BLE001
            raise AssertionError(f"predict raised {type(e).__name__} on images of shape {tuple(bad.shape)}; it "
                                 "should raise geomgen.errors.InvalidInputError (call self.check_images)") from e
        else:
            raise AssertionError(f"predict accepted images of shape {tuple(bad.shape)} (call self.check_images)")
    return model
