"""Shared fixtures of the autoregressive plugin's tests: one thread, fixed seeds, tiny models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    torch.set_num_threads(1)
    torch.manual_seed(0)


@pytest.fixture
def small_model() -> Callable[..., Any]:
    """``small_model(**overrides)``: a tiny :class:`VoxelPixelCNN` (8 channels, 2 blocks,
    stem 5, blocks 3: receptive radius 4) built through the registry."""
    import geomgen

    def build(**kw: Any) -> Any:
        cfg = {"resolution": 8, "hidden": 8, "num_blocks": 2, "stem_kernel": 5, "block_kernel": 3, **kw}
        return geomgen.get_model("autoregressive", **cfg)

    return build


@pytest.fixture
def randomize() -> Callable[..., Any]:
    """``randomize(model, std=0.4)``: draw every parameter from N(0, std^2) in place.
    The blocks start as identities (last convolution zero), which would hide their
    masks from the gradient and sampler checks."""

    def apply(model: torch.nn.Module, std: float = 0.4) -> torch.nn.Module:
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0.0, std)
        return model

    return apply
