"""Shipped pretrained weights: :func:`list_pretrained`, :func:`pretrained_info`, :func:`load_pretrained`.

Weights live in the assets folder: ``$GEOMGEN_ASSETS`` if set, else the
``assets`` folder next to the ``geomgen`` package (a source or editable
checkout).  ``assets/pretrained/manifest.json`` lists them::

    {"format": "geomgen-pretrained/1",
     "dataset": {...how the training data was made...},
     "models": {"voxel": {"file": "voxel.pt", "sha256": "...", "bytes": 123,
                          "config": {...build kwargs...}, "train": {...}, "eval": {...}}},
     "baseline": {...the mean-shape baseline's eval summary...}}

Each model file is a :func:`geomgen.models.save_model` file (format
``geomgen-model/1``); its size and SHA-256 are checked before it is loaded.
``scripts/train_pretrained.py`` (or ``geomgen train NAME``) makes them and
records them with :func:`write_manifest_entry`.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from geomgen.errors import FileFormatError, GeomgenError, MeshFileNotFoundError

__all__ = [
    "PRETRAINED_FORMAT",
    "assets_dir",
    "manifest_path",
    "read_manifest",
    "list_pretrained",
    "pretrained_info",
    "load_pretrained",
    "write_manifest_entry",
    "write_manifest_section",
    "PretrainedNotFoundError",
]

#: ``format`` field of the manifest.
PRETRAINED_FORMAT = "geomgen-pretrained/1"


class PretrainedNotFoundError(GeomgenError, LookupError):
    """No pretrained weights under that name (or no manifest at all)."""


def assets_dir() -> Path:
    """Where the shipped assets are: ``$GEOMGEN_ASSETS`` if set; else ``<repo root>/assets``
    (next to the ``geomgen`` package: a source or editable checkout) when it exists;
    else ``<sys.prefix>/share/geomgen/assets``, where a wheel install puts them
    (``[tool.setuptools.data-files]`` in ``pyproject.toml``)."""
    env = os.environ.get("GEOMGEN_ASSETS")
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parents[2] / "assets"
    if checkout.is_dir():
        return checkout
    import sys

    return Path(sys.prefix) / "share" / "geomgen" / "assets"


def manifest_path() -> Path:
    """``<assets>/pretrained/manifest.json``."""
    return assets_dir() / "pretrained" / "manifest.json"


def read_manifest(missing_ok: bool = True) -> dict[str, Any]:
    """The manifest as a dict (an empty one when there is none and ``missing_ok``).

    Raises:
        FileFormatError: the manifest is not valid JSON or of another format.
    """
    path = manifest_path()
    if not path.is_file():
        if missing_ok:
            return {"format": PRETRAINED_FORMAT, "models": {}}
        raise PretrainedNotFoundError(f"no pretrained manifest at '{path}' (set GEOMGEN_ASSETS to the assets "
                                      "folder, or train a model with: geomgen train NAME)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise FileFormatError(f"pretrained manifest '{path}' cannot be read: {e}") from e
    if not isinstance(data, dict) or data.get("format") != PRETRAINED_FORMAT or not isinstance(
            data.get("models", {}), dict):
        raise FileFormatError(f"pretrained manifest '{path}' is not a {PRETRAINED_FORMAT!r} manifest")
    data.setdefault("models", {})
    return data


def list_pretrained(kind: str | None = None) -> list[str]:
    """Names of the models with shipped weights (sorted): ``kind``
    ``"representation"``, ``"generator"`` or None for both (entries without
    a ``kind`` are representations)."""
    if kind not in (None, "representation", "generator"):
        raise GeomgenError(f"list_pretrained: kind must be 'representation', 'generator' or None, got {kind!r}")
    models = read_manifest()["models"]
    return sorted(n for n, e in models.items()
                  if kind is None or (e.get("kind", "representation") if isinstance(e, dict) else None) == kind)


def _unknown(name: str) -> PretrainedNotFoundError:
    available = list_pretrained()
    where = manifest_path()
    have = ", ".join(repr(n) for n in available) if available else "none"
    return PretrainedNotFoundError(
        f"no pretrained weights for {name!r} (available: {have}; manifest '{where}'). Train one with: "
        f"geomgen train {name} --out-dir runs/{name}, then pass weights='runs/{name}/model.pt' "
        "(or --weights on the command line)")


def pretrained_info(name: str) -> dict[str, Any]:
    """The manifest entry of ``name`` (file, sha256, bytes, config, train, eval) plus ``"path"``.

    Raises:
        PretrainedNotFoundError: no such entry (the message lists the available ones).
    """
    models = read_manifest()["models"]
    if name not in models:
        raise _unknown(name)
    entry = dict(models[name])
    entry["path"] = str(manifest_path().parent / entry.get("file", f"{name}.pt"))
    return entry


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_pretrained(name: str, device: Any = "cpu") -> Any:
    """The pretrained :class:`~geomgen.models.ShapePredictor` ``name``, in eval mode.

    Raises:
        PretrainedNotFoundError: no manifest entry for ``name``.
        MeshFileNotFoundError: the weights file listed is missing.
        FileFormatError: its size or SHA-256 differ from the manifest, or it does not load.
    """
    from geomgen.models.training import load_model

    info = pretrained_info(name)
    path = Path(info["path"])
    if not path.is_file():
        raise MeshFileNotFoundError(f"pretrained weights of {name!r} are missing: '{path}' (listed in "
                                    f"'{manifest_path()}'); reinstall, or train with: geomgen train {name}")
    size = path.stat().st_size
    if "bytes" in info and size != int(info["bytes"]):
        raise FileFormatError(f"pretrained weights '{path}' have {size} bytes, the manifest says "
                              f"{info['bytes']}: the file is truncated or was replaced")
    if "sha256" in info and _sha256(path) != info["sha256"]:
        raise FileFormatError(f"pretrained weights '{path}' fail the SHA-256 check of the manifest: the file "
                              "is corrupt or was replaced")
    try:
        model = load_model(path, map_location=device)
    except GeomgenError:
        raise
    except Exception as e:  # noqa: BLE001 - torch.load raises many types on bad data
        raise FileFormatError(f"pretrained weights '{path}' cannot be loaded: {e}") from e
    return model.to(device).eval()


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".manifest-", suffix=".json", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the manifest is shipped and read by everyone
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True, allow_nan=False)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _jsonable(value: Any) -> Any:
    """NaN/inf -> None, tuples -> lists, tensors/numpy scalars -> Python numbers."""
    import math

    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_manifest_entry(name: str, model_path: str | os.PathLike[str], config: Mapping[str, Any],
                         train: Mapping[str, Any] | None = None, eval: Mapping[str, Any] | None = None,  # noqa: A002
                         kind: str = "representation", extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Record ``model_path`` (which must sit in ``<assets>/pretrained/``) as the
    weights of ``name``: file name, size, SHA-256, build config, training recipe
    and evaluation summary, and ``kind`` (``"representation"`` or
    ``"generator"``), plus the ``extra`` keys.  The manifest is rewritten
    atomically with sorted keys.

    Returns:
        the entry written.
    """
    path = Path(model_path)
    if not path.is_file():
        raise MeshFileNotFoundError(f"write_manifest_entry: no such file '{path}'")
    folder = manifest_path().parent
    if path.resolve().parent != folder.resolve():
        raise GeomgenError(f"write_manifest_entry: '{path}' must be in the pretrained folder '{folder}'")
    entry = {"file": path.name, "sha256": _sha256(path), "bytes": path.stat().st_size,
             "config": _jsonable(dict(config)), "train": _jsonable(dict(train or {})),
             "eval": _jsonable(dict(eval or {})), "kind": str(kind)}
    entry.update({str(k): _jsonable(v) for k, v in dict(extra or {}).items()})
    data = read_manifest()
    data["models"][str(name)] = entry
    _write_json_atomic(manifest_path(), data)
    return entry


def write_manifest_section(key: str, value: Mapping[str, Any]) -> None:
    """Set a top-level manifest section (``"dataset"``, ``"baseline"``), atomically."""
    if key in ("format", "models"):
        raise GeomgenError(f"write_manifest_section: {key!r} is managed by write_manifest_entry")
    data = read_manifest()
    data[str(key)] = _jsonable(dict(value))
    _write_json_atomic(manifest_path(), data)
