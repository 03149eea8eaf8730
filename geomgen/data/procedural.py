"""Procedural shapes: the geometry of the synthetic ``shapes`` dataset.

Ten categories (:data:`CATEGORIES`): six primitives (``box``, ``sphere``,
``cylinder``, ``cone``, ``torus``, ``capsule``) and four composites built from
primitives (``chair``, ``table``, ``lamp``, ``mug``).  Every shape is drawn from
a seed with random proportions and styles, built as a signed distance function
(a CSG tree of exact primitive SDFs, :mod:`geomgen.data.sdf_primitives`),
sampled on a grid and meshed with :func:`geomgen.ops.marching_cubes`.

Conventions
-----------
* **Frame.**  +Y up, objects upright as in ShapeNet; composites stand on
  ``y = min`` and face **+Z** (a chair's back is at -Z, a desk lamp's head
  points to +Z, a mug's handle is at +X).  No random rotation is applied: the
  orientation is canonical for every category (rotate the output yourself for
  augmentation).
* **Normalisation.**  The returned mesh's axis-aligned bounding box is
  centred at the origin and its longest edge is 1 (within float32 rounding):
  the mesh lies in ``[-0.5, 0.5]^3``.
* **Mesh.**  Closed, manifold (every edge shared by exactly two faces with
  opposite directions, one fan of faces around every vertex), consistently
  oriented with outward right-hand normals (positive volume), one connected
  component, no zero-area faces.  Parts overlap, every part is at least 2.5
  grid cells thick (tube radii at least 1.5 cells), the gaps a style designs
  (between chair slats or bars, under arm rests, inside a mug's handle) are
  at least 2.5 cells, and tilted parts have no sharp acute edges, so nothing
  breaks apart at any ``resolution``.  At low resolutions thin parts are
  therefore thickened: the only way the resolution changes the solid (at 64
  most chair and table legs sit at the 2.5-cell minimum).
* **Resolution.**  ``resolution`` is the number of grid cells across the
  shape's longest side (cell size ``h = longest side / resolution``); the
  grid has a margin of at least 2 cells and a random sub-cell offset drawn
  from the seed (so seeds also differ in tessellation, e.g. for ``sphere``,
  whose shape never changes).  Face counts grow like ``resolution^2``.
* **Determinism.**  An int ``seed`` gives the same mesh, bit for bit, on
  every run, whatever the thread count.  Across platforms it is designed to
  as well: parameters come from ``numpy.random.default_rng(seed).random()``
  (PCG64 doubles; stable across NumPy releases in practice, though NumPy
  does not promise it) combined with ``+ - * /`` and ``sqrt`` only (no
  trigonometry, no BLAS), and the SDF is evaluated element by element in
  float64 with those correctly rounded operations.  A
  ``numpy.random.Generator`` is consumed (draws advance it) and is
  reproducible only if you recreate it.

Proportions are sampled in model units, e.g. a chair seat 0.8-1.1 wide at a
height of 0.8-1.05, then the mesh is normalised.  :func:`describe` lists
the sampled parameters and the primitives of a shape; :func:`shape_sdf`
gives its signed distance in the frame of the normalised mesh.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from geomgen import checks as V
from geomgen.data.sdf_primitives import (
    SDF,
    Box,
    Capsule,
    Cone,
    Cylinder,
    Difference,
    HalfSpace,
    Intersection,
    Sphere,
    Torus,
    Union,
    sample_grid,
)

__all__ = ["CATEGORIES", "generate_shape", "shape_sdf", "describe"]

#: Procedural categories, in label order.
CATEGORIES: tuple[str, ...] = ("box", "sphere", "cylinder", "cone", "torus", "capsule",
                               "chair", "table", "lamp", "mug")

#: Accepted range of ``resolution`` (cells across the longest side).
MIN_RESOLUTION, MAX_RESOLUTION = 16, 256

#: Minimum slab thickness and gap, and minimum tube radius, in grid cells.
_MIN_THICK, _MIN_RADIUS = 2.5, 1.5
#: Grid samples at ``|sdf| < _SNAP * h`` are moved to ``+-_SNAP * h`` (sign kept) so that no mesh
#: vertex lands on a grid sample: coincident vertices would make zero-area triangles.
_SNAP = 1e-3

_SQRT5 = math.sqrt(5.0)
#: (x, z) unit directions at 0, 72, 144, 216, 288 degrees from +Z towards +X (sqrt only, no trig).
_STAR5 = ((0.0, 1.0), (math.sqrt(10 + 2 * _SQRT5) / 4, (_SQRT5 - 1) / 4),
          (math.sqrt(10 - 2 * _SQRT5) / 4, -(_SQRT5 + 1) / 4),
          (-math.sqrt(10 - 2 * _SQRT5) / 4, -(_SQRT5 + 1) / 4),
          (-math.sqrt(10 + 2 * _SQRT5) / 4, (_SQRT5 - 1) / 4))


# --------------------------------------------------------------------------- #
# Parameter sampling (resolution independent)
# --------------------------------------------------------------------------- #


class _Sampler:
    """Draws named parameters from ``rng.random()`` only and records them."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.params: dict[str, Any] = {}

    def _u(self) -> float:
        return float(self.rng.random())

    def uniform(self, name: str, lo: float, hi: float) -> float:
        v = lo + (hi - lo) * self._u()
        self.params[name] = v
        return v

    def chance(self, name: str, p: float) -> bool:
        v = self._u() < p
        self.params[name] = v
        return v

    def integer(self, name: str, lo: int, hi: int) -> int:
        """Uniform integer in ``[lo, hi]``."""
        v = lo + min(int(self._u() * (hi - lo + 1)), hi - lo)
        self.params[name] = v
        return v

    def choice(self, name: str, options: tuple[str, ...], weights: tuple[float, ...]) -> str:
        u, acc = self._u() * sum(weights), 0.0
        v = options[-1]
        for opt, w in zip(options, weights):
            acc += w
            if u < acc:
                v = opt
                break
        self.params[name] = v
        return v


