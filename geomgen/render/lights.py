"""Light sources and surface materials for :func:`~geomgen.render.shade_soft`.

Shape letters: ``N`` lights (one per image, or 1 shared by every image),
``P`` shaded points.

Conventions (those of PyTorch3D's ``PointLights`` / ``DirectionalLights`` /
``Materials``, and of :func:`~geomgen.render.render_meshes`'s
``light_direction``):

* Everything is in the **world frame** (the frame of the mesh vertices and of
  ``cameras.world_from_camera``).
* :class:`DirectionalLights` ``direction`` points **from the surface towards
  the light** (the opposite of the direction the light travels): a surface
  whose normal equals ``direction`` is lit head-on.  It need not be unit
  length (it is normalised when shading; it must be non-zero).
* :class:`PointLights` ``location`` is the light's position; the direction
  towards the light at a surface point ``x`` is ``normalize(location - x)``.
  There is no fall-off with distance.  A point light at a camera's centre
  (``cameras.centers()``) is :func:`~geomgen.render.render_meshes`'s default
  *headlight*.
* Colours are linear RGB intensities ``>= 0`` (they may exceed 1), per light:
  ``ambient_color``, ``diffuse_color`` and ``specular_color``.  A material
  scales them channel by channel (:class:`Material`).

Every parameter is kept as the tensor given (``(3,)`` is stored as ``(1,
3)``, a view), so a tensor that requires grad receives gradients through
:func:`~geomgen.render.shade_soft`; numbers and sequences become float32
tensors.  Batching: ``N = 1`` (shared) or ``N = B``, one per image of the
camera batch; the parameters of one light object must agree on ``N`` (a
batch of one broadcasts).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from geomgen import checks as V

__all__ = ["PointLights", "DirectionalLights", "Material"]

#: PyTorch3D's default light colours (ambient, diffuse, specular).
DEFAULT_AMBIENT = (0.5, 0.5, 0.5)
DEFAULT_DIFFUSE = (0.3, 0.3, 0.3)
DEFAULT_SPECULAR = (0.2, 0.2, 0.2)


def _param(value: Any, name: str, fn: str, *, nonnegative: bool, width: int = 3) -> torch.Tensor:
    """``(N, width)`` floating tensor (a view of a given tensor) from ``(width,)``/``(N, width)``."""
    if isinstance(value, torch.Tensor):
        t = value
    else:
        try:
            t = torch.as_tensor(value, dtype=torch.float32)
        except (TypeError, ValueError, RuntimeError):
            raise V.fail(name, f"must be {width} numbers or an (N, {width}) tensor, got {value!r}", fn) from None
    V.check_tensor(t, name, ndim=(1, 2), shape_desc=f"({width},) or (N, {width})", floating=True, fn=fn)
    if t.shape[-1] != width or (t.dim() == 2 and t.shape[0] < 1):
        raise V.fail(name, f"must have shape ({width},) or (N, {width}) with N >= 1, got {tuple(t.shape)}", fn)
    V.check_finite(t, name, fn=fn)
    if nonnegative and bool((t.detach() < 0).any()):
        raise V.fail(name, f"must be >= 0, got {t.detach().tolist()}", fn)
    return t if t.dim() == 2 else t.unsqueeze(0)


def _batch(params: dict[str, torch.Tensor], fn: str) -> int:
    """The common batch size of ``params`` (1 broadcasts); they must share a device."""
    V.check_same_device(params, fn=fn)
    sizes = {k: v.shape[0] for k, v in params.items()}
    n = max(sizes.values())
    for k, s in sizes.items():
        if s not in (1, n):
            other = next(j for j, t in sizes.items() if t == n)
            raise V.fail(k, f"has {s} rows but '{other}' has {n} (give 1 or N of each)", fn)
    return n


def _rows(t: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
    """Row ``img`` of ``t``; a single row is returned as it is (it broadcasts)."""
    return t if t.shape[0] == 1 else t[img]


class _Lights:
    """Colours shared by both light types."""

    _fn = "lights"
    _geometry = "location"

    def __init__(self, geometry: Any, ambient_color: Any, diffuse_color: Any, specular_color: Any) -> None:
        fn = self._fn
        g = _param(geometry, self._geometry, fn, nonnegative=False)
        params = {
            self._geometry: g,
            "ambient_color": _param(ambient_color, "ambient_color", fn, nonnegative=True),
            "diffuse_color": _param(diffuse_color, "diffuse_color", fn, nonnegative=True),
            "specular_color": _param(specular_color, "specular_color", fn, nonnegative=True),
        }
        self._n = _batch(params, fn)
        self._p = params

    def __len__(self) -> int:
        return self._n

    @property
    def device(self) -> torch.device:
        return self._p[self._geometry].device

    @property
    def ambient_color(self) -> torch.Tensor:
        """``(N, 3)`` ambient RGB intensity."""
        return self._p["ambient_color"]

    @property
    def diffuse_color(self) -> torch.Tensor:
        """``(N, 3)`` diffuse RGB intensity."""
        return self._p["diffuse_color"]

    @property
    def specular_color(self) -> torch.Tensor:
        """``(N, 3)`` specular RGB intensity."""
        return self._p["specular_color"]

    def to(self, *args: Any, **kwargs: Any) -> Any:
        """A copy with every parameter moved/cast by ``Tensor.to(*args, **kwargs)``."""
        p = {k: v.to(*args, **kwargs) for k, v in self._p.items()}
        return type(self)(p[self._geometry], ambient_color=p["ambient_color"],
                          diffuse_color=p["diffuse_color"], specular_color=p["specular_color"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(N={self._n}, device={self.device})"

    def to_light(self, points: torch.Tensor, img: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class PointLights(_Lights):
    """Point lights at world positions, one per image or one shared.

    Args:
        location: ``(3,)`` or ``(N, 3)`` world position of the light.
            Default ``(0, 1, 0)`` (PyTorch3D's).
        ambient_color: ``(3,)`` or ``(N, 3)`` RGB ``>= 0``.
        diffuse_color: ``(3,)`` or ``(N, 3)`` RGB ``>= 0``.
        specular_color: ``(3,)`` or ``(N, 3)`` RGB ``>= 0``.

    The direction towards the light at ``x`` is ``normalize(location - x)``
    (see the module docstring).  Tensors that require grad get gradients.

    Raises:
        InvalidInputError: a parameter of the wrong shape or dtype, NaN/Inf,
            negative colours, batch sizes other than 1 or a common ``N``,
            tensors on different devices.
    """

    _fn = "PointLights"
    _geometry = "location"

    def __init__(
        self,
        location: torch.Tensor | Sequence[float] = (0.0, 1.0, 0.0),
        *,
        ambient_color: torch.Tensor | Sequence[float] = DEFAULT_AMBIENT,
        diffuse_color: torch.Tensor | Sequence[float] = DEFAULT_DIFFUSE,
        specular_color: torch.Tensor | Sequence[float] = DEFAULT_SPECULAR,
    ) -> None:
        super().__init__(location, ambient_color, diffuse_color, specular_color)

    @property
    def location(self) -> torch.Tensor:
        """``(N, 3)`` world positions."""
        return self._p["location"]

    def to_light(self, points: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """``(*S, 3)`` unit vectors from world ``points (*S, 3)`` seen in images ``img (*S)`` to the light."""
        d = _rows(self.location, img).to(points.dtype) - points
        return d * torch.rsqrt((d * d).sum(-1, keepdim=True).clamp(min=1e-24))


class DirectionalLights(_Lights):
    """Directional lights (at infinity), one per image or one shared.

    Args:
        direction: ``(3,)`` or ``(N, 3)`` world direction **from the surface
            towards the light** (PyTorch3D's convention; the light travels
            along ``-direction``), non-zero, normalised when shading.
            Default ``(0, 1, 0)`` (PyTorch3D's).
        ambient_color: ``(3,)`` or ``(N, 3)`` RGB ``>= 0``.
        diffuse_color: ``(3,)`` or ``(N, 3)`` RGB ``>= 0``.
        specular_color: ``(3,)`` or ``(N, 3)`` RGB ``>= 0``.

    Raises:
        InvalidInputError: as :class:`PointLights`, and a zero direction.
    """

    _fn = "DirectionalLights"
    _geometry = "direction"

    def __init__(
        self,
        direction: torch.Tensor | Sequence[float] = (0.0, 1.0, 0.0),
        *,
        ambient_color: torch.Tensor | Sequence[float] = DEFAULT_AMBIENT,
        diffuse_color: torch.Tensor | Sequence[float] = DEFAULT_DIFFUSE,
        specular_color: torch.Tensor | Sequence[float] = DEFAULT_SPECULAR,
    ) -> None:
        super().__init__(direction, ambient_color, diffuse_color, specular_color)
        if bool((self.direction.detach().norm(dim=-1) <= 0).any()):
            raise V.fail("direction", "must be non-zero", self._fn)

    @property
    def direction(self) -> torch.Tensor:
        """``(N, 3)`` world directions towards the light (not normalised)."""
        return self._p["direction"]

    def to_light(self, points: torch.Tensor, img: torch.Tensor) -> torch.Tensor:
        """``(*S, 3)`` unit direction towards the light at world ``points (*S, 3)`` seen in images ``img (*S)``."""
        d = _rows(self.direction, img).to(points.dtype)
        return (d * torch.rsqrt((d * d).sum(-1, keepdim=True).clamp(min=1e-24))).expand_as(points)


class Material:
    """Reflectances of the Phong model, one per image or one shared.

    Args:
        ambient: ``(3,)`` or ``(N, 3)`` ambient reflectance ``>= 0`` (multiplies
            the lights' ``ambient_color``).
        diffuse: ``(3,)`` or ``(N, 3)`` diffuse reflectance ``>= 0``.
        specular: ``(3,)`` or ``(N, 3)`` specular reflectance ``>= 0``.
        shininess: Phong exponent ``> 0``: a number or an ``(N,)`` / ``(1,)``
            tensor.  Default 64 (PyTorch3D's).

    The defaults (all ones, shininess 64) are PyTorch3D's ``Materials``.
    Tensors that require grad get gradients.

    Raises:
        InvalidInputError: wrong shapes or dtypes, NaN/Inf, negative
            reflectances, ``shininess <= 0``, mismatched batch sizes or devices.
    """

    def __init__(
        self,
        *,
        ambient: torch.Tensor | Sequence[float] = (1.0, 1.0, 1.0),
        diffuse: torch.Tensor | Sequence[float] = (1.0, 1.0, 1.0),
        specular: torch.Tensor | Sequence[float] = (1.0, 1.0, 1.0),
        shininess: float | torch.Tensor = 64.0,
    ) -> None:
        fn = "Material"
        if isinstance(shininess, torch.Tensor):
            V.check_tensor(shininess, "shininess", ndim=(0, 1), shape_desc="() or (N,)", floating=True,
                           finite=True, fn=fn)
            sh = shininess.reshape(-1, 1)
            if sh.shape[0] < 1:
                raise V.fail("shininess", "must hold at least one value", fn)
            if bool((sh.detach() <= 0).any()):
                raise V.fail("shininess", f"must be > 0, got {sh.detach().flatten().tolist()}", fn)
        else:
            sh = torch.tensor([[V.check_float(shininess, "shininess", positive=True, fn=fn)]])
        self._p = {
            "ambient": _param(ambient, "ambient", fn, nonnegative=True),
            "diffuse": _param(diffuse, "diffuse", fn, nonnegative=True),
            "specular": _param(specular, "specular", fn, nonnegative=True),
        }
        if not isinstance(shininess, torch.Tensor):
            sh = sh.to(self._p["ambient"].device)
        self._p["shininess"] = sh
        self._n = _batch(self._p, fn)

    def __len__(self) -> int:
        return self._n

    @property
    def ambient(self) -> torch.Tensor:
        """``(N, 3)`` ambient reflectance."""
        return self._p["ambient"]

    @property
    def diffuse(self) -> torch.Tensor:
        """``(N, 3)`` diffuse reflectance."""
        return self._p["diffuse"]

    @property
    def specular(self) -> torch.Tensor:
        """``(N, 3)`` specular reflectance."""
        return self._p["specular"]

    @property
    def shininess(self) -> torch.Tensor:
        """``(N, 1)`` Phong exponent."""
        return self._p["shininess"]

    def __repr__(self) -> str:
        return f"Material(N={self._n})"
