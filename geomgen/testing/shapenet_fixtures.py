"""Tiny ShapeNetCore (v1, v2) and 3D-R2N2 trees on disk, for tests of loaders and plugins.

The trees follow the official layouts file for file (with far fewer models,
parts and views), so a loader tested on them is exercised on the real layouts:

ShapeNetCore v1 (``version=1``)::

    <root>/taxonomy.json
    <root>/<synset>/<model>/model.obj, model.mtl

ShapeNetCore v2 (``version=2``)::

    <root>/taxonomy.json
    <root>/<synset>/<model>/models/model_normalized.obj, .mtl, .json,
                                   model_normalized.solid.binvox, .surface.binvox

optional split file ``<root>/all.csv`` (``id,synsetId,subSynsetId,modelId,split``,
the columns of shapenet.org's split file; synset ids are written as numbers,
without their leading zero, so loaders must pad them).

3D-R2N2 (:func:`write_r2n2_tree`)::

    <root>/ShapeNetRendering/<synset>/<model>/rendering/00.png .. 23.png   (RGBA)
                                               rendering/rendering_metadata.txt
                                               rendering/renderings.txt
    <root>/ShapeNetVox32/<synset>/<model>/model.binvox                      (32^3)
    <root>/ShapeNetCore.v1/<synset>/<model>/model.obj  (+ taxonomy.json)   (optional)
    <root>/r2n2_splits.json                                                 (optional)

Models are chair-like unions of 2-4 axis-aligned boxes with random
proportions (seeded), in ShapeNet v1's frame as released: +Y up, bounding
box centred at the origin, bounding-box diagonal 1.  OBJ files carry the features of real
ShapeNet files that trip up naive readers: ``mtllib``, one ``g`` group and
``usemtl`` per part, ``vt`` and ``vn`` records, ``f v/vt/vn`` quads.

R2N2 fixture files are mutually consistent the way the real ones are:

* ``model.binvox`` is the mesh's voxelisation in binvox's default placement
  (``translate`` = bounding-box min corner, ``scale`` = longest bounding-box
  edge, no centring), occupied iff a voxel's box overlaps a part's box with
  positive volume.
* each ``NN.png`` is rendered by a small z-buffer rasteriser in this module
  (2x2 samples per pixel, so edges get fractional alpha; background RGBA
  ``(0, 0, 0, 0)``) from the metadata line's viewpoint.  The camera is built
  here *independently* of :mod:`geomgen.data.r2n2`, from the closed form of
  3D-R2N2's Blender scene: eye at ``distance_ratio * 1.75 * (cos(el) cos(az),
  sin(el), cos(el) sin(az))`` in the v1 frame, looking at the origin, image
  up along +Y, focal length ``35/32`` of the image width (Blender's default
  35 mm lens on a 32 mm sensor), principal point at the image centre.

Faults are injected by the tests themselves (delete or truncate the files
listed in the returned :class:`FixtureModel` records).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from geomgen.errors import InvalidInputError

__all__ = [
    "FixtureModel",
    "FixtureTree",
    "R2N2_MAX_CAMERA_DISTANCE",
    "R2N2_FOCAL_PER_WIDTH",
    "box_parts",
    "parts_mesh",
    "parts_occupancy",
    "r2n2_reference_camera",
    "render_rgba",
    "write_shapenet_tree",
    "write_r2n2_tree",
]

#: 3D-R2N2's ``MAX_CAMERA_DIST``: camera distance = distance ratio x 1.75.
R2N2_MAX_CAMERA_DISTANCE = 1.75
#: focal length / image width of Blender's default camera (35 mm lens, 32 mm sensor).
R2N2_FOCAL_PER_WIDTH = 35.0 / 32.0

_LEMMAS = {  # a few real taxonomy.json name strings (comma lists)
    "02691156": "airplane,aeroplane,plane",
    "03001627": "chair",
    "04379243": "table",
    "04256520": "sofa,couch,lounge",
    "02958343": "car,auto,automobile,machine,motorcar",
}


@dataclass
class FixtureModel:
    """One written model.

    Attributes:
        synset: 8-digit synset id (folder name).
        model_id: model folder name (32 hex digits, like ShapeNet's).
        split: ``"train"``, ``"val"`` or ``"test"`` as written to the split file.
        parts: ``(B, 2, 3)`` float64 boxes, ``[b, 0]`` min and ``[b, 1]`` max
            corner, in the file's (v1) coordinate frame.
        files: named paths of what was written (``"obj"``, ``"mtl"``, ``"json"``,
            ``"binvox"``, ``"rendering"``, ``"metadata"``, ``"pngs"`` ...).
        metadata: R2N2 only, ``(24, 5)`` rows of ``rendering_metadata.txt``.
    """

    synset: str
    model_id: str
    split: str
    parts: np.ndarray
    files: dict[str, object] = field(default_factory=dict)
    metadata: np.ndarray | None = None

    @property
    def id(self) -> str:
        """``"<synset>/<model_id>"``, the id geomgen's ShapeNet loaders give the model."""
        return f"{self.synset}/{self.model_id}"


@dataclass
class FixtureTree:
    """What a writer produced: folders, models, split file."""

    root: Path
    models: list[FixtureModel]
    split_file: Path | None = None
    rendering_root: Path | None = None
    voxels_root: Path | None = None
    shapenet_root: Path | None = None

    def model(self, model_id: str) -> FixtureModel:
        """The record of ``model_id`` (folder name or ``synset/model`` id)."""
        for m in self.models:
            if model_id in (m.model_id, m.id):
                return m
        raise KeyError(model_id)


# ----------------------------------------------------------------------------- geometry
def box_parts(rng: np.random.Generator) -> np.ndarray:
    """Random chair-like parts: seat, back, optional arm and leg, ``(B, 2, 3)``.

    Parts touch but do not overlap (so parity-based inside tests stay exact);
    the union is asymmetric along x, y and z, so a flipped or permuted axis
    shows.  Normalised as ShapeNet v1 models are: bounding box centred at the
    origin, diagonal 1.
    """
    w, d = rng.uniform(0.8, 1.2), rng.uniform(0.6, 1.0)  # seat extent along x, z
    t = rng.uniform(0.12, 0.2)  # seat thickness
    h = rng.uniform(0.6, 1.1)  # back height
    b = rng.uniform(0.1, 0.18)  # back thickness
    parts = [
        [[0.0, 0.0, 0.0], [w, t, d]],  # seat
        [[0.0, t, 0.0], [w, t + h, b]],  # back on the -z edge, full width
    ]
    if rng.random() < 0.7:  # arm on the +x side only (breaks the x mirror symmetry)
        parts.append([[w - 0.1, t, b], [w, t + 0.35 * h, d]])
    if rng.random() < 0.7:  # a leg below the seat's +x +z corner
        parts.append([[w - 0.15, -0.5, d - 0.15], [w, 0.0, d]])
    arr = np.asarray(parts, dtype=np.float64)
    lo, hi = arr[:, 0].min(0), arr[:, 1].max(0)
    centre, diag = (lo + hi) / 2, float(np.linalg.norm(hi - lo))
    return (arr - centre) / diag


_CORNERS = np.array([[i & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)], dtype=np.float64)
# quads (corner indices x + 2y + 4z), outward counter-clockwise; normal index into _NORMALS
_QUADS = [((0, 4, 6, 2), 0), ((1, 3, 7, 5), 1), ((0, 1, 5, 4), 2), ((2, 6, 7, 3), 3),
          ((0, 2, 3, 1), 4), ((4, 5, 7, 6), 5)]
_NORMALS = np.array([[-1, 0, 0], [1, 0, 0], [0, -1, 0], [0, 1, 0], [0, 0, -1], [0, 0, 1]], float)


def parts_mesh(parts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Triangle mesh of the union of boxes: verts ``(8B, 3)`` float64, faces ``(12B, 3)`` int64,
    outward-oriented (counter-clockwise seen from outside)."""
    verts, faces = [], []
    for bi, (lo, hi) in enumerate(parts):
        verts.append(lo + _CORNERS * (hi - lo))
        for quad, _ in _QUADS:
            q = [8 * bi + c for c in quad]
            faces += [[q[0], q[1], q[2]], [q[0], q[2], q[3]]]
    return np.concatenate(verts), np.asarray(faces, dtype=np.int64)


def parts_occupancy(parts: np.ndarray, origin: np.ndarray, voxel_size: float, res: int) -> np.ndarray:
    """``(res, res, res)`` bool grid, ``[k, j, i]`` <-> (z, y, x): voxel box overlaps a part
    with positive volume.  Voxel ``(k, j, i)`` spans ``origin + [i, i+1) x .. * voxel_size``."""
    edges = origin[None, :] + np.arange(res + 1)[:, None] * voxel_size  # (res+1, 3)
    occ = np.zeros((res, res, res), dtype=bool)
    for lo, hi in parts:
        hit = [(edges[1:, a] > lo[a]) & (edges[:-1, a] < hi[a]) for a in range(3)]  # x, y, z
        occ |= hit[2][:, None, None] & hit[1][None, :, None] & hit[0][None, None, :]
    return occ


def _write_obj(path: Path, parts: np.ndarray, mtl_name: str, *, scale: float = 1.0) -> None:
    """ShapeNet-style OBJ: mtllib, shared v/vt/vn lists, one ``g`` + ``usemtl`` per part, quads."""
    lines = ["# geomgen test fixture (ShapeNet-style OBJ)", f"mtllib {mtl_name}"]
    verts, _ = parts_mesh(parts)
    lines += [f"v {x * scale:.6f} {y * scale:.6f} {z * scale:.6f}" for x, y, z in verts]
    lines += ["vt 0 0", "vt 1 0", "vt 1 1", "vt 0 1"]
    lines += [f"vn {x:g} {y:g} {z:g}" for x, y, z in _NORMALS]
    for bi in range(len(parts)):
        lines += [f"g part_{bi}", f"usemtl material_{bi % 2}"]
        for quad, n in _QUADS:
            corners = " ".join(f"{8 * bi + c + 1}/{t + 1}/{n + 1}" for t, c in enumerate(quad))
            lines.append(f"f {corners}")
    path.write_text("\n".join(lines) + "\n")


def _write_mtl(path: Path) -> None:
    path.write_text(
        "newmtl material_0\nKa 0.2 0.2 0.2\nKd 0.8 0.3 0.2\nKs 0 0 0\nd 1\nillum 2\n\n"
        "newmtl material_1\nKa 0.2 0.2 0.2\nKd 0.2 0.4 0.8\nKs 0 0 0\nd 1\nillum 2\n"
    )


def _write_binvox(path: Path, parts: np.ndarray, res: int = 32) -> tuple[np.ndarray, float]:
    """binvox's default placement: translate = bbox min, scale = longest bbox edge."""
    import torch

    from geomgen.io import save_binvox
    from geomgen.structures import Voxels

    lo, hi = parts[:, 0].min(0), parts[:, 1].max(0)
    scale = float((hi - lo).max())
    occ = parts_occupancy(parts, lo, scale / res, res)
    vox = Voxels(
        torch.from_numpy(occ)[None].double(), origin=torch.from_numpy(lo)[None], voxel_size=scale / res
    )
    save_binvox(path, vox)
    return lo, scale


def _model_id(seed: int, synset: str, i: int) -> str:
    return hashlib.md5(f"geomgen-fixture-{seed}-{synset}-{i}".encode()).hexdigest()


def _split_of(i: int) -> str:
    return ("train", "train", "val", "test")[i % 4] if i else "train"


def _check_synsets(synsets: Mapping[str, int]) -> dict[str, int]:
    if not isinstance(synsets, Mapping) or not synsets:
        raise InvalidInputError("argument 'synsets' must be a non-empty {synset_id: n_models} mapping")
    out = {}
    for s, n in synsets.items():
        if not (isinstance(s, str) and s.isdigit() and len(s) == 8):
            raise InvalidInputError(f"argument 'synsets': key {s!r} is not an 8-digit synset id")
        if not isinstance(n, int) or n < 0:
            raise InvalidInputError(f"argument 'synsets': count for {s} must be an int >= 0, got {n!r}")
        out[s] = n
    return out


def _write_taxonomy(root: Path, synsets: Mapping[str, int]) -> None:
    from geomgen.data._synsets import SHAPENETCORE_SYNSETS

    entries = [
        {
            "synsetId": s,
            "name": _LEMMAS.get(s, SHAPENETCORE_SYNSETS.get(s, f"category {s}")),
            "children": [],
            "numInstances": n,
        }
        for s, n in synsets.items()
    ]
    (root / "taxonomy.json").write_text(json.dumps(entries, indent=1))


# ----------------------------------------------------------------------------- ShapeNetCore
def write_shapenet_tree(
    root: str | Path,
    version: int = 1,
    synsets: Mapping[str, int] | None = None,
    *,
    taxonomy: bool = True,
    split_csv: bool = False,
    seed: int = 0,
    offset: Sequence[float] = (0.0, 0.0, 0.0),
    scale: float = 1.0,
    binvox: bool = True,
) -> FixtureTree:
    """Write a tiny ShapeNetCore tree (see the module docstring for the layout).

    Args:
        root: folder to create (parents too); existing files are overwritten.
        version: 1 (``model.obj``) or 2 (``models/model_normalized.obj`` + json/binvox).
        synsets: ``{synset_id: number_of_models}``; default ``{"03001627": 3, "04379243": 2}``.
        taxonomy: write ``taxonomy.json``.
        split_csv: write ``all.csv``; model ``i`` of each synset goes to
            train, train, val, test, train, ... (model 0 always train).
        seed: seeds model ids and shapes.
        offset, scale: written coordinates are ``v1_coords * scale + offset``
            (to test that loaders normalise); v2 json bounds follow.
        binvox: v2 only: write the two ``model_normalized.*.binvox`` files.

    Returns:
        A :class:`FixtureTree`; each model's ``files`` has ``"obj"`` and ``"mtl"``
        (v2 also ``"json"`` and the binvox paths).
    """
    if version not in (1, 2):
        raise InvalidInputError(f"argument 'version' must be 1 or 2, got {version!r}")
    syn = _check_synsets(synsets if synsets is not None else {"03001627": 3, "04379243": 2})
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    off = np.asarray(offset, dtype=np.float64).reshape(3)
    models: list[FixtureModel] = []
    for s, n in syn.items():
        for i in range(n):
            rng = np.random.default_rng([seed, int(s), i])
            parts = box_parts(rng) * scale + off
            mid = _model_id(seed, s, i)
            mdir = root / s / mid
            files: dict[str, object] = {}
            if version == 1:
                mdir.mkdir(parents=True, exist_ok=True)
                obj, mtl = mdir / "model.obj", mdir / "model.mtl"
            else:
                (mdir / "models").mkdir(parents=True, exist_ok=True)
                obj, mtl = mdir / "models" / "model_normalized.obj", mdir / "models" / "model_normalized.mtl"
                lo, hi = parts[:, 0].min(0), parts[:, 1].max(0)
                verts, _ = parts_mesh(parts)
                meta = {"max": hi.tolist(), "min": lo.tolist(), "centroid": verts.mean(0).tolist(),
                        "id": mid, "numVertices": int(len(verts))}
                files["json"] = mdir / "models" / "model_normalized.json"
                files["json"].write_text(json.dumps(meta))  # type: ignore[union-attr]
                if binvox:
                    for kind in ("solid", "surface"):
                        p = mdir / "models" / f"model_normalized.{kind}.binvox"
                        _write_binvox(p, parts)
                        files[f"{kind}_binvox"] = p
            _write_obj(obj, parts, mtl.name)
            _write_mtl(mtl)
            files.update(obj=obj, mtl=mtl)
            models.append(FixtureModel(s, mid, _split_of(i), parts, files))
    if taxonomy:
        _write_taxonomy(root, syn)
    split_file = None
    if split_csv:
        split_file = root / "all.csv"
        rows = ["id,synsetId,subSynsetId,modelId,split"]
        for k, m in enumerate(models):
            rows.append(f"{k + 1},{int(m.synset)},{int(m.synset)},{m.model_id},{m.split}")
        split_file.write_text("\n".join(rows) + "\n")
    return FixtureTree(root, models, split_file, shapenet_root=root)


# ----------------------------------------------------------------------------- R2N2
def r2n2_reference_camera(
    azimuth: float, elevation: float, distance_ratio: float, image_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form camera of an R2N2 view (in-plane rotation 0), OpenCV convention.

    Eye ``d (cos el cos az, sin el, cos el sin az)`` with ``d = distance_ratio *
    1.75``, looking at the origin with image up = +Y; focal ``35/32 * size``,
    principal point at the image centre.  Derived from 3D-R2N2's Blender
    scene (camera on the parent's +X axis, parent rotated by ``(-yaw, -el,
    -az)`` XYZ Euler, OBJ imported Y-up into Blender's Z-up).

    Returns:
        ``K (3, 3)`` and ``camera_from_world (4, 4)``, float64.
    """
    az, el = math.radians(azimuth), math.radians(elevation)
    eye = distance_ratio * R2N2_MAX_CAMERA_DISTANCE * np.array(
        [math.cos(el) * math.cos(az), math.sin(el), math.cos(el) * math.sin(az)]
    )
    z = -eye / np.linalg.norm(eye)
    x = np.cross(z, [0.0, 1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # rows: camera axes in world coordinates
    cam = np.eye(4)
    cam[:3, :3], cam[:3, 3] = R, -R @ eye
    f = R2N2_FOCAL_PER_WIDTH * image_size
    K = np.array([[f, 0.0, image_size / 2], [0.0, f, image_size / 2], [0.0, 0.0, 1.0]])
    return K, cam


def render_rgba(
    parts: np.ndarray, K: np.ndarray, camera_from_world: np.ndarray, size: int, *, samples: int = 2
) -> np.ndarray:
    """Render boxes to an ``(size, size, 4)`` uint8 RGBA image (background ``0``).

    A z-buffer rasteriser on ``samples x samples`` sub-pixel centres per pixel
    (pixel ``(u, v)`` spans ``[u, u+1) x [v, v+1)``), flat Lambert shading
    with a headlight, part colours alternating orange/blue, averaged
    (colour premultiplied by coverage, then un-premultiplied).
    """
    verts, faces = parts_mesh(parts)
    S = size * samples
    pc = verts @ camera_from_world[:3, :3].T + camera_from_world[:3, 3]
    uvw = pc @ K.T
    uv = uvw[:, :2] / uvw[:, 2:3] * samples
    depth = np.full((S, S), np.inf)
    color = np.zeros((S, S, 3))
    cols = np.array([[0.8, 0.3, 0.2], [0.2, 0.4, 0.8]])
    grid = np.arange(S) + 0.5
    for fi, (a, b, c) in enumerate(faces):
        if min(pc[a, 2], pc[b, 2], pc[c, 2]) <= 1e-6:
            continue
        p0, p1, p2 = uv[a], uv[b], uv[c]
        area = (p1[0] - p0[0]) * (p2[1] - p0[1]) - (p1[1] - p0[1]) * (p2[0] - p0[0])
        if abs(area) < 1e-12:
            continue
        lo = np.floor(np.minimum(np.minimum(p0, p1), p2)).astype(int).clip(0, S)
        hi = np.ceil(np.maximum(np.maximum(p0, p1), p2)).astype(int).clip(0, S)
        if lo[0] >= hi[0] or lo[1] >= hi[1]:
            continue
        X, Y = np.meshgrid(grid[lo[0]:hi[0]], grid[lo[1]:hi[1]])
        w0 = ((p1[0] - X) * (p2[1] - Y) - (p1[1] - Y) * (p2[0] - X)) / area
        w1 = ((p2[0] - X) * (p0[1] - Y) - (p2[1] - Y) * (p0[0] - X)) / area
        w2 = 1.0 - w0 - w1
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        # perspective-correct depth: interpolate 1/z
        z = 1.0 / (w0 / pc[a, 2] + w1 / pc[b, 2] + w2 / pc[c, 2] + 1e-300)
        sub = depth[lo[1]:hi[1], lo[0]:hi[0]]
        win = inside & (z < sub)
        if not win.any():
            continue
        sub[win] = z[win]
        n = np.cross(verts[b] - verts[a], verts[c] - verts[a])
        n /= np.linalg.norm(n)
        view = -(camera_from_world[:3, :3].T @ np.array([0.0, 0.0, 1.0]))  # towards the camera
        shade = 0.35 + 0.65 * abs(float(n @ view))
        color[lo[1]:hi[1], lo[0]:hi[0]][win] = cols[(fi // 12) % 2] * shade
    cover = np.isfinite(depth).astype(np.float64)
    cover = cover.reshape(size, samples, size, samples).mean(axis=(1, 3))
    rgb = color.reshape(size, samples, size, samples, 3).sum(axis=(1, 3)) / samples**2
    rgb = np.divide(rgb, cover[..., None], out=np.zeros_like(rgb), where=cover[..., None] > 0)
    rgba = np.concatenate([rgb, cover[..., None]], axis=-1)
    return np.clip(np.round(rgba * 255), 0, 255).astype(np.uint8)


def write_r2n2_tree(
    root: str | Path,
    synsets: Mapping[str, int] | None = None,
    *,
    n_views: int = 24,
    image_size: int = 137,
    shapenet: bool = True,
    split_json: bool = False,
    seed: int = 0,
) -> FixtureTree:
    """Write a tiny 3D-R2N2 tree (see the module docstring for the layout).

    Viewpoints are drawn as 3D-R2N2 drew them: azimuth uniform in ``[0, 360)``,
    elevation in ``[25, 30)``, in-plane rotation 0, distance ratio in
    ``[0.65, 0.95)``, "field of view" column 25.

    Args:
        root: folder to create; ``ShapeNetRendering``, ``ShapeNetVox32`` (and
            ``ShapeNetCore.v1``) are written inside it.
        synsets: ``{synset_id: n_models}``; default ``{"03001627": 3, "04379243": 2}``.
        n_views: views per model (R2N2 has 24; fewer keeps tests fast).
        image_size: rendering width = height in pixels (R2N2: 137).
        shapenet: also write the matching ShapeNetCore v1 tree (meshes).
        split_json: write ``r2n2_splits.json`` in the ``{split: {synset: {model:
            [view, ...]}}}`` layout; model ``i`` goes to train, train, val,
            test, train, ... with all its views.
        seed: seeds ids, shapes and viewpoints (same models as
            :func:`write_shapenet_tree` with the same seed).

    Returns:
        A :class:`FixtureTree` whose models have ``files["rendering"]`` (the
        ``rendering`` folder), ``"pngs"`` (list of paths), ``"metadata"``,
        ``"binvox"`` (and ``"obj"`` with ``shapenet=True``) and ``metadata``
        ``(n_views, 5)``.
    """
    from PIL import Image

    syn = _check_synsets(synsets if synsets is not None else {"03001627": 3, "04379243": 2})
    if not isinstance(n_views, int) or not 1 <= n_views <= 99:
        raise InvalidInputError(f"argument 'n_views' must be an int in [1, 99], got {n_views!r}")
    root = Path(root)
    ren_root, vox_root = root / "ShapeNetRendering", root / "ShapeNetVox32"
    tree = FixtureTree(root, [], rendering_root=ren_root, voxels_root=vox_root)
    if shapenet:
        sn = write_shapenet_tree(root / "ShapeNetCore.v1", 1, syn, seed=seed)
        tree.shapenet_root = sn.root
    for s, n in syn.items():
        for i in range(n):
            rng = np.random.default_rng([seed, int(s), i])
            parts = box_parts(rng)
            mid = _model_id(seed, s, i)
            rdir = ren_root / s / mid / "rendering"
            rdir.mkdir(parents=True, exist_ok=True)
            vdir = vox_root / s / mid
            vdir.mkdir(parents=True, exist_ok=True)
            _write_binvox(vdir / "model.binvox", parts)
            vrng = np.random.default_rng([seed, int(s), i, 1])
            meta = np.zeros((n_views, 5))
            pngs = []
            for v in range(n_views):
                az, el, ratio = vrng.random(3) * [360.0, 5.0, 0.3] + [0.0, 25.0, 0.65]
                meta[v] = [az, el, 0.0, ratio, 25.0]
                K, cam = r2n2_reference_camera(az, el, ratio, image_size)
                rgba = render_rgba(parts, K, cam, image_size)
                png = rdir / f"{v:02d}.png"
                Image.fromarray(rgba, mode="RGBA").save(png)
                pngs.append(png)
            (rdir / "renderings.txt").write_text("".join(f"{v:02d}.png\n" for v in range(n_views)))
            (rdir / "rendering_metadata.txt").write_text(
                "".join(f"{a!r} {e!r} 0 {r!r} 25\n" for a, e, _, r, _ in meta.tolist())
            )
            files: dict[str, object] = {
                "rendering": rdir, "pngs": pngs, "metadata": rdir / "rendering_metadata.txt",
                "renderings": rdir / "renderings.txt", "binvox": vdir / "model.binvox",
            }
            if shapenet:
                files["obj"] = tree.shapenet_root / s / mid / "model.obj"  # type: ignore[operator]
            tree.models.append(FixtureModel(s, mid, _split_of(i), parts, files, meta))
    if split_json:
        doc: dict[str, dict[str, dict[str, list[int]]]] = {"train": {}, "val": {}, "test": {}}
        for m in tree.models:
            doc[m.split].setdefault(m.synset, {})[m.model_id] = list(range(n_views))
        tree.split_file = root / "r2n2_splits.json"
        tree.split_file.write_text(json.dumps(doc))
    return tree
