"""Tests of geomgen.backend: backend selection, the PyTorch3D guard and the thread budget."""

from __future__ import annotations

import ast
import builtins
import importlib
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numba
import pytest
import torch

import geomgen.backend as B
from geomgen.errors import BackendUnavailableError, GeomgenError, InvalidInputError

ROOT = Path(__file__).resolve().parents[1]
NUMBA_OPS = [op for op, spec in B.OP_BACKENDS.items() if "numba" in spec.names]
TWO_THREADS = numba.config.NUMBA_NUM_THREADS >= 2


# --------------------------------------------------------------------------- #
# the table
# --------------------------------------------------------------------------- #


def test_table_is_what_the_ops_accept():
    def names(module: str, attr: str) -> tuple[str, ...]:  # the package attributes are the functions
        return getattr(importlib.import_module(module), attr)

    public = {
        "knn_points": names("geomgen.ops.knn", "KNN_BACKENDS"),
        "sample_points_from_meshes": names("geomgen.ops.sample_points", "SAMPLE_POINTS_BACKENDS"),
        "voxelize": names("geomgen.ops.voxelize", "VOXELIZE_BACKENDS"),
        "points_in_meshes": names("geomgen.ops.points_in_meshes", "POINTS_IN_MESHES_BACKENDS"),
        "points_to_voxels": names("geomgen.ops.points_to_voxels", "POINTS_TO_VOXELS_BACKENDS"),
        "cubify": names("geomgen.ops.cubify", "CUBIFY_BACKENDS"),
        "marching_cubes": names("geomgen.ops.marching_cubes", "MC_BACKENDS"),
        "rasterize_meshes": names("geomgen.render.rasterize", "RASTERIZE_BACKENDS"),
        "soft_rasterize_meshes": names("geomgen.render.soft_rasterize", "SOFT_RASTERIZE_BACKENDS"),
        "gather_scatter": names("geomgen.ops.graph_conv", "GATHER_SCATTER_BACKENDS"),
    }
    assert set(public) == set(B.OP_BACKENDS)
    for op, names in public.items():
        spec = B.OP_BACKENDS[op]
        assert names == spec.names and names[0] == "auto", op
        assert ("pytorch3d" in names) == (spec.pytorch3d is not None), op
    # the ops documented with a PyTorch3D backend (docs/architecture.md)
    assert {op for op in B.OP_BACKENDS if "pytorch3d" in B.OP_BACKENDS[op].names} == {
        "knn_points", "cubify", "marching_cubes"}
    with pytest.raises(TypeError):
        B.OP_BACKENDS["knn_points"] = B.OpBackends(("auto",))  # read-only


def test_check_backend():
    for op, spec in B.OP_BACKENDS.items():
        for name in spec.names:
            assert B.check_backend(op, name) == name
    for bad in ("cuda", "Numba", "", 1, None, b"torch"):
        with pytest.raises(InvalidInputError) as info:
            B.check_backend("voxelize", bad)
        assert str(info.value) == (
            f"voxelize: argument 'backend' must be one of ['auto', 'torch', 'numba'], got {bad!r}")
        assert isinstance(info.value, ValueError)
    with pytest.raises(KeyError, match="no_such_op"):
        B.check_backend("no_such_op", "auto")


@pytest.mark.parametrize("op", NUMBA_OPS)
def test_resolve_rules(op, monkeypatch):
    monkeypatch.setattr(B, "forked_after_pool", lambda: False)
    cpu, gpu = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU
    assert B.resolve_backend(op, "auto", device=cpu) == "numba"
    assert B.resolve_backend(op, "auto", device="cpu", numba_ok=False) == "torch"
    assert B.resolve_backend(op, "auto", device=gpu) == "torch"
    assert B.resolve_backend(op, "torch", device=cpu) == "torch"
    assert B.resolve_backend(op, "torch", device=gpu) == "torch"
    assert B.resolve_backend(op, "numba", device=cpu) == "numba"
    assert B.resolve_backend(op, "numba", device=cpu, numba_ok=False) == "torch"
    with pytest.raises(BackendUnavailableError) as info:
        B.resolve_backend(op, "numba", device=gpu)
    msg = str(info.value)
    assert msg.startswith(f"{op}: backend='numba'") and "CPU" in msg and "cuda" in msg
    assert isinstance(info.value, (GeomgenError, ImportError))
    with pytest.raises(InvalidInputError, match=rf"^{op}: argument 'backend' must be one of"):
        B.resolve_backend(op, "cuda", device=cpu)


