"""geomgen.data.cache + the build/verify cycle of MeshSampleDataset: determinism, integrity, rebuilds, locking."""

from __future__ import annotations

import json
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import geomgen.data.cache as cache_mod
from geomgen.data.base import MeshRecord, MeshSampleDataset
from geomgen.data.cache import CacheWarning, SampleCache, cache_root
from geomgen.data.pipeline import SAMPLE_KEYS, SampleConfig
from geomgen.errors import DatasetError, FileFormatError, InvalidInputError

TINY = SampleConfig(image_size=16, num_views=2, num_points=64, num_occupancy=64, voxel_resolution=8)


def box(sx, sy, sz):
    v = torch.tensor([[x * sx, y * sy, z * sz] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=torch.float32)
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    f = [[a, b, c] for a, b, c, d in quads] + [[a, c, d] for a, b, c, d in quads]
    return v, torch.tensor(f)


class Boxes(MeshSampleDataset):
    """Boxes of different proportions; ``bad`` ids fail to load; counts loads."""

    name = "test-boxes"

    def __init__(self, split="all", *, n=4, bad=(), crash=(), **kw):
        self.n, self.bad, self.crash = n, set(bad), set(crash)
        self.loads: list[str] = []
        super().__init__(None, split, **kw)

    def scan(self):
        return [MeshRecord(id=f"box{i}", category="wide" if i % 2 else "tall", source=i) for i in range(self.n)]

    def load_mesh(self, record):
        self.loads.append(record.id)
        if record.id in self.bad:
            raise FileFormatError(f"{record.id}: broken on purpose")
        if record.id in self.crash:
            raise RuntimeError("transient failure")
        i = record.source
        return box(1.0 + i, 2.0, 0.5 + 0.25 * i)

    def cache_key(self):
        return {"n": "any"}


def make(tmp_path, **kw):
    kw.setdefault("config", TINY)
    kw.setdefault("progress", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Boxes(cache_dir=tmp_path, **kw)


def arrays(ds):
    return [ds.load_arrays(i) for i in range(len(ds))]


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        for key in SAMPLE_KEYS:
            assert np.array_equal(x[key], y[key]), key


def test_cache_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOMGEN_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert cache_root() == tmp_path / "a"
    monkeypatch.delenv("GEOMGEN_CACHE_DIR")
    assert cache_root() == tmp_path / "x" / "geomgen"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_root() == Path.home() / ".cache" / "geomgen"


def test_env_cache_dir_is_used_and_folder_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOMGEN_CACHE_DIR", str(tmp_path))
    ds = make(None)
    assert ds.cache.path.parent == tmp_path / "datasets"
    assert ds.cache.path.name.startswith(f"test-boxes-v{cache_mod.FORMAT_VERSION}-")
    manifest = json.loads((ds.cache.path / "manifest.json").read_text())
    assert manifest["format_version"] == cache_mod.FORMAT_VERSION and manifest["config"] == TINY.to_dict()
    assert sorted(manifest["entries"]) == ["box0", "box1", "box2", "box3"]


def test_two_builds_in_different_folders_are_identical(tmp_path):
    a, b = make(tmp_path / "a"), make(tmp_path / "b")
    assert a.cache.path.name == b.cache.path.name
    assert_same(arrays(a), arrays(b))
    # and the files themselves are byte-identical
    for r in a.records:
        assert a.cache.file_of(r.id).read_bytes() == b.cache.file_of(r.id).read_bytes()


def test_reopen_loads_without_building(tmp_path):
    a = make(tmp_path)
    assert sorted(a.loads) == ["box0", "box1", "box2", "box3"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean cache: no warning at all
        b = Boxes(cache_dir=tmp_path, config=TINY, progress=False)
    assert b.loads == []
    assert_same(arrays(a), arrays(b))


def test_other_config_gets_another_folder(tmp_path):
    a = make(tmp_path)
    b = make(tmp_path, config=SampleConfig(image_size=16, num_views=1, num_points=64, num_occupancy=64,
                                           voxel_resolution=8))
    assert a.cache.path != b.cache.path and len(b.loads) == 4


def test_truncated_file_is_detected_and_rebuilt(tmp_path):
    a = make(tmp_path)
    before = arrays(a)
    victim = a.cache.file_of("box2")
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.warns(CacheWarning, match="truncated") as rec:
        b = Boxes(cache_dir=tmp_path, config=TINY, progress=False)
    assert str(victim) in str(rec[0].message)
    assert b.loads == ["box2"]  # only the broken one
    assert victim.read_bytes() == data
    assert_same(before, arrays(b))


def test_same_size_corruption_is_caught_by_the_hash(tmp_path):
    a = make(tmp_path)
    victim = a.cache.file_of("box1")
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.warns(CacheWarning, match="SHA-256"):
        b = Boxes(cache_dir=tmp_path, config=TINY, progress=False)
    assert b.loads == ["box1"]


def test_missing_file_is_rebuilt(tmp_path):
    a = make(tmp_path)
    a.cache.file_of("box0").unlink()
    with pytest.warns(CacheWarning, match="file missing"):
        b = Boxes(cache_dir=tmp_path, config=TINY, progress=False)
    assert b.loads == ["box0"] and a.cache.file_of("box0").is_file()


@pytest.mark.parametrize("damage, match", [
    (lambda p: p.write_text("{not json"), "unreadable manifest"),
    (lambda p: p.write_bytes(b""), "unreadable manifest"),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "format_version": 0})), "format version 0"),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "key": {"n": "other"}})), "another dataset"),
    (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "entries": {"box0": {"file": 3}}})),
     "malformed"),
])
def test_bad_manifest_rebuilds_everything(tmp_path, damage, match):
    a = make(tmp_path)
    before = arrays(a)
    damage(a.cache.path / "manifest.json")
    with pytest.warns(CacheWarning, match=match):
        b = Boxes(cache_dir=tmp_path, config=TINY, progress=False)
    assert sorted(b.loads) == ["box0", "box1", "box2", "box3"]
    assert_same(before, arrays(b))
    assert json.loads((a.cache.path / "manifest.json").read_text())["format_version"] == cache_mod.FORMAT_VERSION