def _sample_box(s: _Sampler) -> None:
    for ax in "xyz":
        s.uniform(f"half_{ax}", 0.25, 1.0)


def _sample_sphere(s: _Sampler) -> None:
    """The sphere has no free parameter (normalisation fixes its radius)."""


def _sample_cylinder(s: _Sampler) -> None:
    s.uniform("height", 0.3, 1.0)  # diameter 1
    s.chance("tall", 0.5)          # height -> 1 / height: 1 to 3.3 diameters


def _sample_cone(s: _Sampler) -> None:
    s.uniform("height", 0.5, 2.0)  # base radius 0.5
    if not s.chance("pointed", 0.5):
        s.uniform("top_radius", 0.05, 0.3)


def _sample_torus(s: _Sampler) -> None:
    s.uniform("minor", 0.075, 0.3)  # major radius 0.5


def _sample_capsule(s: _Sampler) -> None:
    s.uniform("length", 0.2, 3.0)  # radius 0.5, segment length


def _sample_chair(s: _Sampler) -> None:
    s.uniform("width", 0.8, 1.1)
    s.uniform("depth", 0.75, 1.05)
    s.uniform("seat_height", 0.8, 1.05)
    s.uniform("seat_thickness", 0.05, 0.12)
    base = s.choice("base", ("legs", "splayed", "swivel"), (0.6, 0.2, 0.2))
    if base == "swivel":
        s.uniform("column_radius", 0.03, 0.055)
        s.uniform("foot_reach", 0.3, 0.45)
        s.uniform("foot_radius", 0.02, 0.035)
        s.uniform("foot_height", 0.06, 0.12)
    else:
        if base == "legs":
            s.choice("leg_shape", ("square", "round"), (0.5, 0.5))
        else:
            s.uniform("splay", 0.03, 0.1)
        s.uniform("leg_thickness", 0.05, 0.1)
        s.uniform("leg_inset", 0.0, 0.06)
    s.uniform("back_height", 0.6, 1.1)
    s.uniform("back_thickness", 0.05, 0.1)
    s.uniform("back_tilt", 0.0, 0.25)
    s.uniform("back_width", 0.85, 1.0)
    style = s.choice("back_style", ("panel", "slats", "bars"), (0.45, 0.3, 0.25))
    if style != "panel":
        s.uniform("post_width", 0.05, 0.1)
        s.uniform("rail_fraction", 0.12, 0.3)
        s.integer("members", 1, 4) if style == "slats" else s.integer("members", 1, 3)
        s.uniform("member_width", 0.04, 0.1)
    if s.chance("arms", 0.3):
        s.uniform("arm_height", 0.18, 0.3)
        s.uniform("arm_width", 0.05, 0.09)
        s.uniform("arm_thickness", 0.04, 0.07)


