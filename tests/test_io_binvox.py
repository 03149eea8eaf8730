"""geomgen.io.load_binvox / save_binvox: axis order and placement.

The reference files here are built by hand from the binvox specification
(https://www.patrickmin.com/binvox/binvox.html): run-length encoded
(value, count) byte pairs over voxels ordered with y varying fastest, then z,
then x; the model-space position of voxel (x, y, z) index ``i`` along an axis
is ``translate + (i + 0.5) * scale / dim``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geomgen.errors import FileFormatError, InvalidInputError, MeshFileNotFoundError
from geomgen.io import load_binvox, save_binvox
from geomgen.structures import Voxels

from _helpers import write


def rle(flat: np.ndarray) -> bytes:
    out = bytearray()
    i = 0
    while i < len(flat):
        j = i
        while j < len(flat) and flat[j] == flat[i] and j - i < 255:
            j += 1
        out += bytes([int(flat[i]), j - i])
        i = j
    return bytes(out)


def binvox_file(dense_xyz: np.ndarray, translate=(0.0, 0.0, 0.0), scale=1.0) -> bytes:
    """Spec-conformant binvox bytes of an ``(X, Y, Z)`` bool array."""
    x, y, z = dense_xyz.shape
    flat = dense_xyz.transpose(0, 2, 1).reshape(-1).astype(np.uint8)  # x slowest, z, y fastest
    header = f"#binvox 1\ndim {x} {y} {z}\ntranslate {' '.join(map(str, translate))}\nscale {scale}\ndata\n"
    return header.encode() + rle(flat)


def parse_binvox(data: bytes) -> tuple[tuple[int, ...], list[float], float, np.ndarray]:
    """dim, translate, scale and the decoded ``(X, Y, Z)`` array of binvox bytes."""
    head, body = data.split(b"data\n", 1)
    fields = {
        ln.split()[0]: ln.split()[1:] for ln in head.decode().splitlines() if ln and ln[0] != "#"
    }
    dims = tuple(int(v) for v in fields["dim"])
    raw = np.frombuffer(body, dtype=np.uint8)
    flat = np.repeat(raw[0::2], raw[1::2])
    dense = flat.reshape(dims[0], dims[2], dims[1]).transpose(0, 2, 1)
    return (
        dims,
        [float(v) for v in fields["translate"]],
        float(fields["scale"][0]),
        dense.astype(bool),
    )


def test_single_voxel_axis_mapping(tmp_path):
    """One occupied voxel at x=1, y=2, z=3 in a 4^3 grid lands at grids[0, 3, 2, 1]."""
    dense = np.zeros((4, 4, 4), dtype=bool)
    dense[1, 2, 3] = True  # (x, y, z)
    path = write(
        tmp_path / "one.binvox", binvox_file(dense, translate=(10.0, -2.0, 0.5), scale=2.0)
    )
    vox = load_binvox(path)
    assert isinstance(vox, Voxels) and vox.kind == "occupancy"
    grid = vox.grids[0]
    assert grid.shape == (4, 4, 4)
    assert grid.sum().item() == 1 and grid[3, 2, 1].item() == 1  # [k=z, j=y, i=x]
    torch.testing.assert_close(vox.origin[0], torch.tensor([10.0, -2.0, 0.5]))
    torch.testing.assert_close(vox.voxel_size[0], torch.full((3,), 0.5))
    # binvox: position = translate + (index + 0.5) * scale / dim
    expected = torch.tensor([10.0 + 1.5 * 0.5, -2.0 + 2.5 * 0.5, 0.5 + 3.5 * 0.5])
    torch.testing.assert_close(vox.voxel_centers()[0, 3, 2, 1], expected)


def test_asymmetric_shape_through_trimesh_reading(tmp_path):
    """A solid L-shape: distinct extents along x, y, z must not be permuted."""
    dense = np.zeros((6, 6, 6), dtype=bool)
    dense[0:5, 0, 0] = True  # long arm along x
    dense[0, 0:3, 0] = True  # medium arm along y
    dense[0, 0, 0:2] = True  # short arm along z
    vox = load_binvox(write(tmp_path / "l.binvox", binvox_file(dense)))
    g = vox.grids[0].bool()
    occupied = g.nonzero()  # (k, j, i) rows
    extent_xyz = [
        occupied[:, 2].max().item(),
        occupied[:, 1].max().item(),
        occupied[:, 0].max().item(),
    ]
    assert extent_xyz == [4, 2, 1]
    assert torch.equal(g, torch.from_numpy(dense.transpose(2, 1, 0).copy()))


def test_writer_follows_the_spec(tmp_path):
    """save_binvox output decoded by hand: dim is W H D (x y z), storage order x, z, y."""
    d, h, w = 2, 3, 5
    grid = torch.zeros(1, d, h, w)
    grid[0, 1, 2, 4] = 1.0  # z=1, y=2, x=4
    vox = Voxels(grid, origin=(1.0, 2.0, 3.0), voxel_size=0.25)
    save_binvox(tmp_path / "w.binvox", vox)
    dims, translate, scale, dense = parse_binvox((tmp_path / "w.binvox").read_bytes())
    assert dims == (w, h, d)
    assert translate == [1.0, 2.0, 3.0] and scale == pytest.approx(0.25 * 5)
    assert dense.sum() == 1 and dense[4, 2, 1]


@pytest.mark.parametrize("shape", [(3, 5, 7), (8, 8, 8), (1, 1, 1)])
def test_round_trip(tmp_path, shape):
    g = torch.Generator().manual_seed(1)
    grid = (torch.rand(2, *shape, generator=g) > 0.5).float()
    vox = Voxels(grid, origin=torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]]), voxel_size=0.1)
    save_binvox(tmp_path / "r.binvox", vox)  # index 0
    out = load_binvox(tmp_path / "r.binvox")
    assert torch.equal(out.grids[0], grid[0])
    torch.testing.assert_close(out.origin[0], vox.origin[0])
    torch.testing.assert_close(out.voxel_size[0], vox.voxel_size[0])
    torch.testing.assert_close(out.voxel_centers(), vox[0].voxel_centers())
    save_binvox(tmp_path / "s.binvox", vox, index=-1)
    assert torch.equal(
        load_binvox(tmp_path / "s.binvox", dtype=torch.float64).grids[0], grid[1].double()
    )


def test_long_runs(tmp_path):
    """Runs longer than 255 voxels are split into several (value, count) pairs."""
    grid = torch.zeros(1, 40, 30, 20)
    grid[0, 39, 29, 19] = 1.0
    grid[0, 0, 0, :] = 1.0
    save_binvox(tmp_path / "big.binvox", Voxels(grid, voxel_size=0.5))
    _, _, _, dense = parse_binvox((tmp_path / "big.binvox").read_bytes())
    assert torch.equal(torch.from_numpy(dense.transpose(2, 1, 0).copy()).float(), grid[0])
    assert torch.equal(load_binvox(tmp_path / "big.binvox").grids, grid)


def test_threshold_and_sdf(tmp_path):
    occ = Voxels(torch.tensor([[[[0.2, 0.5, 0.9]]]]), voxel_size=1.0)
    save_binvox(tmp_path / "o.binvox", occ)
    assert load_binvox(tmp_path / "o.binvox").grids[0, 0, 0].tolist() == [0.0, 1.0, 1.0]
    save_binvox(tmp_path / "t.binvox", occ, threshold=0.8)
    assert load_binvox(tmp_path / "t.binvox").grids[0, 0, 0].tolist() == [0.0, 0.0, 1.0]
    sdf = Voxels(torch.tensor([[[[-0.3, 0.0, 0.4]]]]), kind="sdf", voxel_size=1.0)
    save_binvox(tmp_path / "d.binvox", sdf)
    assert load_binvox(tmp_path / "d.binvox").grids[0, 0, 0].tolist() == [1.0, 1.0, 0.0]


def test_save_errors(tmp_path):
    vox = Voxels(torch.zeros(1, 2, 2, 2), voxel_size=(0.1, 0.2, 0.1))
    with pytest.raises(InvalidInputError, match="same voxel size"):
        save_binvox(tmp_path / "a.binvox", vox)
    with pytest.raises(InvalidInputError, match="Voxels"):
        save_binvox(tmp_path / "a.binvox", torch.zeros(2, 2, 2))
    with pytest.raises(FileFormatError, match="binvox"):
        save_binvox(tmp_path / "a.vox", vox)
    with pytest.raises(MeshFileNotFoundError):
        save_binvox(tmp_path / "no" / "a.binvox", vox)
    with pytest.raises(InvalidInputError, match="index"):
        save_binvox(tmp_path / "a.binvox", Voxels(torch.zeros(1, 2, 2, 2)), index=1)


def _good() -> bytes:
    dense = np.zeros((4, 4, 4), dtype=bool)
    dense[1:3, :, 2] = True
    return binvox_file(dense)


BAD = [
    ("empty.binvox", b"", "empty"),
    ("magic.binvox", b"#voxels 1\ndim 2 2 2\ndata\n\x00\x08", "BINVOX"),
    ("nodata.binvox", b"#binvox 1\ndim 2 2 2\n" + b"# x\n" * 120, "BINVOX"),
    ("nodim.binvox", b"#binvox 1\nscale 1\ndata\n\x00\x08", "BINVOX"),
    ("short.binvox", _good()[:-3], "truncated"),
    ("long.binvox", _good() + b"\x01\x05", "run-length"),
    ("huge.binvox", b"#binvox 1\ndim 100000 100000 100000\ndata\n\x00\xff", "voxels"),
    ("values.binvox", b"#binvox 1\ndim 2 2 2\ndata\n\x07\x08", "0 or 1"),
    ("scale.binvox", b"#binvox 1\ndim 2 2 2\nscale -1\ndata\n\x00\x08", "scale"),
    ("translate.binvox", b"#binvox 1\ndim 2 2 2\ntranslate 1 2\ndata\n\x00\x08", "translate"),
    ("garbage.binvox", np.random.default_rng(2).bytes(300), "BINVOX"),
]


@pytest.mark.parametrize("name,data,match", BAD, ids=[b[0] for b in BAD])
def test_bad_files(tmp_path, name, data, match):
    path = write(tmp_path / name, data)
    with pytest.raises(FileFormatError) as info:
        load_binvox(path)
    assert str(path) in str(info.value) and match in str(info.value), info.value


def test_missing_and_wrong_extension(tmp_path):
    with pytest.raises(MeshFileNotFoundError, match="nope.binvox"):
        load_binvox(tmp_path / "nope.binvox")
    path = write(tmp_path / "v.vox", _good())
    with pytest.raises(FileFormatError, match="supported formats"):
        load_binvox(path)
