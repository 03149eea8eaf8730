"""Depth maps with intrinsics as .npz files (geomgen.io.depthmaps)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geomgen.errors import FileFormatError, InvalidInputError, MeshFileNotFoundError
from geomgen.io import load_depthmaps, save_depthmaps
from geomgen.structures import DepthMaps


def _maps(n: int = 2) -> DepthMaps:
    g = torch.Generator().manual_seed(0)
    depth = 1.0 + torch.rand(n, 12, 16, generator=g)
    masks = torch.rand(n, 12, 16, generator=g) > 0.3
    K = torch.tensor([[20.0, 0, 8], [0, 21.0, 6], [0, 0, 1]]).expand(n, 3, 3).clone()
    K[:, 0, 2] += torch.arange(n)  # a different principal point per map
    return DepthMaps(depth * masks, K, masks=masks)


def test_round_trip_of_a_batch_and_of_one_map(tmp_path):
    maps = _maps(3)
    save_depthmaps(tmp_path / "all.npz", maps)
    back = load_depthmaps(tmp_path / "all.npz")
    assert torch.equal(back.masks, maps.masks)
    assert torch.equal(back.depth, maps.depth * maps.masks)
    assert torch.equal(back.K, maps.K)
    save_depthmaps(tmp_path / "one.npz", maps, index=-1)
    with np.load(tmp_path / "one.npz") as z:
        assert z["depth"].shape == (12, 16) and z["K"].shape == (3, 3) and z["mask"].dtype == bool
    one = load_depthmaps(tmp_path / "one.npz")
    assert one.depth.shape == (1, 12, 16) and torch.equal(one.K[0], maps.K[2])
    assert torch.equal(one.depth[0], back.depth[2])


def test_files_without_mask_and_with_one_K(tmp_path):
    depth = np.zeros((2, 4, 5), np.float32)
    depth[:, 1:3, 1:4] = 3.0
    depth[1, 0, 0] = np.nan  # non-finite depths are masked off
    K = np.eye(3, dtype=np.float32)
    np.savez(tmp_path / "d.npz", depth=depth, K=K)
    maps = load_depthmaps(tmp_path / "d.npz")
    assert maps.masks.sum(dim=(1, 2)).tolist() == [6, 6]
    assert torch.isfinite(maps.depth).all() and maps.K.shape == (2, 3, 3)


@pytest.mark.parametrize("arrays, match", [
    ({"depth": np.ones((4, 4), np.float32)}, "needs its intrinsics"),
    ({"K": np.eye(3)}, "no 'depth' array"),
    ({"depth": np.ones((4, 4), np.int32), "K": np.eye(3)}, "float array"),
    ({"depth": np.ones((4,), np.float32), "K": np.eye(3)}, r"\(H, W\) or \(N, H, W\)"),
    ({"depth": np.ones((4, 4), np.float32), "K": np.eye(3), "mask": np.ones((3, 3), bool)}, "'mask'"),
    ({"depth": np.ones((2, 4, 4), np.float32), "K": np.stack([np.eye(3)] * 3)}, "'K'"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path, arrays, match):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(FileFormatError, match=match) as info:
        load_depthmaps(path)
    assert "bad.npz" in str(info.value)


def test_bad_paths_and_arguments(tmp_path):
    with pytest.raises(MeshFileNotFoundError, match="missing.npz"):
        load_depthmaps(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip archive")
    with pytest.raises(FileFormatError, match="junk.npz"):
        load_depthmaps(tmp_path / "junk.npz")
    with pytest.raises(FileFormatError, match=r"\.npz"):
        save_depthmaps(tmp_path / "d.png", _maps())
    with pytest.raises(MeshFileNotFoundError, match="does not exist"):
        save_depthmaps(tmp_path / "no" / "d.npz", _maps())
    with pytest.raises(InvalidInputError, match="depthmaps"):
        save_depthmaps(tmp_path / "d.npz", torch.zeros(1, 4, 4))
    with pytest.raises(InvalidInputError, match="index"):
        save_depthmaps(tmp_path / "d.npz", _maps(2), index=2)
