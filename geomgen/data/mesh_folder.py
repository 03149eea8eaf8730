"""``mesh-folder``: any folder of mesh files as a dataset, sampled like ``shapes``.

Every file with a mesh extension (``.obj``, ``.off``, ``.ply``, ``.stl`` by
default, case-insensitive) under ``root`` -- recursively unless told
otherwise, skipping hidden files and folders -- is read with
:func:`geomgen.io.load_mesh`, normalised (bounding box centred at the origin,
longest edge 1; the file's own up axis is kept, geomgen assumes +Y) and
rendered, voxelised and sampled by the shared pipeline
(:mod:`geomgen.data.pipeline`).  Meshes need not be closed: occupancy and
solid voxels then follow the majority-of-three-rays parity rule of
:func:`geomgen.ops.points_in_meshes`, which degrades gracefully for small holes.

* ``id``: the path relative to ``root`` (POSIX separators).
* ``category``: with ``category_from="parent"`` the name of the file's folder
  (files directly in ``root`` get ``root``'s own name); with None every mesh
  has category ``"mesh"``.  Labels index the sorted category names.
* Splits: ``"all"`` (default) or a stable hash split of the id (``splits``).

Bad files -- empty, truncated, unparsable, a point set without faces, NaN
coordinates, out-of-range indices, a degenerate mesh (zero-size box or zero
area) -- are skipped and listed in one warning with the count; they are
remembered in the cache and re-tried only when the file changes (size or
modification time).  A folder without a usable mesh raises
:class:`~geomgen.errors.DatasetError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from geomgen.data.base import MeshFileDataset, MeshRecord
from geomgen.errors import InvalidInputError

__all__ = ["MeshFolderDataset", "MESH_EXTENSIONS"]

#: Extensions read by default.
MESH_EXTENSIONS: tuple[str, ...] = (".obj", ".off", ".ply", ".stl")
_READABLE = (".obj", ".off", ".ply", ".stl", ".glb", ".gltf")


class MeshFolderDataset(MeshFileDataset):
    """Mesh files of a folder served as geomgen sample dicts (see the module docstring).

    Args:
        root: the folder.
        split: ``"all"`` (default), ``"train"``, ``"val"`` or ``"test"``.
        extensions: file extensions to read (with or without the dot; any of
            ``.obj .off .ply .stl .glb .gltf``).
        recursive: also read sub-folders (symbolic links to files are followed,
            links to folders are not).
        category_from: ``"parent"`` (the file's folder name) or None (one category).
        **kwargs: of :class:`~geomgen.data.base.MeshSampleDataset` (``config``,
            ``cache_dir``, ``view``, ``rebuild``, ``progress``, ``splits``).

    Raises:
        InvalidInputError: ``root`` is not a folder, bad arguments.
        DatasetError: no usable mesh in the split.
    """

    name: ClassVar[str] = "mesh-folder"

    def __init__(
        self,
        root: str | os.PathLike[str],
        split: str = "all",
        *,
        extensions: Iterable[str] = MESH_EXTENSIONS,
        recursive: bool = True,
        category_from: str | None = "parent",
        **kwargs: Any,
    ) -> None:
        fn = "MeshFolderDataset"
        if root is None:
            raise InvalidInputError(f"{fn}: argument 'root' is required (a folder of mesh files)")
        root_path = Path(root).expanduser()
        if not root_path.is_dir():
            raise InvalidInputError(f"{fn}: argument 'root' must be a folder of mesh files, '{root_path}' is not a "
                                    "folder")
        if isinstance(extensions, str):
            extensions = [extensions]
        exts = []
        for e in extensions:
            e = str(e).lower()
            e = e if e.startswith(".") else "." + e
            if e not in _READABLE:
                raise InvalidInputError(f"{fn}: argument 'extensions' has {e!r}; readable: {list(_READABLE)}")
            exts.append(e)
        if not exts:
            raise InvalidInputError(f"{fn}: argument 'extensions' is empty")
        if not isinstance(recursive, bool):
            raise InvalidInputError(f"{fn}: argument 'recursive' must be True or False, got {recursive!r}")
        if category_from not in ("parent", None):
            raise InvalidInputError(f"{fn}: argument 'category_from' must be 'parent' or None, got {category_from!r}")
        self.extensions: tuple[str, ...] = tuple(sorted(set(exts)))
        self.recursive = recursive
        self.category_from = category_from
        self._root_path = root_path
        super().__init__(root_path, split, **kwargs)

    def _files(self) -> list[Path]:
        """Candidate files, sorted by relative path (hidden files and folders left out)."""
        root = self._root_path
        out: list[Path] = []
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith(".")) if self.recursive else []
            for f in files:
                if not f.startswith(".") and os.path.splitext(f)[1].lower() in self.extensions:
                    out.append(Path(folder) / f)
        return sorted(out, key=lambda p: p.relative_to(root).as_posix())

    def scan(self) -> list[MeshRecord]:
        """One record per mesh file; empty or unreadable-at-stat files are skipped."""
        records = []
        for path in self._files():
            rel = path.relative_to(self._root_path).as_posix()
            try:
                size = path.stat().st_size  # follows links: a dangling link fails here
            except OSError as e:
                self.skip(str(path), f"cannot stat ({e.strerror or e})")
                continue
            if size == 0:
                self.skip(str(path), "empty file")
                continue
            if self.category_from == "parent":
                category = path.parent.name if path.parent != self._root_path else self._root_path.resolve().name
            else:
                category = "mesh"
            records.append(MeshRecord(id=rel, category=category, source=str(path)))
        return records

    def cache_key(self) -> dict[str, Any]:
        """The resolved root and the scan options (files are tracked one by one)."""
        return {"root": str(self._root_path.resolve()), "extensions": list(self.extensions),
                "recursive": self.recursive, "category_from": self.category_from}