def _sample_table(s: _Sampler) -> None:
    style = s.choice("style", ("legs", "pedestal"), (0.7, 0.3))
    s.uniform("height", 0.6, 0.95)
    s.uniform("top_thickness", 0.03, 0.08)
    top = s.choice("top", ("rect", "round"), (0.75, 0.25) if style == "legs" else (0.3, 0.7))
    if top == "rect":
        s.uniform("width", 1.2, 2.2) if style == "legs" else s.uniform("width", 0.8, 1.4)
        s.uniform("depth", 0.6, 1.2)
    else:
        s.uniform("radius", 0.45, 0.8) if style == "legs" else s.uniform("radius", 0.35, 0.7)
    if style == "legs":
        s.choice("leg_shape", ("square", "round"), (0.5, 0.5))
        s.uniform("leg_thickness", 0.04, 0.1)
        s.uniform("leg_inset", 0.0, 0.12)
        if top == "rect" and s.chance("apron", 0.5):
            s.uniform("apron_height", 0.06, 0.15)
            s.uniform("apron_thickness", 0.02, 0.04)
        if s.chance("stretchers", 0.3):
            s.uniform("stretcher_height", 0.1, 0.3)
            s.uniform("stretcher_thickness", 0.025, 0.05)
    else:
        s.uniform("column_radius", 0.04, 0.1)
        s.uniform("column_flare", 1.0, 1.8)
        foot = s.choice("foot", ("disc", "cross"), (0.5, 0.5))
        s.uniform("foot_reach", 0.45, 0.8)
        s.uniform("foot_thickness", 0.03, 0.07)
        if foot == "cross":
            s.uniform("foot_width", 0.05, 0.1)


def _sample_lamp(s: _Sampler) -> None:
    style = s.choice("style", ("standard", "desk"), (0.6, 0.4))
    s.choice("base_shape", ("disc", "square"), (0.7, 0.3))
    if style == "standard":
        s.uniform("base_radius", 0.15, 0.3)
        s.uniform("base_height", 0.03, 0.08)
        s.uniform("stem_radius", 0.012, 0.03)
        s.uniform("height", 0.7, 1.6)
        shade = s.choice("shade", ("cone", "drum"), (0.6, 0.4))
        s.uniform("shade_radius", 0.18, 0.4)
        s.uniform("shade_top", 0.35, 0.8) if shade == "cone" else s.uniform("shade_top", 0.9, 1.0)
        s.uniform("shade_height", 0.2, 0.45)
        if s.chance("hollow", 0.5):
            s.uniform("shade_wall", 0.01, 0.025)
    else:
        s.uniform("base_radius", 0.12, 0.22)
        s.uniform("base_height", 0.03, 0.07)
        s.uniform("arm_radius", 0.012, 0.025)
        s.uniform("joint_scale", 1.3, 1.8)
        s.uniform("lower_length", 0.45, 0.75)
        s.uniform("lower_lean", -0.5, 0.2)
        s.uniform("upper_length", 0.35, 0.65)
        s.uniform("upper_rise", -0.1, 0.5)
        s.uniform("head_length", 0.12, 0.22)
        s.uniform("head_radius_small", 0.025, 0.05)
        s.uniform("head_radius", 0.08, 0.15)
        s.uniform("head_pitch", 0.0, 0.8)


def _sample_mug(s: _Sampler) -> None:
    s.uniform("radius", 0.3, 0.45)
    s.uniform("taper", 0.8, 1.0)
    s.uniform("height", 0.55, 1.1)
    s.uniform("wall", 0.025, 0.05)
    s.uniform("bottom", 0.04, 0.09)
    s.uniform("handle_height", 0.4, 0.6)
    s.uniform("handle_size", 0.5, 0.9)
    s.uniform("handle_radius", 0.02, 0.045)
    s.uniform("handle_offset", 0.0, 0.5)


# --------------------------------------------------------------------------- #
# Building (model units; thin parts clamped to the grid cell size h)
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class _Lim:
    h: float

    def slab(self, t: float) -> float:
        """A thickness or gap of at least 2.5 cells."""
        return max(t, _MIN_THICK * self.h)

    def rad(self, r: float) -> float:
        """A tube radius of at least 1.5 cells."""
        return max(r, _MIN_RADIUS * self.h)


Parts = list[tuple[str, SDF]]


def _unit(x: float, y: float, z: float) -> np.ndarray:
    n = math.sqrt(x * x + y * y + z * z)
    return np.array([x / n, y / n, z / n])


def _build_box(p: dict, lim: _Lim) -> Parts:
    return [("box", Box((0, 0, 0), (p["half_x"], p["half_y"], p["half_z"])))]


def _build_sphere(p: dict, lim: _Lim) -> Parts:
    return [("sphere", Sphere((0, 0, 0), 0.5))]


