"""3D-R2N2's ShapeNet renderings and 32^3 voxels (Choy et al. 2016) as geomgen sample dicts.

Layout (as distributed: ``ShapeNetRendering.tgz``, ``ShapeNetVox32.tgz``)::

    <rendering root>/<synset>/<model>/rendering/00.png .. 23.png    137 x 137 RGBA
                                      rendering/rendering_metadata.txt
                                      rendering/renderings.txt
    <voxels root>/<synset>/<model>/model.binvox                      32^3

``root`` may be the rendering root itself or a folder holding
``ShapeNetRendering`` (and usually ``ShapeNetVox32``).  The voxels root
defaults to ``<root>/ShapeNetVox32`` when that exists, else
``ShapeNetVox32`` next to the rendering root (``<rendering root>/../ShapeNetVox32``).
``shapenet_root`` (a ShapeNetCore **v1** tree, the meshes R2N2 rendered)
adds the ground-truth mesh and surface samples.

One frame for everything
------------------------
All tensors of a sample live in geomgen's normalised frame, defined from the
model's voxel file (see :mod:`geomgen.data._r2n2_format`): ShapeNet v1
coordinates ``p`` map to ``(p - center) / scale`` with ``scale`` = the binvox
cube edge (the model's longest bounding-box edge -> 1) and ``center`` = the
occupied voxels' bounding-box centre snapped to the voxel lattice, so the
voxels are R2N2's own grid shifted by whole voxels (bit-exact, no
resampling), covering ``[-0.5, 0.5]^3`` with ``grid[k, j, i]`` <-> ``(z, y,
x)``; the bounding box is centred to within one voxel.  Cameras (derived
from the metadata: Blender's 35 mm / 32 mm default camera, eye at distance
ratio x 1.75, azimuth / elevation about ShapeNet's +Y up axis) and meshes
are mapped by the same similarity, so projecting the voxel centres or the
mesh with ``K`` and ``world_from_camera`` lands on the rendered silhouette.
The frame does not depend on whether ``shapenet_root`` is given.

Sample dict (keys of :mod:`geomgen.data`; no ``depths``: R2N2 has none)::

    id "<synset>/<model>", category, label
    images (S, 3, H, W) float32 in [0, 1], RGBA composited over white
    masks (S, H, W) bool, alpha >= 0.5
    K (S, 3, 3), world_from_camera (S, 4, 4) float32 (OpenCV convention)
    voxels (32, 32, 32) float32 {0, 1}
    view_indices (S,) int64, the R2N2 view number of each image
    with shapenet_root: verts (V, 3) float32, faces (F, 3) int64, points (P, 3),
                        normals (P, 3), occ_points (Q, 3), occ_labels (Q,) float32

With ``shapenet_root`` the mesh-derived arrays are computed once per model
by :func:`geomgen.data.pipeline.build_sample` (surface samples, occupancy
queries labelled by :func:`geomgen.ops.points_in_meshes`; counts from
``config``) in the sample's frame and kept in the verified on-disk cache of
:mod:`geomgen.data.cache` (folder ``r2n2-v<format>-<digest>``), like the
other datasets' samples; images and voxels are always read from the R2N2
files.

Bad input
---------
Models whose rendering folder, metadata (missing, malformed, fewer lines
than views), PNGs or binvox are missing are skipped when the dataset is
built, and so are models whose ShapeNet OBJ is missing when
``shapenet_root`` is given, or whose OBJ cannot be read or does not fit the
voxels' frame (then remembered in the cache until the files change); all of
them are listed in **one** warning, with the count.  An empty split raises
:class:`~geomgen.errors.DatasetError` naming the roots, the split and why.

At ``__getitem__`` a PNG that cannot be decoded (truncated, corrupt) does
not crash the epoch: the view is replaced by the next decodable view of the
same model (its image, mask *and* camera, so the sample stays consistent
and ``S`` stays fixed; ``view_indices`` tells which view was served), and
one warning names the file (once per file and process).  If no view of a
model decodes, or its binvox is unreadable, the model is marked bad (per
process), a warning names it, and the next good model (in index order) is
returned instead.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from geomgen import checks as V
from geomgen.data import _r2n2_format as F
from geomgen.data._synsets import SHAPENETCORE_SYNSETS, read_taxonomy, resolve_categories
from geomgen.data.base import SPLITS, _check_splits, file_fingerprint, hash_split, warn_skipped
from geomgen.data.cache import SampleCache
from geomgen.data.pipeline import SampleConfig, build_sample, derive_seed
from geomgen.errors import DatasetError, GeomgenError, InvalidInputError

__all__ = ["R2N2", "R2N2Model"]


@dataclass(frozen=True, eq=False)
class R2N2Model:
    """One model found by the scan (picklable; compared by identity: it holds an array).

    Attributes:
        id: ``"<synset>/<model>"``.
        category: category name (label = index in ``R2N2.categories``).
        rendering: the model's ``rendering`` folder.
        pngs: PNG file names, view ``i`` -> ``pngs[i]`` (from ``renderings.txt``
            when present, else ``00.png``, ``01.png``, ...).
        metadata: ``(V, 5)`` float64 rows of ``rendering_metadata.txt``.
        binvox: the voxel file.
        obj: the ShapeNet v1 OBJ, or None without ``shapenet_root``.
        views: view indices available in this split.
    """

    id: str
    category: str
    rendering: str
    pngs: tuple[str, ...]
    metadata: np.ndarray
    binvox: str
    obj: str | None
    views: tuple[int, ...]


def _resolve_roots(root: Path, voxels_root: str | Path | None, fn: str) -> tuple[Path, Path]:
    """``(rendering root, voxels root)`` from the arguments (see the module docstring)."""
    if not root.is_dir():
        raise InvalidInputError(f"{fn}: argument 'root' must be a folder (R2N2's ShapeNetRendering or its parent), "
                                f"'{root}' is not a folder")
    rendering = root / "ShapeNetRendering" if (root / "ShapeNetRendering").is_dir() else root
    if voxels_root is not None:
        vox = Path(voxels_root).expanduser()
    elif (root / "ShapeNetVox32").is_dir():
        vox = root / "ShapeNetVox32"
    else:
        vox = rendering.parent / "ShapeNetVox32"
    if not vox.is_dir():
        raise InvalidInputError(
            f"{fn}: voxels folder '{vox}' not found; pass voxels_root= (R2N2's ShapeNetVox32 folder)"
        )
    return rendering, vox


def _check_views(views: Any, fn: str) -> str | tuple[int, ...]:
    if views in ("all", "random"):
        return views
    if isinstance(views, int) and not isinstance(views, bool):
        views = [views]
    if isinstance(views, (list, tuple)) and views and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in views
    ):
        return tuple(int(v) for v in views)
    raise InvalidInputError(
        f"{fn}: argument 'views' must be 'all', 'random', a view index >= 0 or a non-empty list of them, got {views!r}"
    )


class R2N2(torch.utils.data.Dataset):
    """3D-R2N2 renderings + voxels (+ ShapeNet v1 meshes) as geomgen sample dicts.

    Args:
        root: R2N2's ``ShapeNetRendering`` folder, or a folder holding it.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        voxels_root: R2N2's ``ShapeNetVox32`` folder (default: see the module docstring).
        shapenet_root: a ShapeNetCore **v1** folder: adds ``verts``, ``faces``,
            ``points``, ``normals``, ``occ_points`` and ``occ_labels`` (in the
            sample's frame), built once into the on-disk cache.
        split_file: a split JSON (Mesh R-CNN / PyTorch3D ``{split: {synset:
            {model: [views]}}}``, whose per-model view lists are honoured, or
            Pix2Vox's ``ShapeNet.json``); None = :func:`~geomgen.data.base.hash_split`
            of the model id with fractions ``splits``.
        views: ``"all"`` (every view available in the split), ``"random"``
            (one, drawn with torch's global RNG at every access), a view
            index, or a list of view indices (models missing one of them in
            this split are left out and listed in the warning).
        view: alias of ``views`` (the name the other datasets use); wins when given.
        image_size: None (as stored, 137) or ``S`` / ``(H, W)``: images and masks
            are resized (bilinear, antialiased, after compositing) and ``K`` follows.
        categories: synset ids and/or names (``"chair"``) to keep; None = all.
        config: :class:`~geomgen.data.pipeline.SampleConfig` (or dict): with
            ``shapenet_root``, its ``num_points``, ``num_occupancy``,
            ``occupancy_bound`` and ``near_surface_sigmas`` are used (R2N2
            brings its own images and voxels: the render and voxel fields are ignored).
        cache_dir: folder of the sample cache (only with ``shapenet_root``).
        rebuild: rebuild the sample cache (only with ``shapenet_root``).
        progress: show a progress bar while building the sample cache (only
            with ``shapenet_root``).
        splits: train/val/test fractions of the hash split.

    Attributes:
        categories: sorted names of the selected synsets found in the rendering
            folder (the same for every split); ``label`` indexes it.
        models: the :class:`R2N2Model` records served, in index order.
        skipped: ``(path or id, reason)`` of every model left out.

    Raises:
        InvalidInputError: bad arguments, missing folders, ``categories``
            naming nothing found.
        DatasetError: an empty split (naming the roots, the split and why).
        FileFormatError: an unreadable split file or ``taxonomy.json``.
    """

    name: ClassVar[str] = "r2n2"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "train",
        *,
        voxels_root: str | os.PathLike[str] | None = None,
        shapenet_root: str | os.PathLike[str] | None = None,
        split_file: str | os.PathLike[str] | None = None,
        views: str | int | Sequence[int] = "all",
        view: str | int | Sequence[int] | None = None,
        image_size: int | tuple[int, int] | None = None,
        categories: str | Iterable[str] | None = None,
        config: SampleConfig | dict[str, Any] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        rebuild: bool = False,
        progress: bool = True,
        splits: Sequence[float] = (0.8, 0.1, 0.1),
    ) -> None:
        fn = "R2N2"
        if split not in (*SPLITS, "all"):
            raise InvalidInputError(f"{fn}: argument 'split' must be one of {[*SPLITS, 'all']}, got {split!r}")
        for flag, value in (("rebuild", rebuild), ("progress", progress)):
            if not isinstance(value, bool):
                raise InvalidInputError(f"{fn}: argument '{flag}' must be True or False, got {value!r}")
        if root is None:
            raise InvalidInputError(f"{fn}: argument 'root' is required (R2N2's ShapeNetRendering or its parent)")
        self.split = split
        self.root = Path(root).expanduser()
        self.rendering_root, self.voxels_root = _resolve_roots(self.root, voxels_root, fn)
        self.shapenet_root = Path(shapenet_root).expanduser() if shapenet_root is not None else None
        if self.shapenet_root is not None and not self.shapenet_root.is_dir():
            raise InvalidInputError(f"{fn}: argument 'shapenet_root' must be a ShapeNetCore v1 folder, "
                                    f"'{self.shapenet_root}' is not a folder")
        self.views = _check_views(views if view is None else view, fn)
        self.image_size = None if image_size is None else V.check_image_size(image_size, fn=fn)
        self.config = SampleConfig() if config is None else SampleConfig.from_dict(config)
        self.splits = _check_splits(splits, fn)
        self.split_file = Path(split_file).expanduser() if split_file is not None else None
        names = dict(SHAPENETCORE_SYNSETS)
        if self.shapenet_root is not None and (self.shapenet_root / "taxonomy.json").is_file():
            names.update(read_taxonomy(self.shapenet_root / "taxonomy.json"))
        on_disk = {p.name: names.get(p.name, p.name)
                   for p in sorted(self.rendering_root.iterdir()) if p.is_dir() and p.name.isdigit()}
        self.synsets: list[str] = resolve_categories(categories, on_disk, fn=fn) or sorted(on_disk)
        self.synset_names: dict[str, str] = {s: on_disk[s] for s in self.synsets}
        self.skipped: list[tuple[str, str]] = []
        candidates = self._candidates()
        models = self._scan(candidates)
        self.categories: list[str] = sorted(set(self.synset_names.values()))  # the same for every split
        self._labels = {c: i for i, c in enumerate(self.categories)}
        self.cache: SampleCache | None = None
        if self.shapenet_root is not None and models:
            self.cache = SampleCache(self.name, self._mesh_config(), self._cache_key(), root=cache_dir)
            models, failed = self.cache.ensure(models, self._build_mesh_arrays, fingerprint=_fingerprint,
                                               rebuild=rebuild, progress=progress, desc=f"{self.name} {split} meshes")
            self.skipped.extend(failed)
        self.models: list[R2N2Model] = models
        self._bad: set[int] = set()
        where = f"renderings '{self.rendering_root}', voxels '{self.voxels_root}'"
        warn_skipped(f"{self.name} dataset ({where}, split {split!r})", self.skipped, len(self.models), noun="model")
        if not self.models:
            if not candidates:
                src = f"split file '{self.split_file}'" if self.split_file is not None else "the rendering folder"
                why = f"no model of the selected categories in {src} falls in this split"
            else:
                why = f"all {len(candidates)} models of the split were skipped (see the warning)"
            raise DatasetError(f"{self.name} dataset ({where}): split {split!r} is empty: {why}")

    # ------------------------------------------------------------------ scan
    def _skip(self, path: Path | str, reason: str) -> None:
        self.skipped.append((str(path), reason))

    def _candidates(self) -> list[tuple[str, str, list[int] | None]]:
        """``(synset, model, views listed by the split file or None)`` of this split, sorted."""
        wanted = SPLITS if self.split == "all" else (self.split,)
        if self.split_file is not None:
            table = F.read_split_file(self.split_file)
            merged: dict[tuple[str, str], list[int] | None] = {}
            for sp in wanted:
                for key, listed in table.get(sp, {}).items():
                    if key[0] not in self.synset_names:
                        continue
                    if key in merged and merged[key] is not None and listed is not None:
                        merged[key] = sorted(set(merged[key]) | set(listed))  # type: ignore[arg-type]
                    else:
                        merged[key] = None if (key in merged and merged[key] is None) else listed
            return [(s, m, v) for (s, m), v in sorted(merged.items())]
        out: list[tuple[str, str, list[int] | None]] = []
        for synset in self.synsets:
            for d in sorted(p for p in (self.rendering_root / synset).iterdir() if p.is_dir()):
                if hash_split(f"{synset}/{d.name}", self.splits) in wanted:
                    out.append((synset, d.name, None))
        return out

    def _scan(self, candidates: list[tuple[str, str, list[int] | None]]) -> list[R2N2Model]:
        models: list[R2N2Model] = []
        for synset, model, listed in candidates:
            found = self._scan_model(synset, model, listed)
            if found is not None:
                models.append(found)
        return models

    def _scan_model(self, synset: str, model: str, listed: list[int] | None) -> R2N2Model | None:
        """The model's record, or None after :meth:`_skip` with the reason."""
        rdir = self.rendering_root / synset / model / "rendering"
        if not rdir.is_dir():
            return self._skip(rdir, "missing rendering folder")
        meta_path = rdir / "rendering_metadata.txt"
        if not meta_path.is_file():
            return self._skip(meta_path, "missing rendering_metadata.txt")
        listing = rdir / "renderings.txt"
        try:
            meta = F.read_rendering_metadata(meta_path)
            pngs = F.read_renderings_list(listing) if listing.is_file() else []
        except GeomgenError as e:
            return self._skip(meta_path, str(e))
        n = len(meta)
        pngs = pngs or [f"{i:02d}.png" for i in range(n)]
        if len(pngs) != n:
            return self._skip(rdir, f"renderings.txt lists {len(pngs)} images but the metadata has {n} lines")
        present = {e.name for e in os.scandir(rdir)}
        missing = [p for p in pngs if p not in present]
        if missing:
            more = " ..." if len(missing) > 4 else ""
            return self._skip(rdir, f"missing {len(missing)} rendering(s): {', '.join(missing[:4])}{more}")
        available = list(range(n)) if listed is None else listed
        outside = [v for v in available if not 0 <= v < n]
        if outside:
            return self._skip(rdir, f"the split file lists views {outside} but the model has {n}")
        if isinstance(self.views, tuple):
            lacking = [v for v in self.views if v not in available]
            if lacking:
                return self._skip(rdir, f"requested views {lacking} are not available in split {self.split!r}")
        binvox = self.voxels_root / synset / model / "model.binvox"
        if not binvox.is_file() or binvox.stat().st_size == 0:
            return self._skip(binvox, "missing model.binvox" if not binvox.exists() else "empty model.binvox")
        obj = None
        if self.shapenet_root is not None:
            obj_path = self.shapenet_root / synset / model / "model.obj"
            if not obj_path.is_file() or obj_path.stat().st_size == 0:
                return self._skip(obj_path, "missing ShapeNet v1 model.obj" if not obj_path.exists()
                                  else "empty model.obj")
            obj = str(obj_path)
        return R2N2Model(f"{synset}/{model}", self.synset_names[synset], str(rdir), tuple(pngs), meta,
                         str(binvox), obj, tuple(available))

    # ------------------------------------------------------------------ meshes (cached)
    def _mesh_config(self) -> SampleConfig:
        """The pipeline config of the mesh arrays: the user's sampling fields, minimal
        renders and voxels (unused: R2N2 has its own)."""
        return dataclasses.replace(self.config, image_size=8, num_views=1, voxel_resolution=1,
                                   distance=None, elevation=(0.0, 0.0))

    def _cache_key(self) -> dict[str, Any]:
        assert self.shapenet_root is not None
        return {"renderings": str(self.rendering_root.resolve()), "voxels": str(self.voxels_root.resolve()),
                "shapenet": str(self.shapenet_root.resolve()), "frame": "r2n2-voxel-lattice-v1"}

    def _build_mesh_arrays(self, m: R2N2Model) -> dict[str, np.ndarray]:
        """The GT mesh in the sample's frame and its surface / occupancy samples
        (:func:`~geomgen.data.pipeline.build_sample`)."""
        from geomgen.io import load_binvox, load_mesh

        _, center, scale = F.voxels_to_normalized(load_binvox(m.binvox, dtype=torch.float64), m.binvox)
        mesh = load_mesh(m.obj)  # type: ignore[arg-type]
        verts = (mesh.verts_list()[0].double() - center) / scale
        return build_sample(verts, mesh.faces_list()[0], seed=derive_seed(self.name, m.id),
                            config=self._mesh_config())

    def _mesh_items(self, m: R2N2Model) -> dict[str, torch.Tensor]:
        assert self.cache is not None
        try:
            a = self.cache.load(m.id)
        except GeomgenError:  # a cache file corrupted after the check: rebuild in memory
            a = self._build_mesh_arrays(m)
        return {
            "verts": torch.from_numpy(a["verts"].astype(np.float32, copy=False)),
            "faces": torch.from_numpy(a["faces"].astype(np.int64)),
            "points": torch.from_numpy(a["points"].astype(np.float32, copy=False)),
            "normals": torch.from_numpy(a["normals"].astype(np.float32, copy=False)),
            "occ_points": torch.from_numpy(a["occ_points"].astype(np.float32, copy=False)),
            "occ_labels": torch.from_numpy(a["occ_labels"].astype(np.float32)),
        }

    # ------------------------------------------------------------------ access
    def __repr__(self) -> str:
        return (f"R2N2(renderings '{self.rendering_root}', split={self.split!r}, {len(self)} models, "
                f"{len(self.categories)} categories, views={self.views!r})")

    def __len__(self) -> int:
        return len(self.models)

    def info(self) -> dict[str, Any]:
        """JSON-able summary: name, roots, split, size, categories with counts, skipped count, views, cache."""
        counts = {c: 0 for c in self.categories}
        for m in self.models:
            counts[m.category] += 1
        return {
            "name": self.name, "root": str(self.rendering_root), "voxels_root": str(self.voxels_root),
            "shapenet_root": None if self.shapenet_root is None else str(self.shapenet_root),
            "split": self.split, "samples": len(self), "categories": counts, "skipped": len(self.skipped),
            "views": self.views if isinstance(self.views, str) else list(self.views),
            "cache": None if self.cache is None else str(self.cache.path),
            "cache_bytes": 0 if self.cache is None else self.cache.size_bytes,
        }

    def label_of(self, category: str) -> int:
        """Label (index in :attr:`categories`) of a category name."""
        return self._labels[category]

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The sample dict of model ``index`` (see the module docstring); a model that
        cannot be read is replaced by the next readable one, with a warning."""
        n = len(self.models)
        i = V.check_int(index, "index", min_value=-n, max_value=n - 1, fn="R2N2") % n
        for step in range(n):
            j = (i + step) % n
            if j not in self._bad:
                sample = self._load(j)
                if sample is not None:
                    return sample
        raise DatasetError(f"r2n2 dataset (renderings '{self.rendering_root}'): no model of split {self.split!r} "
                           "can be read (see the warnings)")

    def _select_views(self, m: R2N2Model) -> list[int]:
        if self.views == "all":
            return list(m.views)
        if self.views == "random":
            return [m.views[int(torch.randint(len(m.views), ()).item())]]
        return list(self.views)

    def _load(self, j: int) -> dict[str, Any] | None:
        """Sample of model ``j``, or None (model marked bad, warned) when it cannot be read."""
        from geomgen.io import load_binvox

        m = self.models[j]
        try:
            grid, center, scale = F.voxels_to_normalized(load_binvox(m.binvox, dtype=torch.float64), m.binvox)
        except GeomgenError as e:
            return self._mark_bad(j, f"unreadable voxels: {e}")
        loaded = _load_views(m, self._select_views(m), self.image_size)
        if loaded is None:
            return self._mark_bad(j, "none of its renderings can be decoded (or they differ in size)")
        images, alphas, used, rendered = loaded
        H, W = images.shape[-2:]
        K, pose = F.r2n2_cameras(m.metadata[used], (H, W), rendered_size=rendered, dtype=torch.float64)
        pose[:, :3, 3] = (pose[:, :3, 3] - center) / scale
        sample: dict[str, Any] = {
            "id": m.id,
            "category": m.category,
            "label": self._labels[m.category],
            "images": images,
            "masks": alphas >= 0.5,
            "K": K.float(),
            "world_from_camera": pose.float(),
            "view_indices": torch.tensor(used, dtype=torch.int64),
            "voxels": grid,
        }
        if m.obj is not None:
            try:
                sample.update(self._mesh_items(m))
            except GeomgenError as e:
                return self._mark_bad(j, f"unreadable mesh: {e}")
        return sample

    def _mark_bad(self, j: int, reason: str) -> None:
        self._bad.add(j)
        warnings.warn(f"r2n2 dataset: model {self.models[j].id} ({self.models[j].rendering}) cannot be read, "
                      f"serving the next model instead: {reason}", stacklevel=4)
        return None


def _fingerprint(m: R2N2Model) -> Any:
    """``[size, mtime_ns]`` of the OBJ and the binvox (the mesh arrays depend on both)."""
    return file_fingerprint(m.obj, m.binvox)


_WARNED: set[str] = set()


def _load_views(
    m: R2N2Model, views: list[int], size: tuple[int, int] | None
) -> tuple[torch.Tensor, torch.Tensor, list[int], tuple[int, int]] | None:
    """Images ``(S, 3, H, W)``, alphas ``(S, H, W)``, the view actually used for each
    slot, and the stored PNG size; a view that does not decode is replaced by the
    next decodable one (warned once per file).  None if no view decodes."""
    from PIL import Image

    from geomgen.io.images import load_image

    cache: dict[int, tuple[torch.Tensor, torch.Tensor, tuple[int, int]] | None] = {}

    def get(v: int) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]] | None:
        if v not in cache:
            path = str(Path(m.rendering) / m.pngs[v])
            try:
                with Image.open(path) as im:  # header only: the stored size, for K
                    stored = (int(im.height), int(im.width))
                img, alpha = load_image(path, size=size, return_alpha=True)
                cache[v] = (img, alpha, stored)
            except (GeomgenError, OSError, ValueError) as e:
                cache[v] = None
                if path not in _WARNED:
                    _WARNED.add(path)
                    warnings.warn(f"r2n2 dataset: cannot decode rendering '{path}' ({e}); using another view of "
                                  f"{m.id} in its place", stacklevel=4)
        return cache[v]

    order = list(m.views)
    images, alphas, used = [], [], []
    stored_size: tuple[int, int] | None = None
    for v in views:
        start = order.index(v) if v in order else 0
        for k in range(len(order)):
            cand = v if k == 0 else order[(start + k) % len(order)]
            got = get(cand)
            if got is not None:
                break
        else:
            return None
        img, alpha, stored = got
        if stored_size is None:
            stored_size = stored
        elif stored != stored_size:
            return None
        images.append(img)
        alphas.append(alpha)
        used.append(cand)
    assert stored_size is not None
    return torch.stack(images), torch.stack(alphas), used, stored_size
