"""Hyper-parameters of the ``autoregressive`` generator: :class:`AutoregressiveConfig`.

Imports no torch, so the registry lists the schema without loading the model.
"""

from __future__ import annotations

from collections.abc import Sequence

from geomgen.config import GeneratorConfig, param

__all__ = ["AutoregressiveConfig", "kernel_sides"]


def kernel_sides(kernel: int | Sequence[int]) -> tuple[int, int, int]:
    """``(kD, kH, kW)`` of a kernel given as one side or three (as in the config)."""
    return (kernel,) * 3 if isinstance(kernel, int) else tuple(kernel)  # type: ignore[return-value]


class AutoregressiveConfig(GeneratorConfig):
    """Hyper-parameters of :class:`geomgen_autoregressive.model.VoxelPixelCNN`
    (``geomgen.get_model("autoregressive", **config)``); the defaults are the shipped model's.

    Kernels are one odd side or three odd sides ``(kD, kH, kW)``, e.g. ``(3, 7, 7)``
    to see wider across the previous slices.
    """

    model_name = "autoregressive"

    resolution: int = param(16, "R, voxels per axis (data grids are downsampled to it by volume fraction)", ge=2)
    hidden: int = param(32, "C, channels of the hidden grids", ge=2)
    num_blocks: int = param(4, "masked residual blocks", ge=0)
    stem_kernel: int | tuple[int, ...] = param(5, "odd kernel side(s) of the type-'A' stem (not all 1)",
                                               ge=1, length=3)
    block_kernel: int | tuple[int, ...] = param(3, "odd kernel side(s) of the blocks' type-'B' convolutions",
                                                ge=1, length=3)
    act: str = param("relu", "activation of the network", vocabulary="geomgen.nn.ACTIVATIONS")
    position_bias: bool = param(True, "learn a (C, R, R, R) bias after the stem, so the network knows where "
                                      "each voxel is")

    def check(self) -> None:
        super().check()
        for key in ("stem_kernel", "block_kernel"):
            value = getattr(self, key)
            if any(k % 2 == 0 for k in kernel_sides(value)):
                raise self.fail(key, f"must be odd, got {list(value) if isinstance(value, tuple) else value!r}")
        if kernel_sides(self.stem_kernel) == (1, 1, 1):
            raise self.fail("stem_kernel", "must be larger than 1 (a 1x1x1 type-'A' kernel sees nothing)")
