"""WordNet synset ids of the ShapeNetCore categories, and helpers to name them.

ShapeNet names each category folder by the 8-digit WordNet noun offset of its
synset (``03001627`` is "chair").  The dataset's ``taxonomy.json`` maps these
ids to comma-separated WordNet lemmas (``"chair"``,
``"airplane,aeroplane,plane"``); geomgen uses the first lemma as the category
name.  :data:`SHAPENETCORE_SYNSETS` is the fallback used when a tree has no
``taxonomy.json`` (R2N2's ``ShapeNetRendering``/``ShapeNetVox32`` ship none):
the 55 top-level categories of ShapeNetCore v2 (v1 uses the same ids).
:data:`R2N2_SYNSETS` lists the 13 categories rendered by 3D-R2N2 (Choy et al.
2016).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from geomgen.errors import FileFormatError, InvalidInputError

__all__ = [
    "SHAPENETCORE_SYNSETS",
    "R2N2_SYNSETS",
    "category_name",
    "normalize_synset_id",
    "read_taxonomy",
    "resolve_categories",
]

#: synset id -> first WordNet lemma, for the 55 ShapeNetCore v2 categories.
SHAPENETCORE_SYNSETS: dict[str, str] = {
    "02691156": "airplane",
    "02747177": "ashcan",
    "02773838": "bag",
    "02801938": "basket",
    "02808440": "bathtub",
    "02818832": "bed",
    "02828884": "bench",
    "02843684": "birdhouse",
    "02871439": "bookshelf",
    "02876657": "bottle",
    "02880940": "bowl",
    "02924116": "bus",
    "02933112": "cabinet",
    "02942699": "camera",
    "02946921": "can",
    "02954340": "cap",
    "02958343": "car",
    "02992529": "cellular telephone",
    "03001627": "chair",
    "03046257": "clock",
    "03085013": "computer keyboard",
    "03207941": "dishwasher",
    "03211117": "display",
    "03261776": "earphone",
    "03325088": "faucet",
    "03337140": "file",
    "03467517": "guitar",
    "03513137": "helmet",
    "03593526": "jar",
    "03624134": "knife",
    "03636649": "lamp",
    "03642806": "laptop",
    "03691459": "loudspeaker",
    "03710193": "mailbox",
    "03759954": "microphone",
    "03761084": "microwave",
    "03790512": "motorcycle",
    "03797390": "mug",
    "03928116": "piano",
    "03938244": "pillow",
    "03948459": "pistol",
    "03991062": "pot",
    "04004475": "printer",
    "04074963": "remote control",
    "04090263": "rifle",
    "04099429": "rocket",
    "04225987": "skateboard",
    "04256520": "sofa",
    "04330267": "stove",
    "04379243": "table",
    "04401088": "telephone",
    "04460130": "tower",
    "04468005": "train",
    "04530566": "vessel",
    "04554684": "washer",
}

#: the 13 categories of 3D-R2N2's ShapeNetRendering / ShapeNetVox32.
R2N2_SYNSETS: dict[str, str] = {
    s: SHAPENETCORE_SYNSETS[s]
    for s in (
        "02691156", "02828884", "02933112", "02958343", "03001627", "03211117", "03636649",
        "03691459", "04090263", "04256520", "04379243", "04401088", "04530566",
    )
}


def normalize_synset_id(value: object) -> str:
    """An 8-digit synset id string from ``"03001627"``, ``"3001627"`` or ``3001627``.

    ShapeNet's split CSVs store the id as a number in some releases, which
    drops the leading zero; folder names always have 8 digits.  Values that
    are not all digits are returned stripped but otherwise unchanged.
    """
    text = str(value).strip()
    return text.zfill(8) if text.isdigit() else text


def read_taxonomy(path: Path) -> dict[str, str]:
    """Read ShapeNet's ``taxonomy.json``: synset id -> category name (first lemma).

    The file is a JSON list of objects with at least ``synsetId`` and
    ``name`` (``"airplane,aeroplane,plane"``); ``children`` and
    ``numInstances`` are ignored.  Every entry (top-level or child synset) is
    returned; the caller picks the ids it has folders for.

    Raises:
        FileFormatError: not valid JSON, not a list of such objects; names the file.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FileFormatError(f"cannot read ShapeNet taxonomy '{path}': {e}") from e
    if not isinstance(data, list):
        raise FileFormatError(
            f"ShapeNet taxonomy '{path}' must hold a JSON list of {{synsetId, name, ...}} "
            f"objects, got {type(data).__name__}"
        )
    names: dict[str, str] = {}
    for i, entry in enumerate(data):
        if not isinstance(entry, dict) or "synsetId" not in entry or "name" not in entry:
            raise FileFormatError(
                f"ShapeNet taxonomy '{path}': entry {i} must be an object with 'synsetId' and "
                f"'name', got {entry!r:.80}"
            )
        names[normalize_synset_id(entry["synsetId"])] = category_name(str(entry["name"]))
    return names


def category_name(lemmas: str) -> str:
    """The category name of a comma-separated lemma list: its first lemma, stripped.

    ``"airplane,aeroplane,plane"`` -> ``"airplane"``.
    """
    first = lemmas.split(",")[0].strip()
    return first or lemmas.strip()


def resolve_categories(
    wanted: str | Iterable[str] | None,
    available: Mapping[str, str],
    *,
    argument: str = "categories",
    fn: str = "ShapeNet",
) -> list[str] | None:
    """Synset ids selected by ``wanted`` among ``available`` (synset id -> name).

    Each entry of ``wanted`` is a synset id (``"03001627"``, leading zero
    optional) or a category name (``"chair"``, case-insensitive; the full
    lemma list of :data:`SHAPENETCORE_SYNSETS` is not searched, only the
    first lemma).  ``None`` selects everything (returns None).

    Raises:
        InvalidInputError: an entry matches no available synset; the message
            lists what is available.
    """
    if wanted is None:
        return None
    items = [wanted] if isinstance(wanted, str) else list(wanted)
    if not items:
        raise InvalidInputError(f"{fn}: argument '{argument}' must not be empty (use None for all)")
    by_name: dict[str, list[str]] = {}
    for sid, name in available.items():
        by_name.setdefault(name.lower(), []).append(sid)
    chosen: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise InvalidInputError(
                f"{fn}: argument '{argument}' must hold synset ids or category names (str), "
                f"got {type(item).__name__}"
            )
        sid = normalize_synset_id(item)
        if sid in available:
            hits = [sid]
        else:
            hits = by_name.get(item.strip().lower(), [])
        if not hits:
            listing = ", ".join(f"{s} ({n})" for s, n in sorted(available.items()))
            raise InvalidInputError(
                f"{fn}: argument '{argument}': '{item}' is neither a synset id nor a category "
                f"name found here; available: {listing or 'none'}"
            )
        chosen.extend(h for h in hits if h not in chosen)
    return chosen