def test_resolve_needs_a_numba_op():
    with pytest.raises(KeyError, match="gather_scatter"):
        B.resolve_backend("gather_scatter", "auto", device="cpu")


@pytest.mark.parametrize("op", NUMBA_OPS)
def test_forked_child_takes_the_torch_path_where_kernels_need_the_pool(op, monkeypatch):
    monkeypatch.setattr(B, "forked_after_pool", lambda: True)
    want = "torch" if B.OP_BACKENDS[op].pool else "numba"  # others run their serial kernels
    assert B.resolve_backend(op, "auto", device="cpu") == want
    assert B.resolve_backend(op, "numba", device="cpu") == want
    assert {op for op in NUMBA_OPS if B.OP_BACKENDS[op].pool} == {"voxelize", "points_in_meshes"}


# --------------------------------------------------------------------------- #
# every op validates through the table
# --------------------------------------------------------------------------- #


def _op_calls():
    from geomgen.ops import (cubify, gather_scatter, ico_sphere, knn_points, marching_cubes, points_in_meshes,
                             points_to_voxels, sample_points_from_meshes, voxelize)
    from geomgen.render import PerspectiveCameras, orbit_poses, rasterize_meshes, soft_rasterize_meshes

    mesh = ico_sphere(1)
    pts = torch.rand(1, 10, 3)
    cams = PerspectiveCameras.from_fov(40.0, (8, 8), orbit_poses(torch.tensor([0.0]), 10.0, 3.0))
    return {
        "knn_points": lambda b: knn_points(pts, pts, backend=b),
        "sample_points_from_meshes": lambda b: sample_points_from_meshes(mesh, 5, backend=b),
        "voxelize": lambda b: voxelize(mesh, 8, backend=b),
        "points_in_meshes": lambda b: points_in_meshes(mesh, pts, backend=b),
        "points_to_voxels": lambda b: points_to_voxels(pts, 4, backend=b),
        "cubify": lambda b: cubify(torch.ones(2, 2, 2), backend=b),
        "marching_cubes": lambda b: marching_cubes(torch.rand(3, 3, 3), backend=b),
        "rasterize_meshes": lambda b: rasterize_meshes(mesh, cams, backend=b),
        "soft_rasterize_meshes": lambda b: soft_rasterize_meshes(mesh, cams, backend=b),
        "gather_scatter": lambda b: gather_scatter(torch.rand(4, 2), torch.tensor([[0, 1], [1, 2]]), backend=b),
    }


def test_every_op_names_the_argument_and_the_allowed_values():
    calls = _op_calls()
    assert set(calls) == set(B.OP_BACKENDS)
    for op, call in calls.items():
        with pytest.raises(InvalidInputError) as info:
            call("cuda")
        assert str(info.value) == (
            f"{op}: argument 'backend' must be one of {list(B.OP_BACKENDS[op].names)!r}, got 'cuda'")
        for name in B.OP_BACKENDS[op].names:
            if name != "pytorch3d":
                call(name)


def test_ops_raise_backend_unavailable_without_pytorch3d(no_pytorch3d):
    calls = _op_calls()
    for op, spec in B.OP_BACKENDS.items():
        if spec.pytorch3d is None:
            continue
        with pytest.raises(BackendUnavailableError) as info:
            calls[op]("pytorch3d")
        msg = str(info.value)
        assert msg.startswith(f"{op}: backend='pytorch3d' needs PyTorch3D") and spec.pytorch3d in msg
        assert "backend='auto'" in msg and "INSTALL.md" in msg


# --------------------------------------------------------------------------- #
# PyTorch3D
# --------------------------------------------------------------------------- #


def test_pytorch3d_missing(no_pytorch3d):
    assert not B.pytorch3d_available()
    with pytest.raises(BackendUnavailableError) as info:
        B.require_pytorch3d("to_pytorch3d", "pytorch3d.structures")
    msg = str(info.value)
    assert msg.startswith("to_pytorch3d: needs PyTorch3D, but pytorch3d.structures cannot be imported")
    assert "ImportError: no pytorch3d here" in msg and "backend=" not in msg  # converters have no backend
    with pytest.raises(BackendUnavailableError, match="knn_points: backend='pytorch3d'"):
        B.resolve_backend("knn_points", "pytorch3d", device="cpu")


def test_pytorch3d_blocked_in_sys_modules(monkeypatch):
    monkeypatch.setitem(sys.modules, "pytorch3d", None)
    assert not B.pytorch3d_available()
    with pytest.raises(BackendUnavailableError, match="PyTorch3D"):
        B.require_pytorch3d("from_pytorch3d", "pytorch3d.structures")


