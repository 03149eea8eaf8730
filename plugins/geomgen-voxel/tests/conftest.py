"""Shared fixtures of the voxel plugin's tests: a tiny ``shapes`` dataset built once per session."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def voxel_batch(tmp_path_factory):
    """``single_view`` batch (view 0) of six samples: box, sphere, mug, 2 each, mesh resolution 20."""
    import geomgen
    from geomgen.data import collate_samples
    from geomgen.models import single_view

    root = tmp_path_factory.mktemp("shapes_voxel")
    ds = geomgen.get_dataset("shapes", root=str(root), split="train", categories=["box", "sphere", "mug"],
                             per_category=2, resolution=20, progress=False, view=0)
    return single_view(collate_samples([ds[i] for i in range(len(ds))]))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
