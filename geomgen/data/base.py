"""Base class of the mesh-based datasets (``shapes``, ``mesh-folder``, ``shapenet``).

A :class:`MeshSampleDataset` goes through four steps when constructed:

1. **scan** -- the subclass lists its shapes as :class:`MeshRecord` s
   (``scan()``), reporting entries it cannot use with ``self.skip(path, reason)``;
2. **split** -- records are kept whose ``split_of(record)`` is the requested
   split (default: a stable hash of the record id against ``splits``);
   ``split="all"`` keeps train, val and test;
3. **build** -- every kept record whose sample is not yet in the on-disk cache
   (:mod:`geomgen.data.cache`) is loaded (``load_mesh``), normalised
   (:func:`~geomgen.data.pipeline.normalize_mesh`: bounding box centred at the
   origin, longest edge 1) and turned into a sample by
   :func:`~geomgen.data.pipeline.build_sample`, with a tqdm progress bar.
   Records that fail (broken file, no faces, degenerate mesh, ...) are skipped;
4. **report** -- one warning lists every skipped item with its reason and the
   count (also kept in ``dataset.skipped``); an empty result raises
   :class:`~geomgen.errors.DatasetError` naming the dataset, root, split and why.

``__getitem__`` then only reads the cache (cheap, safe in DataLoader workers)
and returns the sample dict of :mod:`geomgen.data` (torch tensors):

=====================  ==========================================================
``id``, ``category``   str; ``label`` int = index of ``category`` in ``categories``
``verts``, ``faces``   ``(V, 3)`` float32, ``(F, 3)`` int64: the normalised GT mesh
``images``             ``(S, 3, H, W)`` float32 in [0, 1]
``depths``, ``masks``  ``(S, H, W)`` float32 z-depth (0 = background), bool
``K``                  ``(S, 3, 3)`` float32 intrinsics (pixel centres at +0.5)
``world_from_camera``  ``(S, 4, 4)`` float32 camera-to-world poses (OpenCV frame)
``view_indices``       ``(S,)`` int64, which of the stored views were returned
``voxels``             ``(R, R, R)`` float32 {0, 1}, ``grid[k, j, i]`` <-> ``(z, y, x)``
``points``, ``normals`` ``(P, 3)`` float32 surface samples and unit normals
``occ_points``         ``(Q, 3)`` float32 (uniform in ``[-b, b]^3`` first, then near-surface)
``occ_labels``         ``(Q,)`` float32 {0, 1}, 1 = inside
=====================  ==========================================================

``S`` is ``config.num_views`` with ``view="all"``, 1 with ``view="random"``
(drawn with torch's global RNG at every access, so DataLoader workers, which
torch seeds differently, draw different views) or ``view=<int>``.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from geomgen import checks as V
from geomgen.data.cache import SampleCache
from geomgen.data.pipeline import SampleConfig, build_sample, derive_seed, normalize_mesh
from geomgen.errors import DatasetError, GeomgenError, InvalidInputError

__all__ = ["MeshRecord", "MeshSampleDataset", "MeshFileDataset", "SPLITS", "hash_split", "file_fingerprint", "warn_skipped"]

#: The named splits; ``"all"`` selects their union.
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class MeshRecord:
    """One shape source of a dataset (picklable).

    Attributes:
        id: unique in the dataset and stable across runs (e.g. ``"03001627/1a2b3c"``
            or a path relative to the root); names the sample in the cache.
        category: human-readable category (``"chair"``); ``label`` is its index
            in ``dataset.categories``.
        source: what the subclass needs to load the mesh (a path, generator
            parameters, ...); only the subclass interprets it.
    """

    id: str
    category: str
    source: Any


def hash_split(key: str, splits: tuple[float, float, float]) -> str:
    """``"train"``, ``"val"`` or ``"test"`` from a stable hash of ``key``.

    ``u = first 8 bytes of sha256(key) / 2**64`` in [0, 1) is compared with the
    cumulative fractions ``splits`` (train, val, test), so a record's split never
    depends on the other records, the platform or the Python hash seed.
    """
    u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little") / 2.0**64
    return "train" if u < splits[0] else "val" if u < splits[0] + splits[1] else "test"


def file_fingerprint(*paths: Any) -> list[int] | None:
    """``[size, mtime_ns, ...]`` of every file in ``paths`` (a JSON-able source
    identity for :meth:`MeshSampleDataset.record_fingerprint`), or None when one
    of them is missing, unreadable or not a path."""
    out: list[int] = []
    for path in paths:
        try:
            st = os.stat(path)
        except (OSError, TypeError):
            return None
        out += [st.st_size, st.st_mtime_ns]
    return out


def warn_skipped(
    what: str, skipped: Sequence[tuple[str, str]], kept: int, *, noun: str = "item", stacklevel: int = 3
) -> None:
    """The one warning of a dataset scan: every skipped ``(item, reason)`` on its
    own line, then the counts.  Nothing when ``skipped`` is empty."""
    if skipped:
        listing = "\n".join(f"  {item}: {reason}" for item, reason in skipped)
        warnings.warn(f"{what}: skipped {len(skipped)} {noun}(s):\n{listing}\n{len(skipped)} skipped, {kept} kept",
                      stacklevel=stacklevel)


def _check_splits(splits: Any, fn: str) -> tuple[float, float, float]:
    ok = isinstance(splits, (tuple, list)) and len(splits) == 3 and all(
        isinstance(s, (int, float)) and not isinstance(s, bool) and s >= 0 for s in splits)
    if not ok or abs(sum(splits) - 1.0) > 1e-6:
        raise InvalidInputError(f"{fn}: argument 'splits' must be 3 fractions (train, val, test) >= 0 summing "
                                f"to 1, got {splits!r}")
    return float(splits[0]), float(splits[1]), float(splits[2])


class MeshSampleDataset(torch.utils.data.Dataset):
    """Scan records -> split -> build missing samples into the cache -> serve sample dicts.

    Subclasses set :attr:`name` and implement :meth:`scan`, :meth:`load_mesh`
    and :meth:`cache_key`; they may override :meth:`split_of`,
    :meth:`category_order`, :meth:`sample_seed` and :meth:`record_fingerprint`.  Attributes a subclass's
    hooks need must be set **before** calling ``super().__init__`` (the hooks
    run inside it).

    Args:
        root: the dataset's source folder (None for sources that need none,
            e.g. procedural shapes).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        config: :class:`SampleConfig` (or a dict of its fields); None = defaults.
        cache_dir: cache root; None = ``$GEOMGEN_CACHE_DIR`` etc. (see
            :func:`geomgen.data.cache.cache_root`).
        view: ``"all"``, ``"random"`` or a view index in ``[0, num_views)``.
        rebuild: rebuild every sample of the split (and retry failed ones).
        progress: show a progress bar while building.
        splits: train/val/test fractions of the default hash split.
        verify: how the cache is checked on opening: ``"hash"`` (sizes and
            SHA-256 of every file) or ``"size"`` (sizes and modification times,
            instant; see :mod:`geomgen.data.cache`).

    Attributes:
        records: the :class:`MeshRecord` s served, in index order.
        categories: category names; ``label`` indexes it (the same for every split).
        skipped: ``(id or path, reason)`` of every item left out.
        cache: the :class:`~geomgen.data.cache.SampleCache`.

    Raises:
        InvalidInputError: bad arguments.
        DatasetError: the split is empty (nothing found, or everything skipped).
    """

    name: ClassVar[str] = "meshes"

    def __init__(
        self,
        root: str | os.PathLike[str] | None,
        split: str = "train",
        *,
        config: SampleConfig | dict[str, Any] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        view: str | int = "all",
        rebuild: bool = False,
        progress: bool = True,
        splits: Sequence[float] = (0.8, 0.1, 0.1),
        verify: str = "hash",
    ) -> None:
        fn = type(self).__name__
        if split not in (*SPLITS, "all"):
            raise InvalidInputError(f"{fn}: argument 'split' must be one of {[*SPLITS, 'all']}, got {split!r}")
        for flag, value in (("rebuild", rebuild), ("progress", progress)):
            if not isinstance(value, bool):
                raise InvalidInputError(f"{fn}: argument '{flag}' must be True or False, got {value!r}")
        self.root: Path | None = Path(root).expanduser() if root is not None else None
        self.split = split
        self.config = SampleConfig() if config is None else SampleConfig.from_dict(config)
        self.splits = _check_splits(splits, fn)
        if view not in ("all", "random"):
            try:
                view = V.check_int(view, "view", min_value=0, max_value=self.config.num_views - 1, fn=fn)
            except InvalidInputError:
                raise V.fail("view", f"must be 'all', 'random' or an int in [0, {self.config.num_views}) "
                             f"(config.num_views), got {view!r}", fn) from None
        self.view: str | int = view
        self.skipped: list[tuple[str, str]] = []

        scanned = list(self.scan())
        self.categories: list[str] = list(self.category_order(scanned))
        self._labels = {c: i for i, c in enumerate(self.categories)}
        selected = [r for r in scanned if (self.split_of(r) in SPLITS if split == "all" else self.split_of(r) == split)]
        self.cache = SampleCache(self.name, self.config, self.cache_key(), root=cache_dir)
        self.records, failed = self.cache.ensure(
            selected, self._build_record, fingerprint=self.record_fingerprint, rebuild=rebuild, verify=verify,
            progress=progress, desc=f"{self.name} {split}",
        )
        self.skipped.extend(failed)
        self._warned_reads: set[str] = set()
        warn_skipped(f"{self.name} dataset ({self._where()}, split {split!r})", self.skipped, len(self.records),
                     stacklevel=4)
        if not self.records:
            if not scanned:
                why = "no shapes were found" + ("" if not self.skipped else " that could be used (see the warning)")
            elif not selected:
                why = f"none of the {len(scanned)} shapes found falls in this split (splits={self.splits})"
            else:
                why = f"every shape of the split ({len(selected)}) was skipped (see the warning)"
            raise DatasetError(f"{self.name} dataset ({self._where()}): split {split!r} is empty: {why}")

    # ------------------------------------------------------------------ hooks
    def scan(self) -> list[MeshRecord]:
        """All records of the source, every split (call :meth:`skip` for unusable entries)."""
        raise NotImplementedError(f"{type(self).__name__} must implement scan()")

    def load_mesh(self, record: MeshRecord) -> tuple[torch.Tensor, torch.Tensor]:
        """``verts (V, 3)`` floating and ``faces (F, 3)`` integer of a record, in any
        frame (the base normalises); raise a :class:`~geomgen.errors.GeomgenError`
        on broken input (the record is then skipped and listed)."""
        raise NotImplementedError(f"{type(self).__name__} must implement load_mesh()")

    def cache_key(self) -> dict[str, Any]:
        """JSON-able identity of the source (root, file sizes/mtimes, parameters): a
        change gives a new cache folder."""
        raise NotImplementedError(f"{type(self).__name__} must implement cache_key()")

    def record_fingerprint(self, record: MeshRecord) -> Any:
        """JSON-able identity of one record's source (e.g. ``[size, mtime_ns]`` of
        its file), stored with its cached sample: when it changes, that sample is
        rebuilt (and a remembered failure retried).  Default None (never changes)."""
        return None

    def split_of(self, record: MeshRecord) -> str:
        """The record's split: default :func:`hash_split` of its id with ``self.splits``."""
        return hash_split(record.id, self.splits)

    def category_order(self, records: Sequence[MeshRecord]) -> list[str]:
        """Category names in label order, from all scanned records: default sorted."""
        return sorted({r.category for r in records})

    def sample_seed(self, record: MeshRecord) -> int:
        """Seed of :func:`build_sample` for a record (cameras, point samples): default
        a hash of the dataset name and record id."""
        return derive_seed(self.name, record.id)

    # ------------------------------------------------------------------ helpers
    def skip(self, item: str, reason: str) -> None:
        """Record an item (path or id) left out, with the reason, for the warning."""
        self.skipped.append((str(item), str(reason)))

    def _where(self) -> str:
        return f"root '{self.root}'" if self.root is not None else "generated"

    def _build_record(self, record: MeshRecord) -> dict[str, np.ndarray]:
        verts, faces = self.load_mesh(record)
        verts, faces = normalize_mesh(torch.as_tensor(verts), torch.as_tensor(faces), name=str(record.id))
        return build_sample(verts, faces, seed=self.sample_seed(record), config=self.config)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self._where()}, split={self.split!r}, {len(self)} samples, "
                f"{len(self.categories)} categories, view={self.view!r}, cache='{self.cache.path}')")

    def __len__(self) -> int:
        return len(self.records)

    def label_of(self, category: str) -> int:
        """Label (index in :attr:`categories`) of a category name."""
        return self._labels[category]

    def load_arrays(self, index: int) -> dict[str, np.ndarray]:
        """The stored NumPy arrays of sample ``index`` (all views, storage dtypes).

        A cache file that no longer decodes is rebuilt in memory (warned once
        per file and process); the next dataset construction rebuilds it on disk.
        """
        n = len(self.records)
        index = V.check_int(index, "index", min_value=-n, max_value=n - 1, fn=type(self).__name__)
        record = self.records[index]
        try:
            return self.cache.load(record.id)
        except GeomgenError as e:
            if record.id not in self._warned_reads:
                self._warned_reads.add(record.id)
                warnings.warn(f"{self.name} dataset: {e}; rebuilding the sample in memory", stacklevel=3)
            try:
                return self._build_record(record)
            except Exception as e2:  # noqa: BLE001
                raise DatasetError(f"{self.name} dataset ({self._where()}): sample {record.id!r} is unreadable in "
                                   f"the cache and cannot be rebuilt: {e2}") from e2

    def _views(self, S: int) -> list[int]:
        if self.view == "all":
            return list(range(S))
        if self.view == "random":
            return [int(torch.randint(S, ()).item())]
        return [int(self.view)]

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The sample dict of record ``index`` (see the module docstring)."""
        a = self.load_arrays(index)
        record = self.records[int(index)]
        views = self._views(int(a["images"].shape[0]))
        sel = np.asarray(views, dtype=np.int64)
        return {
            "id": record.id,
            "category": record.category,
            "label": self._labels[record.category],
            "verts": torch.from_numpy(a["verts"].astype(np.float32, copy=False)),
            "faces": torch.from_numpy(a["faces"].astype(np.int64)),
            "images": torch.from_numpy(a["images"][sel]).to(torch.float32).div_(255.0),
            "depths": torch.from_numpy(a["depths"][sel].astype(np.float32, copy=False)),
            "masks": torch.from_numpy(a["masks"][sel].astype(bool, copy=False)),
            "K": torch.from_numpy(a["K"][sel].astype(np.float32, copy=False)),
            "world_from_camera": torch.from_numpy(a["world_from_camera"][sel].astype(np.float32, copy=False)),
            "view_indices": torch.from_numpy(sel),
            "voxels": torch.from_numpy(a["voxels"].astype(np.float32)),
            "points": torch.from_numpy(a["points"].astype(np.float32, copy=False)),
            "normals": torch.from_numpy(a["normals"].astype(np.float32, copy=False)),
            "occ_points": torch.from_numpy(a["occ_points"].astype(np.float32, copy=False)),
            "occ_labels": torch.from_numpy(a["occ_labels"].astype(np.float32)),
        }

    def info(self) -> dict[str, Any]:
        """JSON-able summary: name, root, split, size, categories with counts, skipped count, cache path."""
        counts = {c: 0 for c in self.categories}
        for r in self.records:
            counts[r.category] += 1
        return {
            "name": self.name, "root": None if self.root is None else str(self.root), "split": self.split,
            "samples": len(self), "categories": counts, "skipped": len(self.skipped),
            "view": self.view, "config": self.config.to_dict(), "cache": str(self.cache.path),
            "cache_bytes": self.cache.size_bytes,
        }


class MeshFileDataset(MeshSampleDataset):
    """A :class:`MeshSampleDataset` whose records' ``source`` is the path of a
    mesh file: meshes are read with :func:`geomgen.io.load_mesh` and each cached
    sample is tied to its file's ``[size, mtime_ns]``, so an edited file is
    rebuilt (and a broken one retried) on its own."""

    def load_mesh(self, record: MeshRecord) -> tuple[torch.Tensor, torch.Tensor]:
        """``verts (V, 3)`` and ``faces (F, 3)`` of the file in its own coordinates
        (the base normalises).  Raises the errors of :func:`geomgen.io.load_mesh`
        for broken files (no faces, out-of-range indices, NaN, truncated)."""
        from geomgen.io import load_mesh

        mesh = load_mesh(record.source)
        return mesh.verts_list()[0], mesh.faces_list()[0]

    def record_fingerprint(self, record: MeshRecord) -> Any:
        """``[size, mtime_ns]`` of the record's file (None when it is gone)."""
        return file_fingerprint(record.source)