def test_pytorch3d_broken_extension(monkeypatch):
    real_import = builtins.__import__

    def broken(name, *args, **kwargs):
        if name.split(".")[0] == "pytorch3d":
            raise OSError("undefined symbol: _ZN3c10")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(BackendUnavailableError, match="OSError: undefined symbol"):
        B.require_pytorch3d("marching_cubes", "pytorch3d.ops.marching_cubes")
    assert not B.pytorch3d_available()


def test_pytorch3d_present(monkeypatch):
    root = types.ModuleType("pytorch3d")
    ops = types.ModuleType("pytorch3d.ops")
    root.ops = ops
    monkeypatch.setitem(sys.modules, "pytorch3d", root)
    monkeypatch.setitem(sys.modules, "pytorch3d.ops", ops)
    assert B.pytorch3d_available()
    assert B.require_pytorch3d("knn_points", "pytorch3d.ops") is ops
    assert B.resolve_backend("knn_points", "pytorch3d", device="cpu") == "pytorch3d"
    assert B.resolve_backend("knn_points", "pytorch3d", device="cuda") == "pytorch3d"


# --------------------------------------------------------------------------- #
# threads
# --------------------------------------------------------------------------- #


def test_thread_budget(monkeypatch):
    assert B.thread_budget() == max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert B.thread_budget() == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 10**6)
    assert B.thread_budget() == numba.config.NUMBA_NUM_THREADS


@pytest.fixture
def numba_one_thread():
    """numba's thread count set to 1 (so a leaked change is visible), restored after."""
    B.start_pool()
    old = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(old)


@pytest.mark.skipif(not TWO_THREADS, reason="needs NUMBA_NUM_THREADS >= 2")
def test_kernel_threads_sets_and_restores_numbas_setting(monkeypatch, numba_one_thread):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    with B.kernel_threads(10**6) as n:
        assert n == 2 and numba.get_num_threads() == 2
    assert numba.get_num_threads() == 1
    with pytest.raises(RuntimeError, match="boom"), B.kernel_threads(10**6):
        assert numba.get_num_threads() == 2
        raise RuntimeError("boom")
    assert numba.get_num_threads() == 1  # restored on errors too
    with B.kernel_threads(10**6):  # nested launches restore in order
        with B.kernel_threads(10, min_work=1, pool=True) as inner:
            assert inner == 2
        assert numba.get_num_threads() == 2
    assert numba.get_num_threads() == 1


def test_kernel_threads_serial_cases(monkeypatch, numba_one_thread):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    with B.kernel_threads(B.PARALLEL_MIN_WORK - 1) as n:  # small job
        assert n == 1
    with B.kernel_threads(99, min_work=100) as n:
        assert n == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)  # budget of 1
    with B.kernel_threads(10**6) as n:
        assert n == 1
    with B.kernel_threads(10**6, pool=True) as n:  # parallel-only kernels: one thread in the pool
        assert n == 1 and numba.get_num_threads() == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    monkeypatch.setattr(B, "forked_after_pool", lambda: True)
    with B.kernel_threads(10**6) as n:  # forked child: serial kernels, pool untouched
        assert n == 1
    with pytest.raises(RuntimeError, match="forked"), B.kernel_threads(10**6, pool=True):
        pass  # pragma: no cover


@pytest.mark.skipif(not TWO_THREADS, reason="needs NUMBA_NUM_THREADS >= 2")
def test_ops_leave_numbas_thread_count_alone(monkeypatch, numba_one_thread):
    """Every kernel launch of every op restores numba's thread count (voxelize used to
    set it process-wide, the grid kernels used to leave torch's count behind)."""
    from geomgen.losses import chamfer_distance
    from geomgen.ops import (cubify, ico_sphere, knn_points, marching_cubes, points_in_meshes, points_to_voxels,
                             sample_points_from_meshes, voxelize)
    from geomgen.render import PerspectiveCameras, orbit_poses, rasterize_meshes, soft_rasterize_meshes

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    mesh = ico_sphere(3)
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(2, 6000, 3, generator=g)
    cams = PerspectiveCameras.from_fov(40.0, (64, 64), orbit_poses(torch.tensor([0.0, 90.0]), 10.0, 3.0))
    calls = [
        lambda: knn_points(pts, pts, K=2),
        lambda: chamfer_distance(pts, pts * 0.5),
        lambda: voxelize(mesh, 64, mode="solid"),  # parallel
        lambda: voxelize(mesh, 8),  # small: one thread in numba's pool
        lambda: points_in_meshes(mesh, pts[:1]),
        lambda: points_to_voxels(pts, 8),
        lambda: sample_points_from_meshes(mesh, 5000),
        lambda: rasterize_meshes(mesh, cams),
        lambda: soft_rasterize_meshes(mesh, cams, blur_radius=1e-3, faces_per_pixel=4),
        lambda: marching_cubes(torch.rand(70, 70, 70, generator=g), workers=-1),
        lambda: cubify(torch.rand(70, 70, 70, generator=g) > 0.5, workers=-1),
    ]
    for call in calls:
        call()
        assert numba.get_num_threads() == 1