def _build_cylinder(p: dict, lim: _Lim) -> Parts:
    hgt = 1.0 / p["height"] if p["tall"] else p["height"]
    return [("cylinder", Cylinder((0, 0, 0), (0, hgt, 0), 0.5))]


def _build_cone(p: dict, lim: _Lim) -> Parts:
    top = 0.0 if p["pointed"] else p["top_radius"]
    return [("cone", Cone((0, 0, 0), (0, p["height"], 0), 0.5, top))]


def _build_torus(p: dict, lim: _Lim) -> Parts:
    return [("torus", Torus((0, 0, 0), 0.5, min(lim.rad(p["minor"]), 0.45), "y"))]


def _build_capsule(p: dict, lim: _Lim) -> Parts:
    return [("capsule", Capsule((0, 0, 0), (0, p["length"], 0), 0.5))]


def _leg(name: str, shape: str, top: np.ndarray, bottom: np.ndarray, t: float, lim: _Lim) -> tuple[str, SDF]:
    """A leg of thickness/diameter ``t`` from ``bottom`` to ``top`` (square legs are vertical)."""
    if shape == "square":
        half = 0.5 * (top[1] - bottom[1])
        return name, Box((top[0], bottom[1] + half, top[2]), (t / 2, half, t / 2))
    return name, Cylinder(bottom, top, lim.rad(t / 2))


