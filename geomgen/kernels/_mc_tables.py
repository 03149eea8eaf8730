"""Marching-cubes case tables, generated at import time from a face-pairing rule.

Nothing here is copied from a published table: the 256 cases are derived by
walking polygons on the cube surface, so closedness and orientation follow
from the construction and are re-checked by :func:`verify_tables`.

Cube layout
-----------
Corner ``c`` (0..7) sits at ``(x, y, z) = (c & 1, (c >> 1) & 1, (c >> 2) & 1)``;
bit ``c`` of a configuration is set when that corner is *inside*.

Edge ``e = 4 * axis + b0 + 2 * b1`` (axis 0 = x, 1 = y, 2 = z) runs along
``axis`` from its lower corner; ``b0``/``b1`` are the cube coordinates of the
two other axes in increasing axis order (x-edges: ``(y, z)``, y-edges:
``(x, z)``, z-edges: ``(x, y)``).  The lower corner of edge ``e`` is therefore
the cube-relative offset :data:`EDGE_OFFSET` ``[e]`` (x, y, z order).

Face ``f = 2 * axis + side`` is the cube face at ``coord[axis] == side``.

Construction of one case
------------------------
1. On each face the crossed edges (endpoints on different sides) are paired
   into segments.  A face has 0, 2 or 4 crossed edges.  With 4 (the two inside
   corners are diagonal, "ambiguous face"), each inside corner is cut off on
   its own: the two crossed edges meeting at an inside corner form a segment.
   The rule reads only the face's 4 corner signs, so the two cubes sharing a
   face always pair its edges identically (checked for every face pattern).
   This is the "separate the inside corners" choice: on ambiguous faces the
   outside region is connected and two inside regions never merge.
2. Each segment is directed so that, seen from outside the cube, the inside
   part of the face lies on its right: ``((q - p) x (c - p)) . n_f < 0`` with
   ``c`` an inside corner on the segment's side and ``n_f`` the face's outward
   normal.  Every crossed edge then has exactly one incoming and one outgoing
   segment, and following the segments gives closed polygons.
3. Each polygon is triangulated (any triangulation of the polygon, chosen
   for shape quality) using only diagonals between edges that do *not* share
   a cube face.  Such a diagonal can never coincide with an edge of a
   neighbouring cube, so every interior triangle edge is used by exactly two
   triangles; the polygon's sides are the face segments, which the neighbour
   across the face traverses in the opposite direction.  Hence the surface is
   closed and consistently oriented wherever it does not reach the volume
   boundary.
4. Triangles follow the polygon's direction, which makes their right-hand
   normals point from the inside corners to the outside ones ("outward").
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "CORNERS",
    "EDGE_CORNERS",
    "EDGE_AXIS",
    "EDGE_OFFSET",
    "FACE_CORNERS",
    "FACE_EDGES",
    "MCTables",
    "mc_tables",
    "case_polygons",
    "face_pairing",
    "verify_tables",
    "all_triangulation_sizes",
]

#: (8, 3) corner positions (x, y, z) of the unit cube.
CORNERS = np.array([[c & 1, (c >> 1) & 1, (c >> 2) & 1] for c in range(8)], dtype=np.int64)


def _edge_list() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    corners = np.zeros((12, 2), dtype=np.int64)
    axis = np.zeros(12, dtype=np.int64)
    offset = np.zeros((12, 3), dtype=np.int64)
    for a in range(3):
        others = [o for o in range(3) if o != a]
        for b in range(4):
            e = 4 * a + b
            lo = [0, 0, 0]
            lo[others[0]] = b & 1
            lo[others[1]] = (b >> 1) & 1
            hi = list(lo)
            hi[a] = 1
            corners[e] = (lo[0] + 2 * lo[1] + 4 * lo[2], hi[0] + 2 * hi[1] + 4 * hi[2])
            axis[e] = a
            offset[e] = lo
    return corners, axis, offset


#: (12, 2) corner indices (lower, upper) of each edge.
#: (12,) axis of each edge; (12, 3) lower-corner offset of each edge.
EDGE_CORNERS, EDGE_AXIS, EDGE_OFFSET = _edge_list()

#: (6, 4) corners of face ``2 * axis + side``; (6, 4) its edges.
FACE_CORNERS = np.array(
    [[c for c in range(8) if CORNERS[c, f // 2] == f % 2] for f in range(6)], dtype=np.int64
)
FACE_EDGES = np.array(
    [
        [e for e in range(12) if all(CORNERS[c, f // 2] == f % 2 for c in EDGE_CORNERS[e])]
        for f in range(6)
    ],
    dtype=np.int64,
)

_MID = (CORNERS[EDGE_CORNERS[:, 0]] + CORNERS[EDGE_CORNERS[:, 1]]).astype(np.float64) / 2.0
_MID_L = _MID.tolist()
_CORNERS_L = CORNERS.tolist()
_EDGE_FACES = [set(int(f) for f in range(6) if e in FACE_EDGES[f]) for e in range(12)]


def face_pairing(config: int, face: int) -> list[tuple[int, int]]:
    """Directed segments ``(from_edge, to_edge)`` on one face for a configuration.

    The pairing depends only on the face's 4 corner signs (see module docstring).
    """
    inside = [(config >> c) & 1 for c in range(8)]
    edges = [int(e) for e in FACE_EDGES[face] if inside[EDGE_CORNERS[e, 0]] != inside[EDGE_CORNERS[e, 1]]]
    if not edges:
        return []
    in_corners = [int(c) for c in FACE_CORNERS[face] if inside[c]]
    pairs: list[tuple[int, int, int]] = []  # (edge, edge, an inside corner on the cut-off side)
    if len(edges) == 2:
        pairs.append((edges[0], edges[1], in_corners[0]))
    else:  # 4 crossed edges: two diagonal inside corners, cut each one off
        for c in in_corners:
            at_c = [e for e in edges if c in EDGE_CORNERS[e]]
            pairs.append((at_c[0], at_c[1], c))
    a = face // 2
    sign = 1.0 if face % 2 else -1.0  # outward normal of the face is sign * e_a
    u_ax, v_ax = (a + 1) % 3, (a + 2) % 3  # e_u x e_v = e_a
    out = []
    for e0, e1, c in pairs:
        p, q, r = _MID_L[e0], _MID_L[e1], _CORNERS_L[c]
        d = (q[u_ax] - p[u_ax], q[v_ax] - p[v_ax])
        w = (r[u_ax] - p[u_ax], r[v_ax] - p[v_ax])
        s = sign * (d[0] * w[1] - d[1] * w[0])  # ((q - p) x (c - p)) . n_f
        out.append((e0, e1) if s < 0 else (e1, e0))
    return out


def case_polygons(config: int) -> list[list[int]]:
    """Closed polygons (lists of edges, in outward-oriented order) of a configuration."""
    nxt: dict[int, int] = {}
    for f in range(6):
        for a, b in face_pairing(config, f):
            if a in nxt:
                raise AssertionError(f"case {config}: edge {a} has two outgoing segments")
            nxt[a] = b
    loops = []
    todo = sorted(nxt)
    seen: set[int] = set()
    for start in todo:
        if start in seen:
            continue
        loop = [start]
        seen.add(start)
        e = nxt[start]
        while e != start:
            if e in seen or e not in nxt:
                raise AssertionError(f"case {config}: segments do not close at edge {e}")
            loop.append(e)
            seen.add(e)
            e = nxt[e]
        loops.append(loop)
    return loops


def _cofacial(a: int, b: int) -> bool:
    return bool(_EDGE_FACES[a] & _EDGE_FACES[b])


@functools.lru_cache(maxsize=None)
def _triangulations_cached(n: int) -> list[list[tuple[int, int, int]]]:
    return _triangulations(n)


def _triangulations(n: int) -> list[list[tuple[int, int, int]]]:
    """All triangulations of a convex n-gon with vertices 0..n-1 (as index triples, CCW kept)."""

    @functools.lru_cache(maxsize=None)
    def rec(i: int, j: int) -> tuple[tuple[tuple[int, int, int], ...], ...]:
        if j - i < 2:
            return ((),)
        res = []
        for k in range(i + 1, j):
            for left in rec(i, k):
                for right in rec(k, j):
                    res.append(left + ((i, k, j),) + right)
        return tuple(res)

    return [list(t) for t in rec(0, n - 1)]


@functools.lru_cache(maxsize=None)
def _min_angle(tri: tuple[int, int, int]) -> float:
    """Smallest angle of the triangle through the midpoints of three edges."""
    p = [_MID[e].tolist() for e in tri]
    best = math.pi
    for k in range(3):
        o, a, b = p[k], p[(k + 1) % 3], p[(k + 2) % 3]
        u = [a[d] - o[d] for d in range(3)]
        v = [b[d] - o[d] for d in range(3)]
        dot = sum(u[d] * v[d] for d in range(3))
        nu = math.sqrt(sum(x * x for x in u))
        nv = math.sqrt(sum(x * x for x in v))
        best = min(best, math.acos(max(-1.0, min(1.0, dot / (nu * nv)))))
    return best


def _triangulate(loop: list[int]) -> list[tuple[int, int, int]]:
    n = len(loop)
    if n == 3:
        return [tuple(loop)]  # type: ignore[list-item]
    best_key = None
    best: list[tuple[int, int, int]] = []
    for tris in _triangulations_cached(n):
        diags = set()
        for a, b, c in tris:
            for u, v in ((a, b), (b, c), (a, c)):
                if (v - u) % n not in (1, n - 1):
                    diags.add((min(u, v), max(u, v)))
        bad = sum(_cofacial(loop[u], loop[v]) for u, v in diags)
        mapped = [(loop[a], loop[b], loop[c]) for a, b, c in tris]
        angles = sorted(_min_angle(t) for t in mapped)
        key = (bad, [-x for x in angles])
        if best_key is None or key < best_key:
            best_key, best = key, mapped
    if best_key is not None and best_key[0] > 0:
        raise AssertionError(f"polygon {loop}: every triangulation needs a diagonal on a cube face")
    return best


class MCTables(NamedTuple):
    """The generated tables (numpy, ready for numba and torch).

    Attributes:
        tri: ``(256, T, 3)`` int8 local edges of each triangle, ``-1`` padded.
        ntri: ``(256,)`` int64 number of triangles per configuration.
        edge_mask: ``(256,)`` int64 bit ``e`` set when edge ``e`` is crossed.
        edge_axis / edge_offset: copies of :data:`EDGE_AXIS`, :data:`EDGE_OFFSET`.
    """

    tri: np.ndarray
    ntri: np.ndarray
    edge_mask: np.ndarray
    edge_axis: np.ndarray
    edge_offset: np.ndarray


@functools.lru_cache(maxsize=1)
def mc_tables() -> MCTables:
    """Build (once) and return the marching-cubes tables."""
    cases: list[list[tuple[int, int, int]]] = []
    masks = np.zeros(256, dtype=np.int64)
    for config in range(256):
        tris: list[tuple[int, int, int]] = []
        for loop in case_polygons(config):
            tris.extend(_triangulate(loop))
        cases.append(tris)
        for e in range(12):
            a, b = EDGE_CORNERS[e]
            if ((config >> a) & 1) != ((config >> b) & 1):
                masks[config] |= 1 << e
    tmax = max(len(t) for t in cases)
    tri = np.full((256, tmax, 3), -1, dtype=np.int8)
    ntri = np.zeros(256, dtype=np.int64)
    for config, tris in enumerate(cases):
        ntri[config] = len(tris)
        if tris:
            tri[config, : len(tris)] = np.array(tris, dtype=np.int8)
    for arr in (tri, ntri, masks):
        arr.setflags(write=False)
    return MCTables(tri, ntri, masks, EDGE_AXIS.copy(), EDGE_OFFSET.copy())


def _directed_edges(tris: list[tuple[int, int, int]]) -> list[tuple[int, int]]:
    return [(t[k], t[(k + 1) % 3]) for t in tris for k in range(3)]


def verify_tables() -> None:
    """Re-check the generated tables; raise ``AssertionError`` on any defect.

    * every configuration's triangles use only crossed edges, each exactly
      the ones of the configuration;
    * the boundary of each configuration's triangle set (directed edges used
      once with no reverse partner) is exactly the set of face segments, so
      the triangles form closed loops on the cube surface, and each interior
      edge is shared by exactly two triangles with opposite directions;
    * triangle normals point from inside to outside: the (1, 1, 1)-weighted
      sum of normals of a single-corner case points away from that corner;
    * the face-pairing rule depends only on the face's own corner signs and
      agrees between the two cubes sharing the face (mirrored configuration),
      with opposite segment directions.
    """
    t = mc_tables()
    for config in range(256):
        tris = [tuple(int(x) for x in row) for row in t.tri[config, : t.ntri[config]]]
        if config in (0, 255):
            assert not tris, config
            continue
        crossed = {e for e in range(12) if (t.edge_mask[config] >> e) & 1}
        used = {e for tr in tris for e in tr}
        assert used == crossed, (config, used, crossed)
        directed = _directed_edges(tris)
        assert len(set(directed)) == len(directed), f"case {config}: repeated directed edge"
        boundary = {d for d in directed if (d[1], d[0]) not in directed}
        segments = {s for f in range(6) for s in face_pairing(config, f)}
        assert boundary == segments, (config, boundary, segments)
        for a, b in directed:  # interior edges never lie on a single cube face
            if (a, b) not in segments and (b, a) in directed:
                assert not _cofacial(a, b), (config, a, b)
        # orientation: area-weighted normal points from inside corners to outside ones
        inside = np.array([(config >> c) & 1 for c in range(8)], dtype=np.float64)
        n_sum = np.zeros(3)
        for tr in tris:
            p = [_MID[e] for e in tr]
            n_sum += np.cross(p[1] - p[0], p[2] - p[0])
        c_in = (CORNERS * inside[:, None]).sum(0) / inside.sum()
        c_out = (CORNERS * (1 - inside)[:, None]).sum(0) / (1 - inside).sum()
        if not np.allclose(c_in, c_out):
            assert np.dot(n_sum, c_out - c_in) > 0, f"case {config}: triangles face inward"
    # face rule: a function of the face's corner signs, mirrored between neighbours
    for face in range(6):
        axis, side = face // 2, face % 2
        mirror = 2 * axis + (1 - side)
        seen: dict[tuple[int, ...], list[tuple[int, int]]] = {}
        for config in range(256):
            signs = tuple((config >> int(c)) & 1 for c in FACE_CORNERS[face])
            segs = face_pairing(config, face)
            if signs in seen:
                assert seen[signs] == segs, (face, config)
            seen[signs] = segs
        for signs, segs in seen.items():
            # neighbour cube: same corner signs on its opposite face
            other = 0
            for c, s in zip(FACE_CORNERS[mirror], signs):
                other |= s << int(c)
            theirs = face_pairing(other, mirror)
            shift = lambda e: _shift_edge(e, axis)  # noqa: E731 - tiny local map
            mapped = {(shift(a), shift(b)) for a, b in theirs}
            assert mapped == {(b, a) for a, b in segs}, (face, signs, segs, theirs)


def _shift_edge(e: int, axis: int) -> int:
    """Edge of the neighbouring cube (lower along ``axis``) seen from this cube.

    An edge on the neighbour's ``side 0`` face of ``axis`` is the same grid
    edge as ours on ``side 1`` and vice versa: flip the edge's coordinate
    along ``axis`` (edges on a face of ``axis`` never run along ``axis``).
    """
    off = EDGE_OFFSET[e].copy()
    off[axis] = 1 - off[axis]
    a = int(EDGE_AXIS[e])
    others = [o for o in range(3) if o != a]
    return 4 * a + int(off[others[0]]) + 2 * int(off[others[1]])


def all_triangulation_sizes() -> dict[int, int]:
    """Histogram {polygon size: count} over all 256 cases (for docs and tests)."""
    hist: dict[int, int] = {}
    for config in range(256):
        for loop in case_polygons(config):
            hist[len(loop)] = hist.get(len(loop), 0) + 1
    return dict(sorted(hist.items()))


