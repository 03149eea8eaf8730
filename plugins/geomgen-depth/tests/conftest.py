"""Shared fixtures of the depth plugin's tests: a tiny ``shapes`` dataset built once per session."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def depth_samples(tmp_path_factory):
    """Six samples (box, sphere, mug; 2 each) at mesh resolution 20, all six views."""
    import geomgen

    root = tmp_path_factory.mktemp("shapes_depth")
    ds = geomgen.get_dataset("shapes", root=str(root), split="train", categories=["box", "sphere", "mug"],
                             per_category=2, resolution=20, progress=False, view="all")
    return [ds[i] for i in range(len(ds))]


@pytest.fixture(scope="session")
def depth_batch(depth_samples):
    """``single_view`` batch of the six samples, view 1."""
    from geomgen.data import collate_samples
    from geomgen.models import single_view

    return single_view(collate_samples(depth_samples), view=1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
