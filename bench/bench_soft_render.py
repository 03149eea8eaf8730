"""Soft rasterization: forward + backward of a soft silhouette, numba vs torch selection.

Work (PyTorch3D's "fit a mesh with a silhouette" tutorial setting): an
ico-sphere of level 4 (2562 vertices, 5120 faces) seen by 20 cameras 2.7 units
away (60 degree field of view, azimuths around the sphere, elevation 30), 128 x
128 images, ``faces_per_pixel = 50``, ``sigma = 1e-4`` and ``blur_radius =
log(1 / 1e-4 - 1) * sigma``; one step is ``soft_rasterize_meshes`` +
``soft_silhouette`` + ``backward`` of the summed silhouette to the vertices.

Each backend runs in its own process (so each peak RSS is its own): seconds per
step (median of the repeats after one warm-up step), peak RSS of the process
(``ru_maxrss``, imports included; the RSS before the first step is shown
beside it) and where a step's time goes (seconds per step): ``setup`` the per (image, face)
set-up of the selection (torch, both backends), ``selection`` the choice of
the fragments (the backend's own part), ``evaluation`` their differentiable
values (torch), ``rest of forward`` validation, pairs and the dense ``B x H x
W x K`` outputs, then ``soft_silhouette`` and ``backward``.  PyTorch3D's CPU rasterizer + soft
silhouette shader runs in the same way when it can be imported (its own
cameras, the same scene: the pixels differ).

Run: ``python bench/bench_soft_render.py [repeats]`` (``OMP_WAIT_POLICY=PASSIVE``
advised, see ``run_all.py``).
"""

from __future__ import annotations

import importlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

VIEWS, SIZE, LEVEL, K, SIGMA, DIST, ELEV, FOV = 20, 128, 4, 50, 1e-4, 2.7, 30.0, 60.0
BLUR = math.log(1 / 1e-4 - 1) * SIGMA
PHASES = ("setup", "selection", "evaluation", "rest of forward", "silhouette", "backward")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _geomgen_step(backend: str):
    import torch

    import geomgen.render.soft_rasterize as SR
    from geomgen.ops import ico_sphere
    from geomgen.render import PerspectiveCameras, orbit_poses, soft_rasterize_meshes, soft_silhouette
    from geomgen.structures import Meshes

    sphere = ico_sphere(LEVEL)
    azim = torch.linspace(-180.0, 180.0, VIEWS + 1)[:-1]
    cams = PerspectiveCameras.from_fov(FOV, (SIZE, SIZE), orbit_poses(azim, ELEV, DIST))
    spent = dict.fromkeys(PHASES, 0.0)

    def timed(name, fn):
        def call(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - t0
        return call

    SR._setup = timed("setup", SR._setup)
    SR._select = timed("selection", SR._select)  # includes _setup (subtracted below)
    SR._evaluate = timed("evaluation", SR._evaluate)

    def step():
        verts = sphere.verts_packed().clone().requires_grad_()
        t0 = time.perf_counter()
        frags = soft_rasterize_meshes(Meshes([verts], [sphere.faces_packed()]), cams, blur_radius=BLUR,
                                      faces_per_pixel=K, backend=backend)
        t1 = time.perf_counter()
        alpha = soft_silhouette(frags, SIGMA)
        t2 = time.perf_counter()
        alpha.sum().backward()
        t3 = time.perf_counter()
        spent["rest of forward"] += t1 - t0  # the op minus the phases above (see _child)
        spent["silhouette"] += t2 - t1
        spent["backward"] += t3 - t2
        return verts.grad

    return step, spent


def _pytorch3d_step(backend: str):
    import torch
    from pytorch3d.renderer import (BlendParams, FoVPerspectiveCameras, MeshRasterizer, MeshRenderer,
                                    RasterizationSettings, SoftSilhouetteShader, look_at_view_transform)
    from pytorch3d.structures import Meshes as P3Meshes

    from geomgen.ops import ico_sphere

    sphere = ico_sphere(LEVEL)
    azim = torch.linspace(-180.0, 180.0, VIEWS + 1)[:-1]
    R, T = look_at_view_transform(dist=DIST, elev=ELEV, azim=azim)
    cams = FoVPerspectiveCameras(R=R, T=T, fov=FOV)
    settings = RasterizationSettings(image_size=SIZE, blur_radius=BLUR, faces_per_pixel=K)
    renderer = MeshRenderer(MeshRasterizer(cameras=cams, raster_settings=settings),
                            SoftSilhouetteShader(blend_params=BlendParams(sigma=SIGMA, gamma=1e-4)))

    def step():
        verts = sphere.verts_packed().clone().requires_grad_()
        mesh = P3Meshes([verts], [sphere.faces_packed()]).extend(VIEWS)
        renderer(mesh, cameras=cams)[..., 3].sum().backward()
        return verts.grad

    return step, None


def _child(backend: str, repeats: int) -> None:
    rss0 = _rss_mb()
    step, spent = (_pytorch3d_step if backend == "pytorch3d" else _geomgen_step)(backend)
    step()  # warm-up (numba's cache loaded or compiled)
    if spent is not None:
        for k in spent:
            spent[k] = 0.0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    phases = None
    if spent is not None:
        phases = {k: v / repeats for k, v in spent.items()}
        phases["rest of forward"] -= phases["selection"] + phases["evaluation"]
        phases["selection"] -= phases["setup"]
    print(json.dumps(dict(backend=backend, s=statistics.median(times), all=times, rss0=rss0, rss=_rss_mb(),
                          phases=phases)))


def _run_child(backend: str, repeats: int) -> dict | None:
    proc = subprocess.run([sys.executable, __file__, "--child", backend, str(repeats)], capture_output=True,
                          text=True, env=os.environ.copy())
    if proc.returncode != 0:
        print(f"<!-- {backend} failed: {proc.stderr.strip().splitlines()[-1:]} -->")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        _child(argv[1], int(argv[2]))
        return 0
    repeats = int(argv[0]) if argv else 3
    import torch

    backends = ["torch", "numba"]
    try:
        importlib.import_module("pytorch3d.renderer")
        backends.append("pytorch3d")
    except Exception:  # not installed, or built for another torch
        pass
    print(f"\n### soft rasterization, {VIEWS} views {SIZE}x{SIZE}, ico-sphere {LEVEL}, K={K}, sigma={SIGMA:g} "
          f"({os.cpu_count()} cores, torch {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f})\n")
    rows = [r for r in (_run_child(b, repeats) for b in backends) if r]
    print("| backend | fwd+bwd (s, median of %d) | peak RSS (MiB) | RSS before (MiB) | "
          % repeats + " | ".join(PHASES) + " |")
    print("|---|---|---|---|" + "---|" * len(PHASES))
    for r in rows:
        ph = r["phases"]
        cells = [f"{ph[k]:.2f}" for k in PHASES] if ph else [""] * len(PHASES)
        print(f"| {r['backend']} | {r['s']:.2f} | {r['rss']:.0f} | {r['rss0']:.0f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