def _build_chair(p: dict, lim: _Lim) -> Parts:
    W, D, Hs = p["width"], p["depth"], p["seat_height"]
    ts = lim.slab(p["seat_thickness"])
    mid = Hs - ts / 2  # seat mid-plane: legs and back reach into the seat up/down to here
    parts: Parts = [("seat", Box((0, mid, 0), (W / 2, ts / 2, D / 2)))]
    if p["base"] == "swivel":
        fr = lim.rad(p["foot_radius"])
        hub_y = max(p["foot_height"], fr * 1.5)
        col_r = lim.rad(p["column_radius"])
        parts.append(("column", Cylinder((0, hub_y, 0), (0, mid, 0), col_r)))
        parts.append(("hub", Sphere((0, hub_y, 0), max(col_r, fr) * 1.3)))
        reach = p["foot_reach"]
        for k, (dx, dz) in enumerate(_STAR5):
            parts.append((f"foot{k}", Capsule((0, hub_y, 0), (reach * dx, fr, reach * dz), fr)))
    else:
        t = lim.slab(p["leg_thickness"])
        shape = "round" if p["base"] == "splayed" else p["leg_shape"]
        splay = p.get("splay", 0.0)
        xl, zl = W / 2 - p["leg_inset"] - t / 2, D / 2 - p["leg_inset"] - t / 2
        for sx in (-1, 1):
            for sz in (-1, 1):
                top = np.array([sx * xl, mid, sz * zl])
                bottom = np.array([sx * (xl + splay), 0.0, sz * (zl + splay)])
                parts.append(_leg(f"leg{'lr'[sx > 0]}{'bf'[sz > 0]}", shape, top, bottom, t, lim))
    # back: boxes in a frame tilted backwards (towards -z) by back_tilt (dz per unit of height)
    tilt = p["back_tilt"]
    up, normal = _unit(0, 1, -tilt), _unit(0, tilt, 1)
    frame = np.stack([np.array([1.0, 0, 0]), up, normal])
    tb = lim.slab(p["back_thickness"])
    bw = W * p["back_width"]
    zb = -D / 2 + tb / 2
    base = np.array([0.0, mid, zb])
    length = (Hs - mid + p["back_height"]) / up[1]

    def back_box(name: str, x: float, s0: float, s1: float, half_w: float, half_t: float) -> None:
        c = base + np.array([x, 0, 0]) + up * (0.5 * (s0 + s1))
        parts.append((name, Box(c, (half_w, 0.5 * (s1 - s0), half_t), axes=frame)))

    style = p["back_style"]
    if style == "panel":
        back_box("back", 0.0, 0.0, length, bw / 2, tb / 2)
    else:
        pw = lim.slab(p["post_width"])
        gap = lim.slab(0.0)
        rail = max(lim.slab(0.0), p["rail_fraction"] * length)
        for sx in (-1, 1):
            back_box(f"post{'lr'[sx > 0]}", sx * (bw / 2 - pw / 2), 0.0, length, pw / 2, tb / 2)
        back_box("rail", 0.0, length - rail, length, bw / 2, tb / 2)
        mw = lim.slab(p["member_width"])
        if style == "slats":  # vertical slats between the posts, evenly spaced
            span = bw - 2 * pw
            n = min(p["members"], int((span - gap) // (mw + gap)))
            for k in range(max(n, 0)):
                x = -span / 2 + (k + 1) * span / (n + 1)
                back_box(f"slat{k}", x, 0.0, length - rail / 2, mw / 2, lim.slab(0.6 * tb) / 2)
        else:  # horizontal bars between seat top and rail
            s_lo, s_hi = (Hs - mid) / up[1], length - rail
            n = min(p["members"], int((s_hi - s_lo - gap) // (mw + gap)))
            for k in range(max(n, 0)):
                s = s_lo + (k + 1) * (s_hi - s_lo) / (n + 1)
                back_box(f"bar{k}", 0.0, s - mw / 2, s + mw / 2, bw / 2 - pw / 2, lim.slab(0.6 * tb) / 2)
    if p["arms"]:
        aw, at = lim.slab(p["arm_width"]), lim.slab(p["arm_thickness"])
        ya = Hs + max(p["arm_height"], at / 2 + lim.slab(0.0))
        z_back = zb - tilt * (ya - mid)  # back mid-plane at the arm's height
        z_front = D / 2 - aw / 2
        for sx in (-1, 1):
            x = sx * (W / 2 - aw / 2)
            side = "lr"[sx > 0]
            parts.append((f"arm{side}", Box((x, ya, 0.5 * (z_back + z_front)),
                                            (aw / 2, at / 2, 0.5 * (z_front - z_back) + aw / 2))))
            parts.append((f"arm_post{side}", Box((x, 0.5 * (mid + ya), z_front), (aw / 2, 0.5 * (ya - mid), aw / 2))))
    return parts


def _build_table(p: dict, lim: _Lim) -> Parts:
    H = p["height"]
    tt = lim.slab(p["top_thickness"])
    mid = H - tt / 2
    rect = p["top"] == "rect"
    if rect:
        W, D = p["width"], p["depth"]
        parts: Parts = [("top", Box((0, mid, 0), (W / 2, tt / 2, D / 2)))]
    else:
        R = p["radius"]
        parts = [("top", Cylinder((0, H - tt, 0), (0, H, 0), R))]
    if p["style"] == "pedestal":
        reach = p["foot_reach"] * (min(W, D) / 2 if rect else R)
        ft = lim.slab(p["foot_thickness"])
        cr = lim.rad(p["column_radius"])
        parts.append(("column", Cone((0, ft / 2, 0), (0, mid, 0), max(cr * p["column_flare"], cr), cr)))
        if p["foot"] == "disc":
            parts.append(("foot", Cylinder((0, 0, 0), (0, ft, 0), max(reach, cr * 2))))
        else:
            fw = lim.slab(p["foot_width"])
            parts.append(("foot_x", Box((0, ft / 2, 0), (reach, ft / 2, fw / 2))))
            parts.append(("foot_z", Box((0, ft / 2, 0), (fw / 2, ft / 2, reach))))
        return parts
    t = lim.slab(p["leg_thickness"])
    inset = p["leg_inset"]
    if rect:
        xl, zl = W / 2 - inset - t / 2, D / 2 - inset - t / 2
    else:
        xl = zl = (R - inset - t) / math.sqrt(2.0)
    for sx in (-1, 1):
        for sz in (-1, 1):
            top, bottom = np.array([sx * xl, mid, sz * zl]), np.array([sx * xl, 0.0, sz * zl])
            parts.append(_leg(f"leg{'lr'[sx > 0]}{'bf'[sz > 0]}", p["leg_shape"], top, bottom, t, lim))
    if p.get("apron"):
        ah, at = max(p["apron_height"], tt), lim.slab(p["apron_thickness"])
        yc, hh = 0.5 * (mid + H - tt - ah), 0.5 * (mid - (H - tt - ah))
        for sz in (-1, 1):
            parts.append((f"apron{'bf'[sz > 0]}", Box((0, yc, sz * zl), (xl, hh, at / 2))))
        for sx in (-1, 1):
            parts.append((f"apron{'lr'[sx > 0]}", Box((sx * xl, yc, 0), (at / 2, hh, zl))))
    if p.get("stretchers"):
        st = lim.slab(p["stretcher_thickness"])
        ys = max(p["stretcher_height"] * H, st)
        if rect:  # H-shaped: one along z under each side, one along x joining them
            for sx in (-1, 1):
                parts.append((f"stretcher{'lr'[sx > 0]}", Box((sx * xl, ys, 0), (st / 2, st / 2, zl))))
            parts.append(("stretcher_mid", Box((0, ys, 0), (xl, st / 2, st / 2))))
        else:  # X-shaped along the diagonals
            r2 = 1 / math.sqrt(2.0)
            for k, axes in enumerate((((r2, 0, r2), (0, 1, 0), (-r2, 0, r2)), ((r2, 0, -r2), (0, 1, 0), (r2, 0, r2)))):
                parts.append((f"stretcher{k}", Box((0, ys, 0), (xl * math.sqrt(2.0), st / 2, st / 2), axes=axes)))
    return parts


def _lamp_base(p: dict, lim: _Lim) -> tuple[float, tuple[str, SDF]]:
    hb, rb = lim.slab(p["base_height"]), p["base_radius"]
    if p["base_shape"] == "disc":
        return hb, ("base", Cylinder((0, 0, 0), (0, hb, 0), rb))
    return hb, ("base", Box((0, hb / 2, 0), (rb, hb / 2, rb)))


def _build_lamp(p: dict, lim: _Lim) -> Parts:
    hb, base = _lamp_base(p, lim)
    parts: Parts = [base]
    if p["style"] == "desk":
        ar = lim.rad(p["arm_radius"])
        p0 = np.array([0.0, hb / 2, 0.0])
        p1 = p0 + _unit(0, 1, p["lower_lean"]) * p["lower_length"]
        p2 = p1 + _unit(0, p["upper_rise"], 1) * p["upper_length"]
        d3 = _unit(0, -1, p["head_pitch"])
        # the head is tilted: its rim is rounded (radius >= 1.5 cells), since a sharp acute rim
        # that is not aligned with the grid can shed isolated samples (stray mesh fragments)
        rr = lim.rad(0.01)
        r_small = max(lim.rad(p["head_radius_small"]), ar)
        r_big = max(p["head_radius"], r_small)
        length = max(p["head_length"] - 2 * rr, 0.3 * p["head_length"])
        a = p2 - d3 * (ar - rr)
        parts += [("lower_arm", Capsule(p0, p1, ar)), ("elbow", Sphere(p1, ar * p["joint_scale"])),
                  ("upper_arm", Capsule(p1, p2, ar)),
                  ("head", Cone(a, a + d3 * length, max(r_small - rr, 0.0), max(r_big - rr, 0.0), rounding=rr))]
        return parts
    H = hb + p["height"]
    hs = min(p["shade_height"], 0.6 * p["height"])
    rb_ = p["shade_radius"]
    rt_ = rb_ * p["shade_top"]
    y0 = H - hs
    outer = Cone((0, y0, 0), (0, H, 0), rb_, rt_)
    shade: SDF = outer
    stem_top = H - hs / 2
    if p["hollow"]:
        w = lim.slab(p["shade_wall"])
        offset = w * math.sqrt(hs * hs + (rb_ - rt_) ** 2) / hs  # radial offset giving normal thickness w
        lo, hi = y0 - 2 * w, H - w

        def r_in(y: float) -> float:
            return rb_ + (rt_ - rb_) * (y - y0) / hs - offset

        if r_in(hi) >= lim.slab(0.0) and hi - y0 >= 2 * w:
            shade = Difference(outer, Cone((0, lo, 0), (0, hi, 0), r_in(lo), r_in(hi)))
            stem_top = H - w / 2
    parts.append(("stem", Cylinder((0, hb / 2, 0), (0, stem_top, 0), lim.rad(p["stem_radius"]))))
    parts.append(("shade", shade))
    return parts


def _build_mug(p: dict, lim: _Lim) -> Parts:
    R, H = p["radius"], p["height"]
    rb = R * p["taper"]
    w, bt, hr = lim.slab(p["wall"]), lim.slab(p["bottom"]), lim.rad(p["handle_radius"])
    gap = lim.slab(0.0)

    def r_out(y: float) -> float:
        return rb + (R - rb) * y / H

    offset = w * math.sqrt(H * H + (R - rb) ** 2) / H
    top = H + 2 * w  # the cavity pokes out of the rim: open top
    cavity = Cone((0, bt, 0), (0, top, 0), r_out(bt) - offset, r_out(top) - offset)
    body = Cone((0, 0, 0), (0, H, 0), rb, R)
    yc = H * p["handle_height"]
    a_max = min(yc - bt, H - yc) - hr - gap
    a = max(a_max * p["handle_size"], hr + gap)
    ring = Torus((r_out(yc) + a * p["handle_offset"], yc, 0), a, hr, "z")
    handle = Intersection(ring, HalfSpace("x", 0.0, "above"))
    return [("mug", Difference(Union(body, handle), cavity))]


_SAMPLERS: dict[str, Callable[[_Sampler], None]] = {
    "box": _sample_box, "sphere": _sample_sphere, "cylinder": _sample_cylinder, "cone": _sample_cone,
    "torus": _sample_torus, "capsule": _sample_capsule, "chair": _sample_chair, "table": _sample_table,
    "lamp": _sample_lamp, "mug": _sample_mug,
}
_BUILDERS: dict[str, Callable[[dict, _Lim], Parts]] = {
    "box": _build_box, "sphere": _build_sphere, "cylinder": _build_cylinder, "cone": _build_cone,
    "torus": _build_torus, "capsule": _build_capsule, "chair": _build_chair, "table": _build_table,
    "lamp": _build_lamp, "mug": _build_mug,
}


# --------------------------------------------------------------------------- #
# Pipeline
# --------------------------------------------------------------------------- #


@dataclass
class _Plan:
    """Everything about one shape except its mesh."""

    category: str
    seed: int | None
    resolution: int
    params: dict[str, Any]
    parts: Parts
    tree: SDF
    h: float              # grid cell size, model units
    origin: np.ndarray    # (3,) xyz of grid sample [0, 0, 0], model units
    shape: tuple[int, int, int]  # (D, H, W)
    jitter: np.ndarray    # (3,) sub-cell grid offset in cells, in [0, 1)


def _check_category(category: Any, fn: str) -> str:
    if not isinstance(category, str):
        raise V.fail("category", f"must be a string, one of {list(CATEGORIES)}, got {type(category).__name__}", fn)
    if category not in CATEGORIES:
        close = difflib.get_close_matches(category.lower().strip(), CATEGORIES, n=2, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise V.fail("category", f"must be one of {list(CATEGORIES)}, got {category!r}{hint}", fn)
    return category


def _rng(seed: Any, fn: str) -> tuple[np.random.Generator, int | None]:
    if isinstance(seed, np.random.Generator):
        return seed, None
    seed = V.check_int(seed, "seed", min_value=0, fn=fn)
    return np.random.default_rng(seed), seed


def _extent(tree: SDF) -> float:
    lo, hi = tree.bbox
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):  # pragma: no cover - builders are bounded
        raise RuntimeError("procedural shape with an unbounded bounding box")
    return float((hi - lo).max())


def _plan(category: Any, seed: Any, resolution: Any, fn: str) -> _Plan:
    category = _check_category(category, fn)
    resolution = V.check_int(resolution, "resolution", min_value=MIN_RESOLUTION, max_value=MAX_RESOLUTION, fn=fn)
    rng, seed_int = _rng(seed, fn)
    sampler = _Sampler(rng)
    _SAMPLERS[category](sampler)
    jitter = np.array([sampler._u() for _ in range(3)])
    params, build = sampler.params, _BUILDERS[category]
    # Thin parts are clamped to a multiple of the cell size h = extent / resolution, and
    # clamping can grow the extent: iterate to a fixed point (h only grows, by a factor
    # < 1 + 2.5 / resolution per step), then use a cell no larger than the clamps assumed.
    h = _extent(Union(*(n for _, n in build(params, _Lim(0.0))))) / resolution
    for _ in range(50):
        parts = build(params, _Lim(h))
        tree = parts[0][1] if len(parts) == 1 else Union(*(n for _, n in parts))
        h_new = _extent(tree) / resolution
        if h_new <= h:
            break
        h = h_new * (1 + 1e-6)
    h = h_new
    lo, hi = tree.bbox
    counts = np.ceil((hi - lo) / h).astype(np.int64) + 6
    origin = lo - (2.0 + jitter) * h  # >= 2 cells of margin on every side
    return _Plan(category, seed_int, resolution, params, parts, tree, h, origin,
                 (int(counts[2]), int(counts[1]), int(counts[0])), jitter)


def _mesh(plan: _Plan) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Marching cubes of the plan: normalised verts (V, 3) float64, faces, bbox centre (3,), scale."""
    from geomgen.ops.marching_cubes import marching_cubes

    h = plan.h
    grid = sample_grid(plan.tree, plan.origin, h, plan.shape, clamp=2.0 * h)
    eps = _SNAP * h
    grid = torch.where(grid.abs() < eps, torch.where(grid <= 0, -eps, eps), grid)
    with torch.no_grad():
        mesh = marching_cubes(grid, kind="sdf", spacing=h, origin=torch.from_numpy(plan.origin))
    verts, faces = mesh.verts_list()[0], mesh.faces_list()[0]
    lo, hi = verts.min(0).values, verts.max(0).values
    centre = 0.5 * (lo + hi)
    scale = float((hi - lo).max())
    return (verts - centre) / scale, faces, centre, scale


def generate_shape(category: str, seed: int | np.random.Generator, *, resolution: int = 64
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mesh of one procedural shape.

    Args:
        category: one of :data:`CATEGORIES`.
        seed: int >= 0 (reproducible: same seed, same mesh, bit for bit) or a
            ``numpy.random.Generator`` (consumed).
        resolution: marching-cubes cells across the shape's longest side,
            16 to 256.  Faces grow like ``resolution^2``; medians at 64 (max
            over 100-300 seeds): lamp 9k (35k), chair 13k (21k), capsule 13k
            (31k), table 18k (29k), cone 22k (38k), torus 24k (28k), box 29k
            (48k), cylinder 34k (46k), sphere 39k, mug 44k (55k); at 40 about
            0.4 times that.

    Returns:
        ``verts`` (V, 3) float32 and ``faces`` (F, 3) int64: a closed,
        manifold, outward-oriented, connected triangle mesh without
        zero-area faces, +Y up, bounding box centred at the origin with
        longest edge 1 (see the module docstring).

    Raises:
        InvalidInputError: unknown ``category`` (with a suggestion), a
            ``seed`` that is not an int >= 0 or a Generator, a ``resolution``
            that is not an int in ``[16, 256]``.
    """
    plan = _plan(category, seed, resolution, "generate_shape")
    verts, faces, _, _ = _mesh(plan)
    return verts.to(torch.float32), faces


def shape_sdf(category: str, seed: int | np.random.Generator, *, resolution: int = 64
              ) -> Callable[[torch.Tensor], torch.Tensor]:
    """Signed distance function of the shape :func:`generate_shape` returns for the same arguments.

    The function maps points ``(M, 3)`` (any float dtype, any device) in the
    frame of the normalised mesh to signed distances ``(M,)`` in the same
    units (negative inside), computed in float64 and returned in the points'
    dtype.  It is the analytic solid the mesh approximates: the two agree in
    sign away from the surface and differ by marching cubes' chord error
    (a small fraction of a cell) near it; distances are exact near most of the
    surface and lower bounds elsewhere (CSG, see
    :mod:`geomgen.data.sdf_primitives`).  Building it runs the mesh generation
    once (to find the normalisation).  Same arguments and errors as
    :func:`generate_shape` (a Generator ``seed`` is consumed).
    """
    plan = _plan(category, seed, resolution, "shape_sdf")
    _, _, centre, scale = _mesh(plan)
    tree = plan.tree
    c = centre.to(torch.float64)

    def sdf(points: torch.Tensor) -> torch.Tensor:
        V.check_tensor(points, "points", ndim=2, shape=(None, 3), shape_desc="(M, 3)", floating=True,
                       fn="shape_sdf")
        p = points.detach().to(dtype=torch.float64) * scale + c.to(points.device)
        return (tree.points(p) / scale).to(points.dtype)

    sdf.__doc__ = f"Signed distance of procedural {plan.category!r} (seed {plan.seed}, resolution {plan.resolution})."
    return sdf


def describe(category: str, seed: int | np.random.Generator, *, resolution: int = 64) -> dict[str, Any]:
    """The sampled parameters and the primitives of a shape (cheap: no meshing).

    Returns a JSON-able dict: ``category``, ``seed`` (None for a Generator),
    ``resolution``, ``params`` (the resolution-independent draws: sizes,
    styles, counts, model units), ``parts`` (list of ``{"name", "type",
    ...}`` primitives or CSG trees in model units, +Y up, after thin parts
    were thickened for this resolution), ``bbox`` ([lo, hi] of the solid,
    model units), ``cell_size`` (grid cell, model units), ``grid_offset``
    (sub-cell offset of the grid, in cells).  The mesh of
    :func:`generate_shape` is this solid translated and scaled so that its
    own bounding box is centred with longest edge 1.
    """
    plan = _plan(category, seed, resolution, "describe")
    return {
        "category": plan.category,
        "seed": plan.seed,
        "resolution": plan.resolution,
        "params": dict(plan.params),
        "parts": [{"name": name, **node.describe()} for name, node in plan.parts],
        "bbox": plan.tree.bbox.tolist(),
        "cell_size": plan.h,
        "grid_offset": plan.jitter.tolist(),
    }
