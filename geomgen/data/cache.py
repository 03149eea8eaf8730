"""On-disk cache of built dataset samples: versioned, verified, atomic, lock-protected.

Layout::

    <cache root>/datasets/<name>-v<FORMAT_VERSION>-<digest>/
        manifest.json          written last (atomically) after the files it lists
        <sha1(id)[:20]>.npz    one compressed NumPy archive per sample
        .lock                  advisory lock file (fcntl), see "Concurrency"

``<cache root>`` is ``$GEOMGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/geomgen``,
else ``~/.cache/geomgen`` (:func:`cache_root`); ``<digest>`` hashes the
:class:`~geomgen.data.pipeline.SampleConfig` and the dataset's ``cache_key``
(the identity of its source), so a different configuration or source gets
its own folder.  The splits of one dataset share a folder (the manifest grows
as splits are built).

Integrity
---------
The manifest records :data:`FORMAT_VERSION`, the dataset name, the config,
the source key and, per sample, its file name, byte size, modification time
and SHA-256.  When a dataset opens its cache, every sample it needs is
checked: a missing, unreadable or foreign manifest (other
name/version/config/key), a missing file, a size mismatch (e.g. a truncated
file) or a hash mismatch makes the sample be **rebuilt, never loaded**, with
one warning listing what was broken.  Hashing reads the whole cache (about
0.1 s per 100 MB); ``verify="size"`` checks sizes and modification times
only, for very large caches.
Files are written to a temporary name in the same folder, ``fsync``-ed and
renamed into place, and the manifest only lists files that are complete, so
an interrupted build leaves a valid (partial) cache that the next run
completes.  A file that gets corrupted after the check is detected when it is
read (the archive fails to decode) and that sample is rebuilt in memory, with
a warning.

Each entry also stores the record's source fingerprint (e.g. its file's size
and modification time, see ``MeshSampleDataset.record_fingerprint``): a
record whose source changed is rebuilt.

Failures caused by bad input (a :class:`~geomgen.errors.GeomgenError` from
loading or building a mesh) are remembered in the manifest, so a broken file
in a mesh folder is reported on every open without being re-read (until
the file changes); ``rebuild=True`` retries them.  Other exceptions are reported but not
remembered.

Concurrency
-----------
Building holds an exclusive ``fcntl.flock`` on ``.lock`` in the cache folder,
so processes that open the same dataset at once (e.g. every rank under
``torchrun``) do not write the same files twice: the first builds, the others
wait, then verify and use what it built.  Readers (``__getitem__``, DataLoader
workers) take no lock: files appear atomically.  ``flock`` is unreliable on
some network file systems (older NFS) and absent on Windows (then no lock is
taken); there, build the dataset once (``geomgen data build NAME``, or rank
0 first followed by a barrier) before starting the parallel job.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import tempfile
import time
import warnings
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from geomgen.data.pipeline import SampleConfig
from geomgen.errors import GeomgenError, InvalidInputError

__all__ = ["FORMAT_VERSION", "cache_root", "SampleCache", "CacheWarning"]

#: Version of the on-disk sample format; bump when build_sample's output changes.
FORMAT_VERSION = 1

_MANIFEST = "manifest.json"
_LOCK = ".lock"
#: Write the manifest at least this often (seconds) during a long build, so an
#: interrupted build keeps its progress.
_CHECKPOINT_S = 20.0


class CacheWarning(UserWarning):
    """A cache file or manifest failed its integrity check and is being rebuilt."""


def cache_root() -> Path:
    """The cache root: ``$GEOMGEN_CACHE_DIR``, else ``$XDG_CACHE_HOME/geomgen``, else ``~/.cache/geomgen``."""
    env = os.environ.get("GEOMGEN_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "geomgen"
    return Path.home() / ".cache" / "geomgen"


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def _jsonable(x: Any) -> Any:
    return json.loads(json.dumps(x, sort_keys=True, default=str))


def _encode(sample: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez_compressed(buf, **sample)
    return buf.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder, fsync and rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        with contextlib.suppress(OSError):
            dfd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class SampleCache:
    """The cache folder of one dataset configuration (see the module docstring).

    Args:
        name: dataset name (folder prefix), e.g. ``"shapes"``.
        config: the :class:`SampleConfig` the samples are built with.
        key: JSON-able identity of the dataset's source (``cache_key()``).
        root: cache root; None = :func:`cache_root`.

    Attributes:
        path: the cache folder.
        failures: ``{id: (reason, source fingerprint)}`` of records whose build
            failed on bad input.
    """

    def __init__(self, name: str, config: SampleConfig, key: dict[str, Any], root: str | os.PathLike[str] | None = None
                 ) -> None:
        self.name = str(name)
        self.config = config
        self.key = json.loads(json.dumps(key, sort_keys=True, default=str))
        base = Path(root).expanduser() if root is not None else cache_root()
        digest = _digest({"name": self.name, "config": config.to_dict(), "key": self.key})[:16]
        self.path = base / "datasets" / f"{self.name}-v{FORMAT_VERSION}-{digest}"
        self._entries: dict[str, dict[str, Any]] = {}
        self.failures: dict[str, tuple[str, Any]] = {}

    def __repr__(self) -> str:
        return f"SampleCache({str(self.path)!r}, {len(self._entries)} samples)"

    # ------------------------------------------------------------------ files
    @staticmethod
    def file_name(record_id: str) -> str:
        """File name of a record's sample (a hash of the id: ids may hold any characters)."""
        return hashlib.sha1(record_id.encode()).hexdigest()[:20] + ".npz"

    def file_of(self, record_id: str) -> Path:
        """Path of a record's sample file."""
        return self.path / self.file_name(record_id)

    def _header(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, "name": self.name, "config": self.config.to_dict(), "key": self.key}

    def _read_manifest(self) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, Any]], str | None]:
        """``(entries, failures, problem)``; problem describes an unusable manifest."""
        path = self.path / _MANIFEST
        if not path.exists():
            return {}, {}, None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError, UnicodeDecodeError) as e:
            return {}, {}, f"unreadable manifest ({e})"
        header = self._header()
        if data.get("format_version") != FORMAT_VERSION:
            return {}, {}, f"format version {data.get('format_version')!r}, expected {FORMAT_VERSION}"
        for field in ("name", "config", "key"):
            if data.get(field) != header[field]:
                return {}, {}, f"manifest of another dataset configuration ({field} differs)"
        entries, failures = data.get("entries"), data.get("failed", {})
        ok = isinstance(entries, dict) and isinstance(failures, dict) and all(
            isinstance(e, dict) and isinstance(e.get("file"), str) and isinstance(e.get("size"), int)
            and isinstance(e.get("sha256"), str) for e in entries.values()) and all(
            isinstance(f, list) and len(f) == 2 and isinstance(f[0], str) for f in failures.values())
        if not ok:
            return {}, {}, "malformed manifest entries"
        return entries, {str(k): (v[0], v[1]) for k, v in failures.items()}, None

    def _write_manifest(self) -> None:
        data = {**self._header(), "written": time.strftime("%Y-%m-%dT%H:%M:%S"),
                "entries": dict(sorted(self._entries.items())),
                "failed": {k: list(v) for k, v in sorted(self.failures.items())}}
        _atomic_write(self.path / _MANIFEST, json.dumps(data, indent=1).encode())

    @contextlib.contextmanager
    def _locked(self, progress: bool) -> Iterator[None]:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock (see the module docstring)
            yield
            return
        with open(self.path / _LOCK, "a+") as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if progress:
                    print(f"geomgen: waiting for another process building {self.path}", file=sys.stderr)
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def _check(self, record_id: str, entries: dict[str, dict[str, Any]], source: Any, verify: str) -> str | None:
        """None if the record's file matches its manifest entry, else why not."""
        entry = entries.get(record_id)
        if entry is None:
            return "not built"
        if entry.get("source") != source:
            return "source changed"
        path = self.path / entry["file"]
        if entry["file"] != self.file_name(record_id):
            return "manifest entry names another file"
        try:
            st = path.stat()
        except OSError:
            return "file missing"
        if st.st_size != entry["size"]:
            return f"size {st.st_size} bytes, manifest says {entry['size']} (truncated or overwritten)"
        if verify == "size":
            if st.st_mtime_ns != entry.get("mtime_ns"):
                return "modified since it was written (modification time differs)"
        elif _sha256_file(path) != entry["sha256"]:
            return "SHA-256 mismatch (corrupted)"
        return None

    # ------------------------------------------------------------------ build
    def ensure(
        self,
        records: Sequence[Any],
        build: Callable[[Any], dict[str, np.ndarray]],
        *,
        fingerprint: Callable[[Any], Any] | None = None,
        rebuild: bool = False,
        verify: str = "hash",
        progress: bool = True,
        desc: str | None = None,
    ) -> tuple[list[Any], list[tuple[str, str]]]:
        """Make sure every record's sample is in the cache, building what is missing or broken.

        Args:
            records: objects with a unique ``.id`` (str), in dataset order.
            build: ``build(record) -> dict of arrays``; an exception skips the record.
            fingerprint: ``fingerprint(record)`` -> JSON-able identity of the
                record's source (e.g. file size and mtime), stored with its
                sample (and failure): a record whose fingerprint changed is rebuilt
                (retried).  None: records never change.
            rebuild: rebuild every record (and retry remembered failures).
            verify: ``"hash"`` (size and SHA-256 of every file: reads the whole
                cache) or ``"size"`` (size and modification time only: instant,
                catches truncation and rewrites but not silent bit rot, and
                rebuilds a cache copied without preserving times).
            progress: show a tqdm progress bar while building.
            desc: progress bar label.

        Returns:
            ``(ready, failed)``: the records whose samples are cached (in the
            given order) and ``(id, reason)`` of those that failed.
        """
        if verify not in ("hash", "size"):
            raise InvalidInputError(f"dataset {self.name!r}: argument 'verify' must be 'hash' or 'size', got {verify!r}")
        ids = [r.id for r in records]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
            raise InvalidInputError(f"dataset {self.name!r}: record ids must be unique, repeated: {dup}")
        self.path.mkdir(parents=True, exist_ok=True)
        with self._locked(progress):
            entries, failures, problem = self._read_manifest()
            broken: list[tuple[str, str]] = []
            if problem is not None:
                broken.append((str(self.path / _MANIFEST), problem + "; rebuilding every sample"))
            self._entries, self.failures = dict(entries), dict(failures)
            todo = []
            prints = {r.id: _jsonable(fingerprint(r)) if fingerprint is not None else None for r in records}
            for r in records:
                if rebuild or (r.id in self.failures and self.failures[r.id][1] != prints[r.id]):
                    self.failures.pop(r.id, None)
                    self._entries.pop(r.id, None)
                    todo.append(r)
                    continue
                if r.id in self.failures:
                    continue
                why = self._check(r.id, entries, prints[r.id], verify)
                if why is not None:
                    if why not in ("not built", "source changed"):
                        broken.append((str(self.file_of(r.id)), why))
                    self._entries.pop(r.id, None)
                    todo.append(r)
            if broken:
                listing = "\n".join(f"  {p}: {why}" for p, why in broken)
                warnings.warn(f"dataset cache {self.path}: {len(broken)} problem(s) found, rebuilding instead of "
                              f"loading:\n{listing}", CacheWarning, stacklevel=3)
            transient: dict[str, str] = {}
            if todo:
                self._build_all(todo, build, prints, transient, progress, desc)
        ready = [r for r in records if r.id in self._entries]
        failed = [(r.id, self.failures[r.id][0] if r.id in self.failures else transient[r.id])
                  for r in records if r.id not in self._entries]
        return ready, failed

    def _build_all(self, todo: Sequence[Any], build: Callable[[Any], dict[str, np.ndarray]], prints: dict[str, Any],
                   transient: dict[str, str], progress: bool, desc: str | None) -> None:
        from tqdm.auto import tqdm

        last = time.monotonic()
        bar = tqdm(todo, desc=desc or f"building {self.name}", unit="sample", disable=not progress,
                   dynamic_ncols=True, leave=False)
        try:
            for record in bar:
                try:
                    sample = build(record)
                except GeomgenError as e:
                    self.failures[record.id] = (str(e), prints[record.id])
                    continue
                except Exception as e:  # noqa: BLE001 - a broken input must not stop the build
                    transient[record.id] = f"{type(e).__name__}: {e}"
                    continue
                data = _encode(sample)
                path = self.file_of(record.id)
                _atomic_write(path, data)
                self._entries[record.id] = {"file": path.name, "size": len(data), "mtime_ns": path.stat().st_mtime_ns,
                                            "sha256": hashlib.sha256(data).hexdigest(), "source": prints[record.id]}
                if time.monotonic() - last > _CHECKPOINT_S:
                    self._write_manifest()
                    last = time.monotonic()
        finally:
            bar.close()
            self._write_manifest()

    # ------------------------------------------------------------------ read
    def load(self, record_id: str) -> dict[str, np.ndarray]:
        """The cached arrays of a record.

        Raises:
            GeomgenError: (``FileFormatError``) the file is missing or does not
                decode; the caller rebuilds it (see the module docstring).
        """
        from geomgen.errors import FileFormatError

        path = self.file_of(record_id)
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
            raise FileFormatError(f"cache file '{path}' of sample {record_id!r} cannot be read: {e}") from e

    @property
    def size_bytes(self) -> int:
        """Total size of the sample files listed in the manifest."""
        return sum(int(e["size"]) for e in self._entries.values())