def test_forked_child(tmp_path):
    """A process forked before numba's pool started is a normal process; one forked
    after it runs serial kernels (kernel_threads gives 1) or, for ops whose kernels
    need the pool, the torch path -- instead of being killed by GNU OpenMP."""
    code = textwrap.dedent(
        """
        import os, signal, torch
        import geomgen.backend as B
        from geomgen.ops import ico_sphere, knn_points, points_in_meshes, voxelize
        torch.set_num_threads(2)

        def child(check):
            pid = os.fork()
            if pid == 0:
                signal.alarm(120)  # a hung child fails the test instead of blocking it
                try:
                    ok = check()
                except BaseException:
                    ok = False
                os._exit(0 if ok else 3)
            return os.waitpid(pid, 0)[1]

        before = child(lambda: not B.forked_after_pool())
        mesh = ico_sphere(3)
        x = torch.rand(1, 20000, 3)
        q = torch.rand(1, 20000, 3) * 2 - 1
        ref = (knn_points(x, x.flip(1)).idx, voxelize(mesh, 64, mode="solid").grids, points_in_meshes(mesh, q))

        def after():
            with B.kernel_threads(10**6) as n:  # torch still allows 2 threads
                serial = n == 1
            torch.set_num_threads(1)  # torch's own OpenMP pool is not fork-safe either (DataLoader does this)
            return (B.forked_after_pool() and serial
                    and B.resolve_backend("voxelize", "auto", device="cpu") == "torch"
                    and B.resolve_backend("knn_points", "auto", device="cpu") == "numba"
                    and torch.equal(knn_points(x, x.flip(1)).idx, ref[0])
                    and torch.equal(voxelize(mesh, 64, mode="solid").grids, ref[1])
                    and torch.equal(points_in_meshes(mesh, q), ref[2]))

        print("STATUS", before, child(after), B.forked_after_pool())
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ))
    assert "STATUS 0 0 False" in res.stdout, res.stdout + res.stderr


def test_start_pool_keeps_the_users_wait_policy():
    code = textwrap.dedent(
        """
        import os
        import geomgen.backend as B
        B.start_pool()
        B.start_pool()  # once
        from numba.np.ufunc import parallel
        print("STATUS", parallel._is_initialized, os.environ.get("OMP_WAIT_POLICY"))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert "STATUS True None" in res.stdout, res.stdout + res.stderr  # PASSIVE only while starting
    env["OMP_WAIT_POLICY"] = "ACTIVE"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert "STATUS True ACTIVE" in res.stdout, res.stdout + res.stderr


# --------------------------------------------------------------------------- #
# layering
# --------------------------------------------------------------------------- #


def _imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, imported names) of every import statement, lazy ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.append((node.module, [a.name for a in node.names]))
    return out


def test_backend_imports_only_lower_tiers():
    for module, names in _imports(ROOT / "geomgen" / "backend.py"):
        if module == "geomgen":
            assert set(names) <= {"errors", "kernels"}, names
        elif module.startswith("geomgen."):
            assert module.split(".")[1] in ("errors", "kernels"), module


def test_only_ops_and_render_call_kernels_and_nobody_imports_private_op_names():
    """Kernels are launched by the ops (and the rasterizer) through the backend layer;
    other packages use the ops' public or documented unchecked entry points."""
    bad = []
    for path in sorted((ROOT / "geomgen").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        pkg = rel.split("/")[1]
        for module, names in _imports(path):
            kernel = module == "geomgen.kernels" or module.startswith("geomgen.kernels.") or (
                module == "geomgen" and "kernels" in names)
            if kernel and pkg not in ("ops", "render", "kernels", "backend.py"):
                bad.append(f"{rel}: imports {module}")
            if module.startswith("geomgen.ops.") and pkg != "ops":
                private = [n for n in names if n.startswith("_")]
                if private:
                    bad.append(f"{rel}: imports {private} from {module}")
    assert not bad, "\n".join(bad)
