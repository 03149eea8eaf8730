"""Shared helpers of :mod:`geomgen.io`: path and format checks, error wrapping,
lazy imports of the optional backends, and the one place that asks trimesh to
read a file.

Nothing here is public API.  Every error raised names the file (and the public
function it came from), so callers only have to pass ``path`` and ``fn``.

Conventions used by the array helpers:

* ``V`` vertices / ``P`` points, ``F`` triangles, ``C`` colour or feature
  channels.
* Colours travel inside geomgen as floats in ``[0, 1]`` with ``C`` = 3 (RGB) or
  4 (RGBA); trimesh stores them as ``uint8`` RGBA.  :func:`colors_from_uint8`
  drops the alpha channel when every alpha is 255, so an opaque file reads back
  as RGB.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from geomgen import checks as V
from geomgen.errors import (
    BackendUnavailableError,
    FileFormatError,
    GeomgenError,
    InvalidInputError,
    MeshFileNotFoundError,
)

__all__ = [
    "PathLike",
    "MESH_FORMATS",
    "POINT_FORMATS",
    "POINT_ONLY_FORMATS",
    "as_path",
    "file_format",
    "check_readable_file",
    "check_writable_file",
    "file_error",
    "reading",
    "build_structure",
    "import_trimesh",
    "import_open3d",
    "read_scene",
    "check_vertices",
    "check_faces",
    "colors_from_uint8",
    "features_fit_colors",
    "colors_to_uint8",
    "to_numpy",
    "check_index",
    "as_float_tensor",
    "is_trimesh",
    "plural",
    "check_dtype",
]

#: ``str`` or ``os.PathLike`` naming a file.
PathLike = str | os.PathLike[str]

#: Mesh formats read and written through trimesh (lower-case extensions).
MESH_FORMATS: tuple[str, ...] = ("obj", "ply", "off", "stl", "glb", "gltf")
#: Formats that only hold points (no faces).
POINT_ONLY_FORMATS: tuple[str, ...] = ("xyz", "pwn", "npz")
#: Formats :func:`geomgen.io.load_pointcloud` reads (mesh files give their vertices).
POINT_FORMATS: tuple[str, ...] = ("ply", "xyz", "pwn", "npz", "obj", "off", "stl", "glb", "gltf")


# ---------------------------------------------------------------------------
# paths and formats
# ---------------------------------------------------------------------------


def as_path(path: Any, fn: str, name: str = "path") -> Path:
    """Return ``path`` as a :class:`Path` with ``~`` expanded.

    Raises:
        InvalidInputError: ``path`` is not a ``str``/``os.PathLike`` or is empty.
    """
    if isinstance(path, bytes) or not isinstance(path, (str, os.PathLike)):
        raise InvalidInputError(
            f"{fn}: argument '{name}' must be a str or os.PathLike, got {type(path).__name__}"
        )
    text = os.fspath(path)
    if not isinstance(text, str) or not text:
        raise InvalidInputError(f"{fn}: argument '{name}' must be a non-empty path, got {path!r}")
    return Path(text).expanduser()


def file_format(path: Path, supported: Sequence[str], fn: str, hint: str = "") -> str:
    """Lower-case extension of ``path`` (no dot), checked against ``supported``.

    Raises:
        FileFormatError: the extension is missing or not in ``supported``;
            ``hint`` is appended to the message.
    """
    ext = path.suffix.lower().lstrip(".")
    if ext not in supported:
        what = f"extension '.{ext}'" if ext else "no file extension"
        listed = ", ".join("." + s for s in supported)
        msg = f"{fn}: '{path}' has {what}; supported formats are {listed}"
        if hint:
            msg += f". {hint}"
        raise FileFormatError(msg)
    return ext


def check_readable_file(path: Path, fn: str) -> None:
    """Require ``path`` to be an existing, non-empty regular file.

    Raises:
        MeshFileNotFoundError: nothing exists at ``path``, or it is a directory.
        FileFormatError: the file is empty (0 bytes).
    """
    if not path.exists():
        raise MeshFileNotFoundError(f"{fn}: no such file: '{path}'")
    if path.is_dir():
        raise MeshFileNotFoundError(f"{fn}: '{path}' is a directory, expected a file")
    if path.stat().st_size == 0:
        raise FileFormatError(f"{fn}: '{path}' is empty (0 bytes)")


def check_writable_file(path: Path, fn: str) -> None:
    """Require that ``path`` can be created: its folder exists and it is not a folder.

    Raises:
        MeshFileNotFoundError: the parent folder does not exist.
        InvalidInputError: ``path`` is an existing directory.
    """
    if path.is_dir():
        raise InvalidInputError(f"{fn}: '{path}' is a directory, expected a file name")
    parent = path.parent
    if not parent.is_dir():
        raise MeshFileNotFoundError(
            f"{fn}: cannot write '{path}': folder '{parent}' does not exist"
        )


def file_error(path: Path | str, fn: str, problem: str) -> FileFormatError:
    """Build (not raise) a :class:`FileFormatError` about ``path``."""
    return FileFormatError(f"{fn}: cannot read '{path}': {problem}")


@contextmanager
def reading(path: Path, fn: str, fmt: str) -> Iterator[None]:
    """Turn any exception raised while parsing ``path`` into a :class:`FileFormatError`.

    Backends (trimesh, numpy, zipfile, ...) raise many exception types for bad
    files; callers get one type whose message names the file and keeps the
    backend's reason.  geomgen's own errors pass through, except
    :class:`InvalidInputError` (raised by a structure's validation), which is
    re-raised as a :class:`FileFormatError` naming the file.  ``BaseException``
    subclasses that are not ``Exception`` (``KeyboardInterrupt``,
    ``SystemExit``) are never caught.  ``OSError`` other than a decoding
    problem (permission denied, I/O error) propagates unchanged: it already
    names the file and is not a format problem; a missing *referenced* file
    (glTF buffer) is a format problem.
    """
    try:
        yield
    except InvalidInputError as e:
        raise file_error(path, fn, f"invalid {fmt.upper()} contents: {e}") from e
    except GeomgenError:
        raise
    except (PermissionError, IsADirectoryError):
        raise
    except FileNotFoundError as e:  # the file itself was checked: a referenced asset is missing
        raise file_error(
            path, fn, f"it references a file that does not exist ({e.filename or e})"
        ) from e
    except Exception as e:  # noqa: BLE001 - backends raise anything; re-raised typed
        reason = str(e).strip() or "no details"
        raise file_error(
            path, fn, f"not a valid {fmt.upper()} file ({type(e).__name__}: {reason})"
        ) from e


def build_structure(path: Path | str, fn: str, ctor: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a structure constructor; its :class:`InvalidInputError` is re-raised
    as a :class:`FileFormatError` that names ``path``."""
    try:
        return ctor(*args, **kwargs)
    except InvalidInputError as e:
        raise file_error(path, fn, f"its data is invalid: {e}") from e


# ---------------------------------------------------------------------------
# lazy imports
# ---------------------------------------------------------------------------


def import_trimesh() -> Any:
    """Import trimesh (a hard dependency, imported lazily to keep ``import geomgen`` light)."""
    try:
        import trimesh
    except ImportError as e:  # pragma: no cover - trimesh is a dependency
        raise BackendUnavailableError(
            "geomgen.io needs trimesh for mesh, point cloud and binvox files: pip install trimesh"
        ) from e
    return trimesh


def _import_optional(module: str, fn: str, backend: str, how_to_install: str) -> Any:
    """Import ``module`` of an optional backend, or raise
    :class:`BackendUnavailableError` naming ``fn`` and ``backend`` and saying how
    to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise BackendUnavailableError(
            f"{fn}: needs the optional backend {backend}, which is not installed; "
            + how_to_install
        ) from e


def import_open3d(fn: str) -> Any:
    """Import open3d or raise :class:`BackendUnavailableError` saying how to install it."""
    return _import_optional(
        "open3d",
        fn,
        "Open3D",
        "install it with `pip install open3d` (or `pip install geomgen[viewer]`)",
    )


# ---------------------------------------------------------------------------
# reading through trimesh
# ---------------------------------------------------------------------------

_OFF_PATCH_LOCK = threading.Lock()

#: Extra trimesh loader options.  Materials and textures are never used (the
#: structures have no UVs), and PLY files with per-face texture coordinates
#: would otherwise get their vertices split and renumbered (``fix_texture``).
_LOADER_OPTIONS: dict[str, dict[str, Any]] = {
    "ply": {"fix_texture": False, "skip_materials": True},
    "glb": {"skip_materials": True},
    "gltf": {"skip_materials": True},
}


def _obj_text(data: bytes) -> str:
    """OBJ text normalised the way trimesh's OBJ loader does before parsing."""
    from trimesh import util as tm_util

    text = tm_util.decode_text(data)
    text = "\n{}\n".format(text.strip().replace("\r\n", "\n"))
    return text.replace("\\\n", "")


_OBJ_FACE_LINE = re.compile(r"^f[ \t]+(.*)$", re.MULTILINE)


def _obj_check_indices(data: bytes, path: Path, fn: str) -> bool:
    """Check OBJ face indices before trimesh sees them.

    trimesh subtracts 1 from positive indices only, so an (invalid) index 0
    silently becomes vertex 0, and it resolves negative (relative) indices
    against the *total* vertex count.  This check rejects index 0, indices
    outside ``[-V, V]``, and relative indices in files that declare vertices
    after faces (where the two readings differ).

    Returns:
        True when the file uses relative (negative) indices.
    """
    text = _obj_text(data)
    n_verts = text.count("\nv ")
    lines = _OBJ_FACE_LINE.findall(text)
    if not lines:
        return False
    # keep only the vertex index of every `v/vt/vn` reference
    tokens = re.sub(r"/\S*", "", " ".join(lines)).split()
    try:
        idx = np.array(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        raise file_error(path, fn, "a face line ('f ...') has a non-integer vertex index") from None
    if idx.size == 0:
        return False
    if (idx == 0).any():
        raise file_error(path, fn, "a face uses vertex index 0, but OBJ indices start at 1")
    bad = (idx > n_verts) | (idx < -n_verts)
    if bad.any():
        raise file_error(
            path,
            fn,
            f"a face uses vertex index {int(idx[bad][0])}, out of range for its {n_verts} vertices",
        )
    relative = bool((idx < 0).any())
    if relative:
        first_face = text.find("\nf ")
        last_vertex = text.rfind("\nv ")
        if first_face != -1 and last_vertex > first_face:
            raise file_error(
                path,
                fn,
                "relative (negative) face indices are used in a file that declares vertices "
                "after faces; this layout is not supported",
            )
    return relative


def _off_check_counts(data: bytes, path: Path, fn: str) -> None:
    """Reject OFF files with fewer data lines than the header declares.

    trimesh reads ``min(declared, present)`` faces, so a truncated file would
    otherwise load silently with faces missing.
    """
    from trimesh import util as tm_util

    text = tm_util.comment_strip(tm_util.decode_text(data)).strip()
    parts = re.split(r"(COFF|OFF)", text, maxsplit=1)
    if len(parts) < 3:
        raise file_error(path, fn, "no OFF header (the file must start with 'OFF')")
    lines = [ln for ln in (s.strip() for s in parts[2].splitlines()) if ln]
    if not lines:
        raise file_error(path, fn, "the vertex/face count line is missing")
    try:
        counts = [int(c) for c in lines[0].split()[:2]]
    except ValueError:
        raise file_error(path, fn, f"malformed count line {lines[0][:60]!r}") from None
    if len(counts) < 2 or min(counts) < 0:
        raise file_error(path, fn, f"malformed count line {lines[0][:60]!r}")
    n_v, n_f = counts
    present = len(lines) - 1
    if present < n_v + n_f:
        raise file_error(
            path,
            fn,
            f"the header declares {n_v} vertices and {n_f} faces but only {present} data "
            "lines follow (truncated file?)",
        )


def _ply_check_counts(scene: Any, path: Path, fn: str) -> None:
    """Reject ASCII PLY files whose elements have fewer rows than declared.

    trimesh reads what is there (binary files are length-checked by trimesh
    itself), so a truncated ASCII file would otherwise load with data missing.
    """
    for geom in scene.geometry.values():
        raw = getattr(geom, "metadata", {}).get("_ply_raw")
        if not raw:
            continue
        for name, element in raw.items():
            declared = int(element.get("length", 0))
            data = element.get("data")
            if not declared or data is None:
                continue
            if isinstance(data, dict):
                got = min((len(v) for v in data.values()), default=declared)
            else:
                got = len(data)
            if got < declared:
                raise file_error(
                    path,
                    fn,
                    f"the header declares {declared} '{name}' elements but only {got} "
                    "are present (truncated file?)",
                )


def _gltf_check_json(path: Path, fn: str) -> None:
    """A ``.gltf`` file must be JSON; trimesh would otherwise go looking for a
    ``model.gltf`` next to it and report that as missing."""
    try:
        tree = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise file_error(path, fn, f"not a valid GLTF file (not JSON: {e})") from None
    if not isinstance(tree, dict):
        raise file_error(path, fn, "not a valid GLTF file (the JSON is not an object)")


def _load_off_int_rows(trimesh: Any, data: bytes, **kwargs: Any) -> Any:
    """Load an OFF file whose faces mix triangles, quads and larger polygons.

    trimesh's OFF loader hands face rows to ``triangulate_quads`` as lists of
    strings; with NumPy >= 2 its fan triangulation of polygons with more than
    four corners then fails with a ``TypeError`` (string multiply).  For those
    files only, the loader is re-run with that one helper wrapped so it gets
    integer rows.  The wrapper is a pure type conversion, so another thread
    reading an OFF file meanwhile gets the same result as without it.
    """
    off_module = trimesh.exchange.off
    original = off_module.triangulate_quads

    def triangulate_int_rows(faces: Any, *args: Any, **kw: Any) -> Any:
        return original([np.asarray(f, dtype=np.int64) for f in faces], *args, **kw)

    with _OFF_PATCH_LOCK:
        off_module.triangulate_quads = triangulate_int_rows
        try:
            return trimesh.load_scene(io.BytesIO(data), file_type="off", **kwargs)
        finally:
            off_module.triangulate_quads = original


def read_scene(path: Path, fmt: str, fn: str) -> Any:
    """Read ``path`` (format ``fmt``, one of :data:`MESH_FORMATS`) into a ``trimesh.Scene``.

    trimesh is asked not to process anything (no vertex merging, no removal of
    NaN/degenerate data, no splitting of textured PLY vertices) so indices
    match the file.  OBJ files are read with
    ``maintain_order=True`` and without materials, so vertex ``i`` of the
    result is vertex ``i + 1`` of the file (trailing vertices that no face uses
    may be dropped by trimesh).  Files that use relative indices are read
    without ``maintain_order`` (trimesh mis-resolves them otherwise), which
    drops unused vertices but keeps the order of the others.

    Also checks what trimesh does not: OBJ face indices (see
    :func:`_obj_check_indices`), OFF and ASCII PLY element counts against
    their headers.

    Raises:
        FileFormatError: the file cannot be parsed, or fails a check above.
    """
    trimesh = import_trimesh()
    with reading(path, fn, fmt):
        if fmt in ("off", "obj"):
            data = path.read_bytes()
            if fmt == "off":
                _off_check_counts(data, path, fn)
                try:
                    scene = trimesh.load_scene(io.BytesIO(data), file_type="off", process=False)
                except TypeError:
                    scene = _load_off_int_rows(trimesh, data, process=False)
            else:
                relative = _obj_check_indices(data, path, fn)
                with warnings.catch_warnings():
                    # with maintain_order, trimesh takes a NaN median over the
                    # texture/normal indices of vertices no face uses and warns
                    warnings.filterwarnings("ignore", category=RuntimeWarning, module=r"trimesh\.")
                    scene = trimesh.load_scene(
                        io.BytesIO(data),
                        file_type="obj",
                        process=False,
                        maintain_order=not relative,
                        skip_materials=True,
                    )
        else:
            if fmt == "gltf":
                _gltf_check_json(path, fn)
            try:
                scene = trimesh.load_scene(
                    str(path), file_type=fmt, process=False, **_LOADER_OPTIONS.get(fmt, {})
                )
            except ValueError as e:
                if fmt == "ply":
                    _ply_length_hint(e, path, fn)
                raise
        if fmt == "ply":
            _ply_check_counts(scene, path, fn)
    return scene


def _ply_length_hint(e: Exception, path: Path, fn: str) -> None:
    """trimesh reads binary PLY faces assuming one corner count for all faces."""
    if "unexpected length" in str(e):
        raise file_error(
            path,
            fn,
            "the binary data does not match the header: the file is truncated, or its faces "
            "have different corner counts (trimesh reads binary PLY only when all faces have "
            "the same number of corners)",
        ) from e


# ---------------------------------------------------------------------------
# array checks and conversions
# ---------------------------------------------------------------------------


def check_vertices(verts: np.ndarray, path: Path, fn: str, what: str = "vertex") -> np.ndarray:
    """Require a finite ``(V, 3)`` array read from ``path``; return it as float64."""
    verts = np.asarray(verts)
    if verts.ndim != 2 or verts.shape[1] != 3:
        raise file_error(
            path, fn, f"{what} coordinates have shape {tuple(verts.shape)}, expected (V, 3)"
        )
    try:
        verts = verts.astype(np.float64, copy=False)
    except (TypeError, ValueError):
        raise file_error(path, fn, f"{what} coordinates are not numbers") from None
    finite = np.isfinite(verts).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        count = f"1 {what} has" if len(bad) == 1 else f"{len(bad)} {plural(what)} have"
        raise file_error(
            path,
            fn,
            f"{count} NaN/Inf coordinates (first: {what} {int(bad[0])} = {verts[bad[0]].tolist()})",
        )
    return verts


def plural(word: str) -> str:
    """'vertex' -> 'vertices', 'point' -> 'points'."""
    return "vertices" if word == "vertex" else word + "s"


def check_faces(faces: np.ndarray, n_verts: int, path: Path, fn: str) -> np.ndarray:
    """Require an integer ``(F, 3)`` array with every index in ``[0, n_verts)``; return int64."""
    faces = np.asarray(faces)
    if faces.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise file_error(path, fn, f"faces have shape {tuple(faces.shape)}, expected (F, 3)")
    if faces.dtype.kind not in "iu":
        raise file_error(path, fn, f"face indices have dtype {faces.dtype}, expected integers")
    faces = faces.astype(np.int64, copy=False)
    bad = (faces < 0) | (faces >= n_verts)
    if bad.any():
        row = int(np.flatnonzero(bad.any(axis=1))[0])
        raise file_error(
            path,
            fn,
            f"face {row} = {faces[row].tolist()} has a vertex index out of range for "
            f"{n_verts} vertices",
        )
    return faces


def colors_from_uint8(rgba: np.ndarray) -> np.ndarray:
    """``(V, 4)`` uint8 RGBA -> ``(V, 3|4)`` float64 in ``[0, 1]``; alpha kept only if
    some alpha is below 255."""
    rgba = np.asarray(rgba)
    if rgba.dtype.kind == "f":  # already floats in [0, 1]
        out = rgba.astype(np.float64)
    else:
        out = rgba.astype(np.float64) / 255.0
    if out.shape[1] == 4 and (rgba[:, 3] == (255 if rgba.dtype.kind != "f" else 1.0)).all():
        out = out[:, :3]
    return np.ascontiguousarray(out)


def features_fit_colors(features: np.ndarray) -> bool:
    """Whether ``(P, C)`` point features can be stored as colours: a non-empty
    array with ``C`` = 3 or 4 and every value in ``[0, 1]``."""
    return bool(
        features.shape[1] in (3, 4)
        and features.size > 0
        and features.min() >= 0.0
        and features.max() <= 1.0
    )


def colors_to_uint8(colors: np.ndarray) -> np.ndarray:
    """``(V, 3|4)`` floats in ``[0, 1]`` -> ``(V, 4)`` uint8 RGBA (alpha 255 when absent)."""
    c = np.clip(np.asarray(colors, dtype=np.float64), 0.0, 1.0)
    c = np.round(c * 255.0).astype(np.uint8)
    if c.shape[1] == 3:
        c = np.concatenate([c, np.full((len(c), 1), 255, dtype=np.uint8)], axis=1)
    return c


def to_numpy(x: Any, dtype: Any = None) -> np.ndarray:
    """Tensor or array-like -> NumPy array on the CPU (detached)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):  # no exact NumPy twin for bfloat16
            x = x.float()
        x = x.numpy()
    arr = np.asarray(x)
    return arr.astype(dtype, copy=False) if dtype is not None else arr


def check_dtype(dtype: Any, fn: str) -> torch.dtype:
    """Require a floating ``torch.dtype`` (checked before any file is read)."""
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise InvalidInputError(
            f"{fn}: argument 'dtype' must be a floating torch.dtype, got {dtype!r}"
        )
    return dtype


def check_index(index: Any, n: int, fn: str, what: str) -> int:
    """Validate a batch index into a batch of ``n`` items (negative counts from the end)."""
    i = V.check_int(index, "index", fn=fn)
    if not -n <= i < n:
        raise InvalidInputError(
            f"{fn}: argument 'index' = {i} is out of range for a batch of {n} {what}"
        )
    return i % n


def as_float_tensor(
    x: np.ndarray | None, device: torch.device | str, dtype: torch.dtype
) -> torch.Tensor | None:
    """NumPy array -> tensor of ``dtype`` on ``device`` (``None`` passes through)."""
    if x is None:
        return None
    # copy: trimesh hands out read-only arrays, and the result must not alias them
    return torch.from_numpy(np.array(x, copy=True, order="C")).to(device=device, dtype=dtype)


def is_trimesh(obj: Any) -> bool:
    """True for ``trimesh.Trimesh`` instances (without importing trimesh needlessly)."""
    cls = type(obj)
    return any(c.__name__ == "Trimesh" and c.__module__.startswith("trimesh") for c in cls.__mro__)
