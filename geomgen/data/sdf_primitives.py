"""Signed distance functions of solid primitives and their CSG combinations.

Used by :mod:`geomgen.data.procedural` to build the shapes of the ``shapes``
dataset; usable on their own.  Units are whatever the parameters are in.

Conventions
-----------
* **Sign.**  Negative inside, positive outside, zero on the surface (the
  ``kind="sdf"`` convention of :func:`geomgen.ops.marching_cubes`).
* **Exactness.**  Every primitive returns the exact Euclidean signed distance
  to its surface.  :class:`Union`, :class:`Intersection` and
  :class:`Difference` combine with ``min`` / ``max`` / ``max(a, -b)``: the
  result has the right sign and is exact near most of the surface, but is only
  a bound elsewhere (e.g. inside a union, or outside an intersection's
  corners).  Every node is 1-Lipschitz.
* **Evaluation.**  ``node(x, y, z)`` takes three float tensors that broadcast
  against each other (e.g. ``(1, 1, W)``, ``(1, H, 1)``, ``(D, 1, 1)`` grid
  axes, or three ``(M,)`` columns) and returns their broadcast shape;
  :meth:`SDF.points` takes ``(M, 3)``.  Only ``+ - * /``, ``sqrt``, ``abs``,
  ``min``/``max`` are used, element by element, so given float64 inputs the
  values are bit-identical on every platform (IEEE 754 rounds these exactly).
* **Bounding boxes.**  ``node.bbox`` is a ``(2, 3)`` float64 array ``[lo,
  hi]`` (x, y, z) that contains the solid (``value <= 0``); ``+-inf`` where
  unbounded (:class:`HalfSpace`).

:func:`sample_grid` evaluates a node on a regular grid, skipping the parts of
a union far from each child (see its docstring for why the result is
identical to a full evaluation wherever marching cubes looks).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from geomgen import checks as V

__all__ = [
    "SDF",
    "Box",
    "Sphere",
    "Cylinder",
    "Cone",
    "Torus",
    "Capsule",
    "HalfSpace",
    "Union",
    "Intersection",
    "Difference",
    "sample_grid",
]

Tensor = torch.Tensor
_AXES = "xyz"


def _vec3(value: Any, name: str, fn: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.empty(0)
    if arr.shape != (3,) or not np.isfinite(arr).all():
        raise V.fail(name, f"must be 3 finite numbers (x, y, z), got {value!r}", fn)
    return arr


def _pos(value: Any, name: str, fn: str, *, allow_zero: bool = False) -> float:
    v = V.check_float(value, name, fn=fn)
    if v < 0 or (v == 0 and not allow_zero):
        raise V.fail(name, f"must be {'>= 0' if allow_zero else '> 0'}, got {v}", fn)
    return v


def _len3(x: Tensor, y: Tensor, z: Tensor) -> Tensor:
    return torch.sqrt(x * x + y * y + z * z)


def _len2(x: Tensor, y: Tensor) -> Tensor:
    return torch.sqrt(x * x + y * y)


def _pos_part(x: Tensor) -> Tensor:
    return torch.clamp(x, min=0.0)


class _Frame:
    """Unit axis ``u`` from ``a`` to ``b``: axial coordinate and radial distance.

    Axis-aligned segments take a cheaper path that also keeps grid broadcasting
    (the radial distance of a y-aligned axis only depends on x and z)."""

    def __init__(self, a: np.ndarray, b: np.ndarray, fn: str) -> None:
        d = b - a
        length = float(np.sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]))
        if not length > 0:
            raise V.fail("b", f"must differ from a (the axis needs a length), got a = b = {b.tolist()}", fn)
        self.a, self.b, self.length = a, b, length
        self.u = d / length
        nz = np.flatnonzero(d != 0)
        self.axis = int(nz[0]) if nz.size == 1 else -1

    def axial_radial(self, x: Tensor, y: Tensor, z: Tensor) -> tuple[Tensor, Tensor]:
        """``t`` = signed distance along ``u`` from ``a``; ``rho`` >= 0 distance to the axis line."""
        p = (x - float(self.a[0]), y - float(self.a[1]), z - float(self.a[2]))
        if self.axis >= 0:
            k = self.axis
            t = p[k] if self.u[k] > 0 else -p[k]
            o = [p[i] for i in range(3) if i != k]
            return t, _len2(o[0], o[1])
        ux, uy, uz = (float(c) for c in self.u)
        t = p[0] * ux + p[1] * uy + p[2] * uz
        return t, _len3(p[0] - t * ux, p[1] - t * uy, p[2] - t * uz)

    def disc_extent(self) -> np.ndarray:
        """Per-axis half extent of a unit disc perpendicular to ``u``."""
        return np.sqrt(np.clip(1.0 - self.u * self.u, 0.0, 1.0))


class SDF:
    """Base class: a solid given by its signed distance.

    Subclasses implement ``__call__(x, y, z) -> Tensor`` (broadcast shape of
    the inputs), set ``bbox`` ((2, 3) float64) and implement :meth:`describe`.
    """

    bbox: np.ndarray

    def __call__(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def points(self, points: Tensor) -> Tensor:
        """Signed distance at ``points`` (M, 3) (any float dtype; float64 is exact) -> (M,)."""
        V.check_tensor(points, "points", ndim=2, shape=(None, 3), shape_desc="(M, 3)", floating=True,
                       fn="SDF.points")
        return self(points[:, 0], points[:, 1], points[:, 2])

    def describe(self) -> dict[str, Any]:  # pragma: no cover - abstract
        """JSON-able description: ``{"type": ..., parameters...}``."""
        raise NotImplementedError


class Box(SDF):
    """Box with centre ``center`` (3,) and half extents ``half`` (3,) along its own axes.

    ``axes`` (3, 3): rows are the box's unit x, y, z axes in world coordinates
    (an orthonormal frame); None = world-aligned.
    """

    def __init__(self, center: Sequence[float], half: Sequence[float],
                 axes: Sequence[Sequence[float]] | np.ndarray | None = None) -> None:
        self.center = _vec3(center, "center", "Box")
        self.half = _vec3(half, "half", "Box")
        if not (self.half > 0).all():
            raise V.fail("half", f"must be > 0, got {self.half.tolist()}", "Box")
        if axes is None:
            self.axes = None
            ext = self.half
        else:
            m = np.asarray(axes, dtype=np.float64)
            if m.shape != (3, 3) or not np.allclose(m @ m.T, np.eye(3), atol=1e-9):
                raise V.fail("axes", "must be a (3, 3) orthonormal matrix (rows = box axes)", "Box")
            self.axes = m
            a = np.abs(m)  # world half extent along j: sum_i |axis_i[j]| * half_i (no BLAS: same bits everywhere)
            ext = a[0] * self.half[0] + a[1] * self.half[1] + a[2] * self.half[2]
        self.bbox = np.stack([self.center - ext, self.center + ext])

    def __call__(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        c = self.center
        p = (x - float(c[0]), y - float(c[1]), z - float(c[2]))
        if self.axes is not None:
            m = self.axes
            p = tuple(p[0] * float(m[i, 0]) + p[1] * float(m[i, 1]) + p[2] * float(m[i, 2]) for i in range(3))
        q = [torch.abs(p[i]) - float(self.half[i]) for i in range(3)]
        outside = _len3(_pos_part(q[0]), _pos_part(q[1]), _pos_part(q[2]))
        return outside + torch.clamp(torch.maximum(torch.maximum(q[0], q[1]), q[2]), max=0.0)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "box", "center": self.center.tolist(), "half": self.half.tolist()}
        if self.axes is not None:
            out["axes"] = self.axes.tolist()
        return out


class Sphere(SDF):
    """Ball of centre ``center`` (3,) and radius ``radius``."""

    def __init__(self, center: Sequence[float], radius: float) -> None:
        self.center = _vec3(center, "center", "Sphere")
        self.radius = _pos(radius, "radius", "Sphere")
        self.bbox = np.stack([self.center - self.radius, self.center + self.radius])

    def __call__(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        c = self.center
        return _len3(x - float(c[0]), y - float(c[1]), z - float(c[2])) - self.radius

    def describe(self) -> dict[str, Any]:
        return {"type": "sphere", "center": self.center.tolist(), "radius": self.radius}


class Cylinder(SDF):
    """Capped (flat-ended) cylinder of radius ``radius`` whose axis runs from ``a`` to ``b`` (3,)."""

    def __init__(self, a: Sequence[float], b: Sequence[float], radius: float) -> None:
        self.frame = _Frame(_vec3(a, "a", "Cylinder"), _vec3(b, "b", "Cylinder"), "Cylinder")
        self.radius = _pos(radius, "radius", "Cylinder")
        f = self.frame
        ext = self.radius * f.disc_extent()
        self.bbox = np.stack([np.minimum(f.a, f.b) - ext, np.maximum(f.a, f.b) + ext])

    def __call__(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        f = self.frame
        t, rho = f.axial_radial(x, y, z)
        half = 0.5 * f.length
        qr = rho - self.radius
        qa = torch.abs(t - half) - half
        return _len2(_pos_part(qr), _pos_part(qa)) + torch.clamp(torch.maximum(qr, qa), max=0.0)

    def describe(self) -> dict[str, Any]:
        return {"type": "cylinder", "a": self.frame.a.tolist(), "b": self.frame.b.tolist(), "radius": self.radius}


class Cone(SDF):
    """Capped cone (frustum) along ``a`` -> ``b`` (3,), radius ``radius_a`` at ``a`` and
    ``radius_b`` at ``b`` (one of them may be 0: a pointed cone).

    The distance is the 2D distance, in the meridian half-plane (axial ``t``,
    radial ``rho``), to the trapezoid ``(0, 0), (ra, 0), (rb, L), (0, L)``:
    the nearest of its two caps and slanted side.  ``rounding > 0`` gives the
    set of points within ``rounding`` of that frustum (every edge rounded,
    the solid grows by ``rounding``); since the frustum is convex its exact
    distance is the frustum's minus ``rounding``.
    """

    def __init__(self, a: Sequence[float], b: Sequence[float], radius_a: float, radius_b: float,
                 rounding: float = 0.0) -> None:
        self.frame = _Frame(_vec3(a, "a", "Cone"), _vec3(b, "b", "Cone"), "Cone")
        self.ra = _pos(radius_a, "radius_a", "Cone", allow_zero=True)
        self.rb = _pos(radius_b, "radius_b", "Cone", allow_zero=True)
        self.rounding = _pos(rounding, "rounding", "Cone", allow_zero=True)
        if self.ra == 0 and self.rb == 0 and self.rounding == 0:
            raise V.fail("radius_a", "and radius_b cannot both be 0 (unless rounding > 0)", "Cone")
        f = self.frame
        da, db = self.ra * f.disc_extent(), self.rb * f.disc_extent()
        r = self.rounding
        self.bbox = np.stack([np.minimum(f.a - da, f.b - db) - r, np.maximum(f.a + da, f.b + db) + r])

    def __call__(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        f = self.frame
        t, rho = f.axial_radial(x, y, z)
        length, ra, rb = f.length, self.ra, self.rb
        cap_a = _len2(_pos_part(rho - ra), t)
        cap_b = _len2(_pos_part(rho - rb), t - length)
        # slanted side: segment (ra, 0) -> (rb, L) in the (rho, t) plane
        ex, ey = rb - ra, length
        wx, wy = rho - ra, t
        s = torch.clamp((wx * ex + wy * ey) / (ex * ex + ey * ey), 0.0, 1.0)
        side = _len2(wx - s * ex, wy - s * ey)
        d = torch.minimum(torch.minimum(cap_a, cap_b), side)
        # inside: 0 <= t <= L and rho <= ra + (rb - ra) t / L  (multiplied by L > 0)
        inside = (t >= 0) & (t <= length) & (rho * length - ra * length - ex * t <= 0)
        d = torch.where(inside, -d, d)
        return d - self.rounding if self.rounding > 0 else d

    def describe(self) -> dict[str, Any]:
        return {"type": "cone", "a": self.frame.a.tolist(), "b": self.frame.b.tolist(),
                "radius_a": self.ra, "radius_b": self.rb, "rounding": self.rounding}


class Torus(SDF):
    """Torus of centre ``center`` (3,), ring radius ``major`` and tube radius ``minor``
    (< ``major``), its symmetry axis along world axis ``axis`` ("x", "y" or "z")."""

    def __init__(self, center: Sequence[float], major: float, minor: float, axis: str = "y") -> None:
        self.center = _vec3(center, "center", "Torus")
        self.major = _pos(major, "major", "Torus")
        self.minor = _pos(minor, "minor", "Torus")
        if self.minor >= self.major:
            raise V.fail("minor", f"must be < major ({self.major}), got {self.minor}", "Torus")
        V.check_choice(axis, "axis", list(_AXES), fn="Torus")
        self.axis = axis
        k = _AXES.index(axis)
        ext = np.full(3, self.major + self.minor)
        ext[k] = self.minor
        self.bbox = np.stack([self.center - ext, self.center + ext])

    def __call__(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        c = self.center
        p = [x - float(c[0]), y - float(c[1]), z - float(c[2])]
        k = _AXES.index(self.axis)
        o = [p[i] for i in range(3) if i != k]
        return _len2(_len2(o[0], o[1]) - self.major, p[k]) - self.minor

    def describe(self) -> dict[str, Any]:
        return {"type": "torus", "center": self.center.tolist(), "major": self.major, "minor": self.minor,
                "axis": self.axis}


class Capsule(SDF):
    """Points within ``radius`` of the segment ``a`` -> ``b`` (3,) (``a == b``: a ball)."""

    def __init__(self, a: Sequence[float], b: Sequence[float], radius: float) -> None:
        self.a, self.b = _vec3(a, "a", "Capsule"), _vec3(b, "b", "Capsule")
        self.radius = _pos(radius, "radius", "Capsule")
        self.bbox = np.stack([np.minimum(self.a, self.b) - self.radius, np.maximum(self.a, self.b) + self.radius])

    def __call__(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        a, d = self.a, self.b - self.a
        px, py, pz = x - float(a[0]), y - float(a[1]), z - float(a[2])
        dd = float(d[0] * d[0] + d[1] * d[1] + d[2] * d[2])
        if dd == 0:
            return _len3(px, py, pz) - self.radius
        dx, dy, dz = (float(c) for c in d)
        s = torch.clamp((px * dx + py * dy + pz * dz) / dd, 0.0, 1.0)
        return _len3(px - s * dx, py - s * dy, pz - s * dz) - self.radius

    def describe(self) -> dict[str, Any]:
        return {"type": "capsule", "a": self.a.tolist(), "b": self.b.tolist(), "radius": self.radius}


class HalfSpace(SDF):
    """The half space ``coordinate >= offset`` (``keep="above"``) or ``<= offset``
    (``keep="below"``) of world axis ``axis``; meant for :class:`Intersection`."""

    def __init__(self, axis: str, offset: float, keep: str = "above") -> None:
        V.check_choice(axis, "axis", list(_AXES), fn="HalfSpace")
        V.check_choice(keep, "keep", ["above", "below"], fn="HalfSpace")
        self.axis, self.offset, self.keep = axis, V.check_float(offset, "offset", fn="HalfSpace"), keep
        k = _AXES.index(axis)
        self.bbox = np.array([[-np.inf] * 3, [np.inf] * 3])
        self.bbox[0 if keep == "above" else 1, k] = self.offset

    def __call__(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        c = (x, y, z)[_AXES.index(self.axis)]
        return self.offset - c if self.keep == "above" else c - self.offset

    def describe(self) -> dict[str, Any]:
        return {"type": "half_space", "axis": self.axis, "offset": self.offset, "keep": self.keep}


class Union(SDF):
    """Union of solids: ``min`` of the children."""

    def __init__(self, *children: SDF) -> None:
        if not children or not all(isinstance(c, SDF) for c in children):
            raise V.fail("children", "must be one or more SDF nodes", "Union")
        self.children = tuple(children)
        self.bbox = np.stack([np.min([c.bbox[0] for c in children], axis=0),
                              np.max([c.bbox[1] for c in children], axis=0)])

    def __call__(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        out = self.children[0](x, y, z)
        for c in self.children[1:]:
            out = torch.minimum(out, c(x, y, z))
        return out

    def describe(self) -> dict[str, Any]:
        return {"type": "union", "children": [c.describe() for c in self.children]}


class Intersection(SDF):
    """Intersection of solids: ``max`` of the children."""

    def __init__(self, *children: SDF) -> None:
        if not children or not all(isinstance(c, SDF) for c in children):
            raise V.fail("children", "must be one or more SDF nodes", "Intersection")
        self.children = tuple(children)
        self.bbox = np.stack([np.max([c.bbox[0] for c in children], axis=0),
                              np.min([c.bbox[1] for c in children], axis=0)])

    def __call__(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        out = self.children[0](x, y, z)
        for c in self.children[1:]:
            out = torch.maximum(out, c(x, y, z))
        return out

    def describe(self) -> dict[str, Any]:
        return {"type": "intersection", "children": [c.describe() for c in self.children]}


class Difference(SDF):
    """``a`` minus ``b``: ``max(a, -b)``."""

    def __init__(self, a: SDF, b: SDF) -> None:
        if not isinstance(a, SDF) or not isinstance(b, SDF):
            raise V.fail("a", "and b must be SDF nodes", "Difference")
        self.a, self.b = a, b
        self.bbox = a.bbox.copy()

    def __call__(self, x: Tensor, y: Tensor, z: Tensor) -> Tensor:
        return torch.maximum(self.a(x, y, z), -self.b(x, y, z))

    def describe(self) -> dict[str, Any]:
        return {"type": "difference", "a": self.a.describe(), "b": self.b.describe()}


# --------------------------------------------------------------------------- #
# Grid evaluation
# --------------------------------------------------------------------------- #


def _index_range(lo: float, hi: float, origin: float, step: float, n: int, start: int, stop: int) -> tuple[int, int]:
    """Indices ``[i0, i1)`` within ``[start, stop)`` of the samples ``origin + i * step`` in ``[lo, hi]``."""
    i0 = start if lo == -np.inf else max(start, int(np.ceil((lo - origin) / step)))
    i1 = stop if hi == np.inf else min(stop, int(np.floor((hi - origin) / step)) + 1)
    return i0, max(i0, i1)


def _eval_region(node: SDF, axes: tuple[Tensor, Tensor, Tensor], region: tuple[int, ...],
                 origin: np.ndarray, step: float, clamp: float) -> Tensor:
    """Values of ``node`` on the sub-grid ``region = (x0, x1, y0, y1, z0, z1)``, shape (z, y, x).

    Unions skip the samples outside each child's bounding box grown by
    ``clamp`` and put ``clamp`` there instead (see :func:`sample_grid`)."""
    x0, x1, y0, y1, z0, z1 = region
    if isinstance(node, Union):
        out = torch.full((z1 - z0, y1 - y0, x1 - x0), clamp, dtype=axes[0].dtype)
        sizes = (len(axes[0]), len(axes[1]), len(axes[2]))
        for child in node.children:
            lo, hi = child.bbox[0] - clamp, child.bbox[1] + clamp
            sub = []
            for k, (s, e) in enumerate(((x0, x1), (y0, y1), (z0, z1))):
                sub.extend(_index_range(lo[k], hi[k], float(origin[k]), step, sizes[k], s, e))
            if sub[0] == sub[1] or sub[2] == sub[3] or sub[4] == sub[5]:
                continue
            vals = _eval_region(child, axes, tuple(sub), origin, step, clamp)
            view = out[sub[4] - z0 : sub[5] - z0, sub[2] - y0 : sub[3] - y0, sub[0] - x0 : sub[1] - x0]
            torch.minimum(view, vals, out=view)
        return out
    x = axes[0][x0:x1].view(1, 1, -1)
    y = axes[1][y0:y1].view(1, -1, 1)
    z = axes[2][z0:z1].view(-1, 1, 1)
    val = node(x, y, z)
    return val.expand(z1 - z0, y1 - y0, x1 - x0)


def sample_grid(node: SDF, origin: Sequence[float], step: float, shape: tuple[int, int, int], *,
                clamp: float | None = None) -> Tensor:
    """Values of ``node`` at the samples ``origin + (i, j, k) * step`` of a ``(D, H, W)`` grid.

    Args:
        node: the solid.
        origin: x, y, z position of sample ``[0, 0, 0]``.
        step: distance between neighbouring samples (> 0).
        shape: ``(D, H, W)`` samples along z, y, x.
        clamp: if given (>= ``step``), the children of every :class:`Union`
            are evaluated only within their bounding box grown by ``clamp``;
            elsewhere they count as ``clamp``.  Because every node is
            1-Lipschitz and exact outside its box, this changes no value whose
            magnitude is at most ``clamp`` and keeps the sign (and magnitude
            >= ``clamp``) of every other value, so marching cubes with
            ``step <= clamp`` gives exactly the same mesh as a full
            evaluation.  None evaluates everything.

    Returns:
        ``(D, H, W)`` float64 tensor, ``grid[k, j, i]`` at ``(x_i, y_j, z_k)``.
    """
    o = _vec3(origin, "origin", "sample_grid")
    step = _pos(step, "step", "sample_grid")
    d, h, w = (V.check_int(s, "shape", min_value=1, fn="sample_grid") for s in shape)
    axes = tuple(float(o[k]) + step * torch.arange(n, dtype=torch.float64) for k, n in enumerate((w, h, d)))
    region = (0, w, 0, h, 0, d)
    if clamp is None:
        x, y, z = axes[0].view(1, 1, -1), axes[1].view(1, -1, 1), axes[2].view(-1, 1, 1)
        return node(x, y, z).expand(d, h, w).contiguous()
    clamp = _pos(clamp, "clamp", "sample_grid")
    if clamp < step:
        raise V.fail("clamp", f"must be >= step ({step}), got {clamp}", "sample_grid")
    return _eval_region(node, axes, region, o, step, clamp).contiguous()
