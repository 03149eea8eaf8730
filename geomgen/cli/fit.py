"""``geomgen fit MASK_DIR --cameras CAMERAS.json -o FIT.obj``: a mesh from calibrated multi-view masks.

Deforms an ico-sphere (or ``--init MESH``) until its soft silhouettes match the masks
(:func:`geomgen.train.fit_mesh_to_silhouettes`), writes the mesh, and with ``--out-dir`` a
loss curve (``loss.png``, ``losses.csv``) and ``compare.png`` (masks above, the fit's
silhouettes and shaded renders below).

Masks: the cameras file's ``"mask"`` entries give each view's file name, looked up in
``MASK_DIR``; views without one take the image files of ``MASK_DIR`` in name order (their
count must equal the camera count).  A pixel is object when its grey level is above 0.5
(transparent pixels of RGBA / LA images count as black).
``geomgen render MESH --views 6 --save-cameras C.json --save-masks DIR`` writes both inputs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from geomgen.errors import FileFormatError, InvalidInputError

__all__ = ["configure", "run", "load_masks"]

#: Extensions read as mask images.
MASK_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def configure(parser: argparse.ArgumentParser) -> None:
    """Options of ``geomgen fit``."""
    parser.add_argument("mask_dir", metavar="MASK_DIR", help="folder of mask images (white = object)")
    parser.add_argument("--cameras", required=True, metavar="CAMERAS.json",
                        help="cameras file (geomgen render --save-cameras): K and world_from_camera per view")
    parser.add_argument("-o", "--output", required=True, metavar="FIT.obj",
                        help="the fitted mesh (.obj, .ply, .off, .stl, .glb)")
    parser.add_argument("--init", default="sphere", metavar="sphere|MESH",
                        help="starting mesh: an ico-sphere, or a mesh file (default: %(default)s)")
    parser.add_argument("--level", type=int, default=4, help="ico-sphere level (default: %(default)s)")
    parser.add_argument("--radius", type=float, default=0.6, help="ico-sphere radius (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=300, help="Adam steps (default: %(default)s)")
    parser.add_argument("--lr", type=float, default=0.01, help="learning rate (default: %(default)s)")
    parser.add_argument("--sigma", type=float, default=1e-4,
                        help="soft silhouette sharpness, squared NDC units (default: %(default)s)")
    parser.add_argument("--faces-per-pixel", type=int, default=20, help="faces blended per pixel "
                        "(default: %(default)s)")
    parser.add_argument("--views-per-iteration", type=int, default=None, metavar="N",
                        help="random views rendered per step (default: all)")
    parser.add_argument("--w-silhouette", type=float, default=1.0, help="(default: %(default)s)")
    parser.add_argument("--w-edge", type=float, default=1.0, help="(default: %(default)s)")
    parser.add_argument("--w-laplacian", type=float, default=1.0, help="(default: %(default)s)")
    parser.add_argument("--w-normal", type=float, default=0.01, help="(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the view subsets (default: %(default)s)")
    parser.add_argument("--out-dir", metavar="DIR", help="also write loss.png, losses.csv and compare.png here")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _mask_files(mask_dir: Path, cams: Any, cameras_path: str) -> list[Path]:
    if not mask_dir.is_dir():
        raise InvalidInputError(f"MASK_DIR '{mask_dir}': not a folder")
    if all(m is not None for m in cams.masks):
        files = [mask_dir / Path(m).name for m in cams.masks]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise InvalidInputError(f"'{cameras_path}' names mask files missing from '{mask_dir}': "
                                    f"{', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
        return files
    files = sorted(p for p in mask_dir.iterdir() if p.is_file() and p.suffix.lower() in MASK_SUFFIXES)
    if len(files) != len(cams):
        raise InvalidInputError(f"'{mask_dir}' holds {len(files)} mask images but '{cameras_path}' has "
                                f"{len(cams)} cameras (one mask per camera)")
    return files


def load_masks(files: list[Path], image_size: tuple[int, int], cameras_path: str) -> Any:
    """``(V, H, W)`` bool masks of the files (grey > 0.5, alpha over black); errors name the file."""
    import torch

    from geomgen.io import load_image

    masks = []
    for f in files:
        try:
            img = load_image(f, background=0.0)
        except (FileFormatError, InvalidInputError) as e:
            raise FileFormatError(f"mask '{f}' cannot be read: {e}") from None
        if masks and tuple(img.shape[1:]) != tuple(masks[0].shape):
            raise FileFormatError(f"mask '{f}' is {img.shape[2]}x{img.shape[1]} but '{files[0]}' is "
                                  f"{masks[0].shape[1]}x{masks[0].shape[0]} (W x H): all masks must have one size")
        mask = img.mean(0) > 0.5
        if not bool(mask.any()):
            raise InvalidInputError(f"mask '{f}' is empty (no pixel above 0.5): every view must see the object")
        masks.append(mask)
    if tuple(masks[0].shape) != tuple(image_size):
        h, w = image_size
        raise InvalidInputError(f"the masks are {masks[0].shape[1]}x{masks[0].shape[0]} but '{cameras_path}' is for "
                                f"{w}x{h} images (W x H)")
    return torch.stack(masks)


def run(args: argparse.Namespace) -> int:
    """Fit, write the mesh (and the plots); returns 0."""
    import torch

    from geomgen.io import load_cameras, load_mesh, save_mesh
    from geomgen.render import PerspectiveCameras
    from geomgen.train import fit_mesh_to_silhouettes

    out = Path(args.output).expanduser()
    if out.suffix.lower() not in (".obj", ".ply", ".off", ".stl", ".glb"):
        raise InvalidInputError(f"-o {args.output}: the output must be a mesh file (.obj, .ply, .off, .stl, .glb)")
    cams_file = load_cameras(args.cameras)
    files = _mask_files(Path(args.mask_dir).expanduser(), cams_file, args.cameras)
    masks = load_masks(files, cams_file.image_size, args.cameras)
    cameras = PerspectiveCameras(cams_file.K, cams_file.world_from_camera, cams_file.image_size)
    init: Any = "sphere" if args.init == "sphere" else load_mesh(args.init)
    result = fit_mesh_to_silhouettes(
        masks, cameras, init=init, level=args.level, radius=args.radius, iterations=args.iterations, lr=args.lr,
        sigma=args.sigma, faces_per_pixel=args.faces_per_pixel, w_silhouette=args.w_silhouette,
        w_edge=args.w_edge, w_laplacian=args.w_laplacian, w_normal=args.w_normal,
        views_per_iteration=args.views_per_iteration, seed=args.seed, progress=not args.no_progress,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    save_mesh(out, result.mesh)
    final = result.losses["total"][-1] if result.losses["total"] else float("nan")
    print(f"wrote {out} ({int(result.mesh.num_verts_per_mesh()[0])} vertices); silhouette IoU "
          f"{result.iou_init:.3f} -> {result.iou:.3f} over {len(files)} views, final loss {final:.4g}")
    if args.out_dir is not None:
        folder = Path(args.out_dir).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        _write_plots(folder, result, masks, cameras.to(dtype=torch.float32), cams_file.names)
        print(f"wrote {folder / 'loss.png'}, {folder / 'losses.csv'} and {folder / 'compare.png'}")
    return 0


def _write_plots(folder: Path, result: Any, masks: Any, cameras: Any, names: list[str]) -> None:
    """``losses.csv`` + ``loss.png`` (the weighted total and the silhouette term) and ``compare.png``."""
    import torch

    from geomgen.io import image_grid, save_image
    from geomgen.render import render_meshes
    from geomgen.train import CSVLogger, plot_loss_curve

    csv = folder / "losses.csv"
    csv.unlink(missing_ok=True)
    logger = CSVLogger(csv)
    for i in range(len(result.losses["total"])):
        logger.log(i, {f"{k}_loss": v[i] for k, v in result.losses.items()})
    logger.close()
    plot_loss_curve(csv, folder / "loss.png", keys=["total_loss", "silhouette_loss"], title="geomgen fit")
    with torch.no_grad():
        drawn = render_meshes(result.mesh, cameras)
    tiles = [m.float()[None].expand(3, -1, -1) for m in masks]
    tiles += [m.float()[None].expand(3, -1, -1) for m in drawn.mask]
    tiles += list(drawn.image)
    labels = [f"mask {n}" for n in names] + ["fit"] * len(names) + ["shaded"] * len(names)
    size = max(1, 96 // max(1, masks.shape[1]))
    tiles = [torch.nn.functional.interpolate(t[None], scale_factor=size, mode="nearest")[0] for t in tiles]
    save_image(folder / "compare.png", image_grid(torch.stack(tiles), ncols=len(names), labels=labels))