def test_format_version_bump_rebuilds(tmp_path, monkeypatch):
    a = make(tmp_path)
    monkeypatch.setattr(cache_mod, "FORMAT_VERSION", cache_mod.FORMAT_VERSION + 1)
    b = make(tmp_path)
    assert b.cache.path != a.cache.path and f"-v{cache_mod.FORMAT_VERSION}-" in b.cache.path.name
    assert len(b.loads) == 4
    # an old manifest copied into the new folder is not trusted
    (b.cache.path / "manifest.json").write_bytes((a.cache.path / "manifest.json").read_bytes())
    with pytest.warns(CacheWarning, match="format version"):
        c = Boxes(cache_dir=tmp_path, config=TINY, progress=False)
    assert len(c.loads) == 4


def test_interrupted_build_is_completed(tmp_path):
    a = make(tmp_path)
    manifest = a.cache.path / "manifest.json"
    data = json.loads(manifest.read_text())
    data["entries"] = {k: v for k, v in data["entries"].items() if k in ("box0", "box1")}
    manifest.write_text(json.dumps(data))  # as if killed after two samples (files of the others orphaned)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        b = Boxes(cache_dir=tmp_path, config=TINY, progress=False)
    assert sorted(b.loads) == ["box2", "box3"]


def test_failures_are_skipped_remembered_and_retried_on_rebuild(tmp_path):
    with pytest.warns(UserWarning, match=r"skipped 2 item\(s\)") as rec:
        a = Boxes(cache_dir=tmp_path, config=TINY, progress=False, bad={"box1"}, crash={"box3"})
    assert len([w for w in rec if "skipped" in str(w.message)]) == 1  # one warning
    msg = str(next(w.message for w in rec if "skipped" in str(w.message)))
    assert "box1: box1: broken on purpose" in msg and "RuntimeError: transient failure" in msg
    assert "2 skipped, 2 kept" in msg
    assert [r.id for r in a.records] == ["box0", "box2"] and {s[0] for s in a.skipped} == {"box1", "box3"}
    assert [a[i]["id"] for i in range(len(a))] == ["box0", "box2"]
    # input errors are remembered, other exceptions retried
    with pytest.warns(UserWarning, match="broken on purpose"):
        b = Boxes(cache_dir=tmp_path, config=TINY, progress=False, bad={"box1"})
    assert b.loads == ["box3"] and len(b) == 3
    with pytest.warns(UserWarning, match="broken on purpose"):
        c = Boxes(cache_dir=tmp_path, config=TINY, progress=False, bad={"box1"})
    assert c.loads == []
    d = make(tmp_path, rebuild=True)  # the input was fixed: rebuild retries
    assert sorted(d.loads) == ["box0", "box1", "box2", "box3"] and len(d) == 4 and d.skipped == []


