"""``shapes``: a synthetic dataset of procedural shapes in ten categories.

Geometry comes from :func:`geomgen.data.procedural.generate_shape` (closed,
manifold, outward-oriented meshes, +Y up, normalised into ``[-0.5, 0.5]^3``);
each shape is rendered, voxelised and sampled by the shared pipeline
(:mod:`geomgen.data.pipeline`) and cached on disk (:mod:`geomgen.data.cache`).

Records and splits
------------------
Shape ``i`` of category ``c`` in split ``s`` has id ``"c/s/iiii"`` and is
generated from the seed ``derive_seed("shapes", seed, s, c, i)``, so

* the splits are disjoint (different seeds) and each is deterministic;
* a shape never depends on ``per_category`` or on which categories are
  selected: growing ``per_category`` adds shapes and keeps the old ones, and
  every selection shares one cache folder (per ``seed``, ``resolution`` and
  :class:`~geomgen.data.pipeline.SampleConfig`).

Labels index ``dataset.categories``: the selected categories in the order of
:data:`geomgen.data.procedural.CATEGORIES`.  With the defaults (40 / 5 / 10
shapes per category for train / val / test, 64 px, 6 views) the whole
dataset (550 shapes) builds in well under a minute on two cores and takes
about 100 MB on disk.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from geomgen import checks as V
from geomgen.data.base import SPLITS, MeshRecord, MeshSampleDataset
from geomgen.data.pipeline import derive_seed
from geomgen.errors import InvalidInputError

__all__ = ["ShapesDataset", "DEFAULT_PER_CATEGORY"]

#: Shapes per category in each split by default.
DEFAULT_PER_CATEGORY: dict[str, int] = {"train": 40, "val": 5, "test": 10}


def _generator_fingerprint() -> str:
    """Digest of the procedural generator's source: a change to it gives a new cache folder."""
    from geomgen.data import procedural, sdf_primitives

    h = hashlib.sha256()
    for module in (procedural, sdf_primitives):
        h.update(Path(module.__file__).read_bytes())  # type: ignore[arg-type]
    return h.hexdigest()[:16]


class ShapesDataset(MeshSampleDataset):
    """Procedural shapes with renders, voxels, surface samples and occupancy labels.

    Args:
        root: where to keep the generated samples (a cache root, like
            ``cache_dir``); None = the default cache root.  The dataset has no
            source files.
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        categories: names from :data:`~geomgen.data.procedural.CATEGORIES` (or
            one name); None = all ten.
        per_category: shapes per category: an int for every split, or a dict
            ``{"train": n, "val": n, "test": n}`` (missing splits keep their
            defaults, :data:`DEFAULT_PER_CATEGORY`).
        seed: dataset seed (int >= 0): different seeds give different shapes.
        resolution: marching-cubes cells across each shape's longest side
            (16-256); the default 40 gives meshes of a few thousand to ~20k
            faces (see :func:`~geomgen.data.procedural.generate_shape`).
        **kwargs: of :class:`~geomgen.data.base.MeshSampleDataset`
            (``config``, ``cache_dir``, ``view``, ``rebuild``, ``progress``).

    Raises:
        InvalidInputError: unknown category (with a suggestion), bad counts,
            seed or resolution.
        DatasetError: the split is empty (e.g. ``per_category`` 0 for it).
    """

    name: ClassVar[str] = "shapes"

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        split: str = "train",
        *,
        categories: str | Iterable[str] | None = None,
        per_category: int | Mapping[str, int] | None = None,
        seed: int = 0,
        resolution: int = 40,
        **kwargs: Any,
    ) -> None:
        from geomgen.data.procedural import CATEGORIES, MAX_RESOLUTION, MIN_RESOLUTION

        fn = "ShapesDataset"
        seed = V.check_int(seed, "seed", min_value=0, fn=fn)
        resolution = V.check_int(resolution, "resolution", min_value=MIN_RESOLUTION, max_value=MAX_RESOLUTION,
                                 fn=fn)
        self.seed = seed
        self.resolution = resolution
        self.selected: list[str] = _check_categories(categories, CATEGORIES, fn)
        self.per_category: dict[str, int] = _check_counts(per_category, fn)
        if root is not None:
            if kwargs.get("cache_dir") is not None:
                raise InvalidInputError(f"{fn}: give 'root' or 'cache_dir' (both name the cache root), not both")
            kwargs["cache_dir"] = root
        super().__init__(None, split, **kwargs)

    def scan(self) -> list[MeshRecord]:
        """``per_category[split]`` records per selected category and split (no I/O)."""
        return [
            MeshRecord(id=f"{c}/{s}/{i:04d}", category=c,
                       source=(c, s, derive_seed("shapes", self.seed, s, c, i), self.resolution))
            for s in SPLITS for c in self.selected for i in range(self.per_category[s])
        ]

    def split_of(self, record: MeshRecord) -> str:
        """The split the record was generated for."""
        return str(record.source[1])

    def category_order(self, records: Any) -> list[str]:
        """The selected categories, in :data:`~geomgen.data.procedural.CATEGORIES` order."""
        return list(self.selected)

    def load_mesh(self, record: MeshRecord) -> tuple[torch.Tensor, torch.Tensor]:
        """Generate the record's mesh with :func:`~geomgen.data.procedural.generate_shape`."""
        from geomgen.data.procedural import generate_shape

        category, _, shape_seed, resolution = record.source
        return generate_shape(category, shape_seed, resolution=resolution)

    def sample_seed(self, record: MeshRecord) -> int:
        """Seed of the cameras and point samples: from the dataset seed and the record id."""
        return derive_seed("shapes-sample", self.seed, record.id)

    def cache_key(self) -> dict[str, Any]:
        """Seed, mesh resolution and a fingerprint of the generator's code (not the
        selection or counts: every selection shares the folder)."""
        return {"seed": self.seed, "resolution": self.resolution, "generator": _generator_fingerprint()}


def _check_categories(categories: Any, known: tuple[str, ...], fn: str) -> list[str]:
    if categories is None:
        return list(known)
    if isinstance(categories, str):
        categories = [categories]
    try:
        wanted = list(categories)
    except TypeError:
        raise InvalidInputError(f"{fn}: argument 'categories' must be a name or a list of names from "
                                f"{list(known)}, got {categories!r}") from None
    if not wanted:
        raise InvalidInputError(f"{fn}: argument 'categories' is empty; None selects all of {list(known)}")
    for c in wanted:
        if c not in known:
            near = difflib.get_close_matches(str(c), known, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InvalidInputError(f"{fn}: unknown category {c!r}{hint}; choose from {list(known)}")
    return [c for c in known if c in wanted]


def _check_counts(per_category: Any, fn: str) -> dict[str, int]:
    counts = dict(DEFAULT_PER_CATEGORY)
    if per_category is None:
        return counts
    if isinstance(per_category, Mapping):
        unknown = sorted(set(per_category) - set(SPLITS))
        if unknown:
            raise InvalidInputError(f"{fn}: argument 'per_category' has unknown split(s) {unknown}; "
                                    f"use {list(SPLITS)}")
        counts.update(per_category)
    else:
        counts = {s: per_category for s in SPLITS}
    return {s: V.check_int(n, f'per_category["{s}"]', min_value=0, fn=fn) for s, n in counts.items()}
