"""ShapeNetCore v1 and v2 as a :class:`~geomgen.data.base.MeshSampleDataset`.

Layouts read (the official ones; ``<synset>`` is an 8-digit WordNet id,
``<model>`` a model hash)::

    v1: <root>/<synset>/<model>/model.obj                      (+ model.mtl, images/)
    v2: <root>/<synset>/<model>/models/model_normalized.obj    (+ .mtl, .json, *.binvox)
        <root>/taxonomy.json                                   (optional, both versions)

The version is detected from the first model folder that holds either file
(or forced with ``version=``).  Only the OBJ files are read, through
:func:`geomgen.io.load_mesh` (ShapeNet's OBJs have many ``g`` groups and
``usemtl`` switches, quads and ``vt``/``vn`` records; materials and textures
are ignored).  Every mesh is then normalised, rendered, voxelised and sampled
by the shared pipeline exactly like the ``shapes`` dataset (see
:mod:`geomgen.data.base` and :mod:`geomgen.data.pipeline`): bounding box
centred at the origin, longest edge 1, +Y up (ShapeNet's up axis).

Categories: the first lemma of the synset's ``name`` in ``taxonomy.json``
(``"airplane,aeroplane,plane"`` -> ``"airplane"``), else geomgen's table of
the 55 ShapeNetCore synsets, else the synset id itself.  ``categories=``
selects synsets by name or id.

Splits: with ``split_file=`` (ShapeNet's official ``all.csv``, columns
``id,synsetId,subSynsetId,modelId,split``, split one of train/val/test)
each model gets the split listed there and models the file does not list are
skipped (and listed in the warning); without it the base's stable hash split
of the model id applies (:func:`geomgen.data.base.hash_split`).

Bad input: a model folder without its OBJ file, an empty OBJ, or one that
:func:`~geomgen.io.load_mesh` rejects (no faces, faces that reference missing
vertices, NaN coordinates, truncated file) is skipped and listed in the
dataset's single warning (with the count); broken files are remembered in
the sample cache and retried only when they change.  A split without any
usable model raises :class:`~geomgen.errors.DatasetError` naming the root,
the split and why.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

from geomgen.data._synsets import SHAPENETCORE_SYNSETS, normalize_synset_id, read_taxonomy, resolve_categories
from geomgen.data.base import MeshFileDataset, MeshRecord
from geomgen.errors import FileFormatError, InvalidInputError

__all__ = ["ShapeNetCore", "detect_shapenet_version", "read_split_csv", "MODEL_FILES"]

#: model file of each ShapeNetCore version, relative to the model folder.
MODEL_FILES: dict[int, str] = {1: "model.obj", 2: "models/model_normalized.obj"}
_SPLITS = ("train", "val", "test")


def _synset_dirs(root: Path) -> list[Path]:
    """Category folders of a ShapeNetCore tree: directories named by digits, sorted."""
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())


def detect_shapenet_version(root: str | Path) -> int | None:
    """1 or 2: the layout of the first model folder that holds a model file.

    Looks for ``<synset>/<model>/models/model_normalized.obj`` (v2) and
    ``<synset>/<model>/model.obj`` (v1) in sorted order and stops at the
    first hit; returns None when no folder holds either.
    """
    root = Path(root)
    if not root.is_dir():
        return None
    for synset in _synset_dirs(root):
        for model in sorted(synset.iterdir()):
            if (model / MODEL_FILES[2]).is_file():
                return 2
            if (model / MODEL_FILES[1]).is_file():
                return 1
    return None


def read_split_csv(path: str | Path) -> dict[tuple[str, str], str]:
    """Read ShapeNet's split CSV: ``{(synset_id, model_id): "train" | "val" | "test"}``.

    Columns are found by name (``synsetId``, ``modelId``, ``split``); synset
    ids are zero-padded to 8 digits (some releases store them as numbers).

    Raises:
        FileFormatError: unreadable file, missing columns, or a split other
            than train/val/test; names the file (and line).
    """
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            fields = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in ("synsetId", "modelId", "split") if c not in fields]
            if missing:
                raise FileFormatError(
                    f"ShapeNet split file '{path}': missing column(s) {missing}; expected a header "
                    "like id,synsetId,subSynsetId,modelId,split"
                )
            reader.fieldnames = fields
            out: dict[tuple[str, str], str] = {}
            for n, row in enumerate(reader, 2):
                split = (row.get("split") or "").strip()
                if split not in _SPLITS:
                    raise FileFormatError(
                        f"ShapeNet split file '{path}' line {n}: split must be one of {list(_SPLITS)}, got {split!r}"
                    )
                key = (normalize_synset_id(row["synsetId"] or ""), (row["modelId"] or "").strip())
                out[key] = split
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise FileFormatError(f"cannot read ShapeNet split file '{path}': {e}") from e
    return out


class ShapeNetCore(MeshFileDataset):
    """ShapeNetCore v1 / v2 meshes served as geomgen sample dicts (see the module docstring).

    Args:
        root: the ShapeNetCore folder (holding the synset folders).
        split: ``"train"``, ``"val"`` or ``"test"``.
        version: 1, 2, or None to detect it from the tree.
        categories: synset ids (``"03001627"``) and/or category names
            (``"chair"``) to keep; None keeps all.
        split_file: ShapeNet's split CSV (``all.csv``); None = hash split.
        **config: of :class:`~geomgen.data.base.MeshSampleDataset`
            (``config=SampleConfig(...)``, ``cache_dir``, ``view``, ``rebuild``,
            ``progress``, ``splits``).

    Samples: the dict of :mod:`geomgen.data.base` (``id`` = ``"<synset>/<model>"``,
    ``category`` = category name, mesh, renders, voxels, points, occupancy).

    Attributes:
        version: 1 or 2.
        synsets: the selected synset ids; ``synset_names`` maps every synset
            folder of the tree to its category name.

    Raises:
        InvalidInputError: ``root`` is not a folder, bad ``version``, or
            ``categories`` naming nothing in the tree.
        DatasetError: no usable model in the split (the message says why).
        FileFormatError: unreadable ``taxonomy.json`` or split CSV.
    """

    name: ClassVar[str] = "shapenet"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        *,
        version: int | None = None,
        categories: str | Iterable[str] | None = None,
        split_file: str | Path | None = None,
        **config: Any,
    ) -> None:
        fn = "ShapeNetCore"
        root_path = Path(root).expanduser()
        if not root_path.is_dir():
            raise InvalidInputError(
                f"{fn}: argument 'root' must be a ShapeNetCore folder, '{root_path}' is not a folder"
            )
        if version is None:
            found = detect_shapenet_version(root_path)
            version = found if found is not None else 1  # no model file at all: scan reports it
        elif version not in MODEL_FILES:
            raise InvalidInputError(f"{fn}: argument 'version' must be 1, 2 or None (detect), got {version!r}")
        self.version: int = int(version)
        taxonomy = root_path / "taxonomy.json"
        names = dict(SHAPENETCORE_SYNSETS)
        if taxonomy.is_file():
            names.update(read_taxonomy(taxonomy))
        on_disk = {p.name: names.get(p.name, p.name) for p in _synset_dirs(root_path)}
        self.synset_names: dict[str, str] = on_disk
        self.synsets: list[str] = resolve_categories(categories, on_disk, fn=fn) or sorted(on_disk)
        self.split_file: Path | None = Path(split_file).expanduser() if split_file is not None else None
        self._split_table: dict[tuple[str, str], str] | None = (
            read_split_csv(self.split_file) if self.split_file is not None else None
        )
        super().__init__(root_path, split, **config)

    # ------------------------------------------------------------------ hooks
    def scan(self) -> list[MeshRecord]:
        """One record per model folder of the selected synsets.  Folders without a
        (non-empty) model file, and with ``split_file`` models it does not list,
        are skipped with the reason."""
        assert self.root is not None
        rel = MODEL_FILES[self.version]
        other = MODEL_FILES[3 - self.version]
        records: list[MeshRecord] = []
        for synset in self.synsets:
            category = self.synset_names[synset]
            for model_dir in sorted(p for p in (self.root / synset).iterdir() if p.is_dir()):
                path = model_dir / rel
                rid = f"{synset}/{model_dir.name}"
                if not path.is_file():
                    hint = f" (it has {other}: a ShapeNetCore v{3 - self.version} model?)" \
                        if (model_dir / other).is_file() else ""
                    self.skip(str(path), f"missing {rel}{hint}")
                    continue
                if path.stat().st_size == 0:
                    self.skip(str(path), "empty file")
                    continue
                if self._split_table is not None and (synset, model_dir.name) not in self._split_table:
                    self.skip(rid, f"not listed in split file '{self.split_file}'")
                    continue
                records.append(MeshRecord(id=rid, category=category, source=str(path)))
        return records

    def split_of(self, record: MeshRecord) -> str:
        """The split from ``split_file`` when given, else the base's hash split."""
        if self._split_table is None:
            return super().split_of(record)
        synset, model = record.id.split("/", 1)
        return self._split_table[(synset, model)]

    def cache_key(self) -> dict[str, Any]:
        """The resolved root and the version (models are tracked one by one, so
        splits and category selections share one cache)."""
        assert self.root is not None
        return {"root": str(self.root.resolve()), "version": self.version}