def test_everything_skipped_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match=r"split 'all' is empty: every shape of the split \(2\) was skipped"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Boxes(cache_dir=tmp_path, config=TINY, progress=False, n=2, bad={"box0", "box1"})
    with pytest.raises(DatasetError, match="no shapes were found"):
        make(tmp_path, n=0)
    assert issubclass(DatasetError, InvalidInputError)


def test_file_corrupted_after_open_is_rebuilt_in_memory(tmp_path):
    a = make(tmp_path)
    good = a.load_arrays(2)
    a.cache.file_of("box2").write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="rebuilding the sample in memory"):
        again = a.load_arrays(2)
    assert_same([good], [again])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per file
        a.load_arrays(2)
    with pytest.raises(FileFormatError, match="cannot be read"):
        a.cache.load("box2")


def test_concurrent_builders_build_each_sample_once(tmp_path):
    calls: list[str] = []
    lock = threading.Lock()
    cache = [SampleCache("conc", TINY, {"k": 1}, root=tmp_path) for _ in range(2)]
    records = [MeshRecord(id=f"r{i}", category="c", source=i) for i in range(6)]
    sample = Boxes.__new__(Boxes)  # only for its build helper
    sample.config, sample.load_mesh = TINY, lambda r: box(1.0 + r.source, 1.0, 1.0)
    sample.sample_seed = lambda r: r.source

    def build(r):
        with lock:
            calls.append(r.id)
        time.sleep(0.02)  # a slow build: without the lock the other thread would build too
        return MeshSampleDataset._build_record(sample, r)

    results = [None, None]
    barrier = threading.Barrier(2)

    def run(k):
        barrier.wait()
        results[k] = cache[k].ensure(records, build, progress=False)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == sorted(r.id for r in records)  # the second waited, then verified
    for ready, failed in results:
        assert [r.id for r in ready] == [r.id for r in records] and failed == []


def test_duplicate_ids_are_rejected(tmp_path):
    cache = SampleCache("dup", TINY, {}, root=tmp_path)
    recs = [MeshRecord("a", "c", 0), MeshRecord("a", "c", 1)]
    with pytest.raises(InvalidInputError, match="unique"):
        cache.ensure(recs, lambda r: {}, progress=False)


def test_progress_bar_is_shown(tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Boxes(cache_dir=tmp_path, config=TINY, progress=True, n=2)
    assert "test-boxes all" in capsys.readouterr().err


def test_size_verification_mode(tmp_path):
    a = make(tmp_path)
    victim = a.cache.file_of("box3")
    data = bytearray(victim.read_bytes())
    data[100] ^= 0x01
    victim.write_bytes(bytes(data))  # same size, new modification time
    with pytest.warns(CacheWarning, match="modified since it was written"):
        b = Boxes(cache_dir=tmp_path, config=TINY, progress=False, verify="size")
    assert b.loads == ["box3"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = Boxes(cache_dir=tmp_path, config=TINY, progress=False, verify="size")
    assert c.loads == []
    with pytest.raises(InvalidInputError, match="verify"):
        make(tmp_path, verify="md5")
