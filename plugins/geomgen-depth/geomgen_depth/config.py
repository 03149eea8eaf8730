"""Hyper-parameters of the ``depth`` representation: :class:`DepthConfig`.

Imports no torch, so the registry lists the schema without loading the model.
"""

from __future__ import annotations

from geomgen.config import PredictorConfig, param

__all__ = ["DepthConfig", "POINT_SOURCES"]

#: Accepted values of ``points_from``: foreground pixel centres, or area-uniform samples of the 2.5D mesh.
POINT_SOURCES: tuple[str, ...] = ("pixels", "mesh")


class DepthConfig(PredictorConfig):
    """Hyper-parameters of :class:`geomgen_depth.model.DepthPredictor`
    (``geomgen.get_model("depth", **config)``).  The shipped pretrained model
    differs in ``si_lambda=0`` (its config is in the pretrained manifest)."""

    model_name = "depth"

    encoder: str = param("tiny", "image encoder", vocabulary="geomgen.nn.RESNET_PRESETS")
    decoder_widths: tuple[int, ...] | None = param(
        None, "stage widths of the U-Net decoder, coarse to fine (None: the encoder's)", ge=1, min_length=1)
    decoder_depth: int = param(1, "convolution blocks per decoder stage", ge=1)
    upsample: str = param("bilinear", "decoder upsampling", vocabulary="geomgen.nn.decoder2d.UPSAMPLE_MODES")
    norm: str = param("batch", "norm of the encoder and decoder blocks", vocabulary="geomgen.nn.NORM_KINDS")
    si_lambda: float = param(0.5, "lambda of the scale-invariant depth loss (1: blind to a global scale)",
                             ge=0.0, le=1.0)
    l1_weight: float = param(0.5, "weight of the L1 log-depth term", ge=0.0)
    mask_weight: float = param(1.0, "weight of the mask BCE term", ge=0.0)
    mask_threshold: float = param(0.5, "mask probability at or above which a pixel is foreground", gt=0.0, lt=1.0)
    rel_threshold: float = param(0.1, "relative depth jump between neighbouring pixels that separates surfaces",
                                 gt=0.0)
    points_from: str = param("mesh", "what predict_points returns: samples of the 2.5D mesh or the pixel centres",
                             choices=POINT_SOURCES)
