"""Weight initialisation: Kaiming (He) and Xavier (Glorot) schemes.

:func:`init_weights` re-initialises every convolution (1-D/2-D/3-D, also
transposed) and linear layer of a module tree with one scheme, zeroes their
biases and resets normalisation layers to the identity (scale 1, shift 0)::

    model = ResNetEncoder()
    init_weights(model, "kaiming", nonlinearity="relu")   # std = sqrt(2 / fan_in)
    init_weights(head, "xavier")                           # U(-a, a), a = sqrt(6 / (fan_in + fan_out))

Layers whose initialisation is part of their design keep it: after the
generic pass, every submodule that defines ``reset_special_parameters()``
has it called (unless ``keep_special=False``).  In :mod:`geomgen.nn` these are
:class:`~geomgen.nn.mlp.ResnetBlockFC` (zero last layer, so the block starts
as its shortcut), :class:`~geomgen.nn.mlp.ConditionalBatchNorm` (scale 1,
shift 0 whatever the condition), :class:`~geomgen.nn.graph_conv.GraphConvBlock`
(PyTorch3D's N(0, 0.01^2) graph convolutions), :class:`~geomgen.nn.attention.MultiHeadAttention`
(Xavier), the zero-initialised last layers of
:class:`~geomgen.nn.masked_conv.MaskedResBlock3d` and residual blocks built
with ``zero_init_residual=True``.  Kaiming schemes give
:class:`~geomgen.nn.masked_conv.MaskedConv3d` the fan-in of its unmasked taps.

Fan-in / fan-out are torch's (:func:`torch.nn.init._calculate_fan_in_and_fan_out`):
``C_in * prod(kernel)`` / ``C_out * prod(kernel)`` for ``(C_out, C_in, *kernel)``
weights; a transposed convolution's ``(C_in, C_out, *kernel)`` weight is read
the same way, so its "fan_in" is ``C_out * prod(kernel)``, as in torch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from geomgen import checks as V
from geomgen.nn.norm import is_norm

__all__ = ["INIT_SCHEMES", "init_weights", "kaiming_init_", "xavier_init_", "is_weight_layer", "kaiming_std"]

#: Accepted ``scheme`` values of :func:`init_weights` (``init=`` of the blocks).
INIT_SCHEMES: tuple[str, ...] = (
    "kaiming",
    "kaiming_uniform",
    "xavier",
    "xavier_normal",
    "normal",
    "default",
)

_NONLINEARITIES = ("relu", "leaky_relu", "linear", "tanh", "sigmoid", "selu")
_WEIGHT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)


def is_weight_layer(module: nn.Module) -> bool:
    """True for the layers :func:`init_weights` initialises: ``nn.Linear`` and
    every ``nn.Conv{1,2,3}d`` / ``nn.ConvTranspose{1,2,3}d`` (and subclasses)."""
    return isinstance(module, _WEIGHT_LAYERS)


def _weight_of(module: nn.Module | torch.Tensor, fn: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    if isinstance(module, torch.Tensor):
        w, b = module, None
    else:
        w, b = getattr(module, "weight", None), getattr(module, "bias", None)
    if not isinstance(w, torch.Tensor) or w.dim() < 2:
        raise V.fail("module", f"must be a layer with a weight of >= 2 dimensions, got {type(module).__name__}", fn)
    return w, b if isinstance(b, torch.Tensor) else None


def kaiming_init_(
    module: nn.Module | torch.Tensor,
    *,
    nonlinearity: str = "relu",
    a: float = 0.0,
    mode: str = "fan_in",
    distribution: str = "normal",
    zero_bias: bool = True,
) -> nn.Module | torch.Tensor:
    """He initialisation of one layer (or weight tensor), in place.

    ``std = gain / sqrt(fan)`` with ``gain = calculate_gain(nonlinearity, a)``
    (``sqrt(2)`` for ReLU) and ``fan`` the weight's fan-in (``mode="fan_in"``,
    preserves forward variance) or fan-out (``"fan_out"``, backward variance).
    ``distribution="normal"`` draws ``N(0, std^2)``; ``"uniform"`` draws
    ``U(-sqrt(3) std, sqrt(3) std)``.  A layer with an ``effective_fan_in()``
    method (:class:`~geomgen.nn.masked_conv.MaskedConv3d`: ``C_in`` times the
    unmasked taps) uses that fan-in with ``mode="fan_in"``.

    Args:
        module: a layer with a ``(C_out, C_in, *kernel)`` / ``(F_out, F_in)``
            ``weight`` (and optional ``bias``), or the weight tensor itself.
        nonlinearity: the activation after the layer: ``"relu"``,
            ``"leaky_relu"`` (slope ``a``), ``"linear"``, ``"tanh"``,
            ``"sigmoid"``, ``"selu"``.
        a: negative slope of ``"leaky_relu"``.
        mode: ``"fan_in"`` or ``"fan_out"``.
        distribution: ``"normal"`` or ``"uniform"``.
        zero_bias: set the bias to 0.

    Returns:
        ``module``.

    Raises:
        InvalidInputError: bad ``nonlinearity``/``mode``/``distribution``, or a
            module without a weight of at least 2 dimensions.
    """
    fn = "kaiming_init_"
    V.check_choice(nonlinearity, "nonlinearity", _NONLINEARITIES, fn=fn)
    V.check_choice(mode, "mode", ("fan_in", "fan_out"), fn=fn)
    V.check_choice(distribution, "distribution", ("normal", "uniform"), fn=fn)
    a = V.check_float(a, "a", fn=fn)
    w, b = _weight_of(module, fn)
    fan_of = getattr(module, "effective_fan_in", None)
    with torch.no_grad():
        if mode == "fan_in" and callable(fan_of):
            std = kaiming_std(int(fan_of()), nonlinearity, a)
            if distribution == "normal":
                w.normal_(0.0, std)
            else:
                w.uniform_(-math.sqrt(3.0) * std, math.sqrt(3.0) * std)
        elif distribution == "normal":
            nn.init.kaiming_normal_(w, a=a, mode=mode, nonlinearity=nonlinearity)
        else:
            nn.init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity)
        if zero_bias and b is not None:
            b.zero_()
    return module


def xavier_init_(
    module: nn.Module | torch.Tensor,
    *,
    gain: float = 1.0,
    distribution: str = "uniform",
    zero_bias: bool = True,
) -> nn.Module | torch.Tensor:
    """Glorot initialisation of one layer (or weight tensor), in place.

    ``std = gain * sqrt(2 / (fan_in + fan_out))``; ``"uniform"`` draws
    ``U(-sqrt(3) std, sqrt(3) std)``, ``"normal"`` draws ``N(0, std^2)``.

    Args:
        module: a layer with a ``weight`` of at least 2 dimensions (and
            optional ``bias``), or the weight tensor itself.
        gain: scale factor (e.g. ``calculate_gain("tanh")``).
        distribution: ``"uniform"`` or ``"normal"``.
        zero_bias: set the bias to 0.

    Returns:
        ``module``.
    """
    fn = "xavier_init_"
    V.check_choice(distribution, "distribution", ("normal", "uniform"), fn=fn)
    gain = V.check_float(gain, "gain", positive=True, fn=fn)
    w, b = _weight_of(module, fn)
    with torch.no_grad():
        if distribution == "uniform":
            nn.init.xavier_uniform_(w, gain=gain)
        else:
            nn.init.xavier_normal_(w, gain=gain)
        if zero_bias and b is not None:
            b.zero_()
    return module


def init_weights(
    module: nn.Module,
    scheme: str = "kaiming",
    *,
    nonlinearity: str = "relu",
    a: float = 0.0,
    mode: str = "fan_in",
    std: float = 0.02,
    gain: float | None = None,
    keep_special: bool = True,
) -> nn.Module:
    """Initialise every convolution and linear layer of ``module`` (in place).

    Args:
        module: any module tree.
        scheme: one of :data:`INIT_SCHEMES`:

            * ``"kaiming"``: :func:`kaiming_init_` normal (``std = gain / sqrt(fan)``).
            * ``"kaiming_uniform"``: the same variance, uniform.
            * ``"xavier"``: :func:`xavier_init_` uniform with ``gain``.
            * ``"xavier_normal"``: the same variance, normal.
            * ``"normal"``: ``N(0, std^2)`` (DCGAN's 0.02 by default).
            * ``"default"``: each layer's own ``reset_parameters()`` (torch's
              defaults, biases not zeroed).
        nonlinearity: activation after the layers (Kaiming gain): ``"relu"``,
            ``"leaky_relu"`` (slope ``a``), ``"linear"``, ``"tanh"``, ``"sigmoid"``, ``"selu"``.
        a: negative slope of ``"leaky_relu"``.
        mode: ``"fan_in"`` or ``"fan_out"`` (Kaiming).
        std: standard deviation of ``"normal"``.
        gain: Xavier gain; default 1 (Glorot's); pass e.g.
            ``nn.init.calculate_gain("tanh")`` to scale.
        keep_special: afterwards call ``reset_special_parameters()`` of every
            submodule that has one (see the module docstring).

    Non-``"default"`` schemes zero the biases and set the affine scale/shift of
    normalisation layers to 1/0.  Parameters of other layers (embeddings,
    ``nn.MultiheadAttention``'s packed projections, ...) are left alone.

    Returns:
        ``module``.

    Raises:
        InvalidInputError: unknown ``scheme`` or bad options.
    """
    fn = "init_weights"
    if not isinstance(module, nn.Module):
        raise V.fail("module", f"must be a torch.nn.Module, got {type(module).__name__}", fn)
    V.check_choice(scheme, "scheme", INIT_SCHEMES, fn=fn)
    V.check_choice(nonlinearity, "nonlinearity", _NONLINEARITIES, fn=fn)
    V.check_choice(mode, "mode", ("fan_in", "fan_out"), fn=fn)
    std = V.check_float(std, "std", positive=True, fn=fn)
    gain = 1.0 if gain is None else V.check_float(gain, "gain", positive=True, fn=fn)
    V.check_bool(keep_special, "keep_special", fn=fn)
    for m in module.modules():
        if is_weight_layer(m):
            if scheme == "default":
                m.reset_parameters()
            elif scheme in ("kaiming", "kaiming_uniform"):
                dist = "normal" if scheme == "kaiming" else "uniform"
                kaiming_init_(m, nonlinearity=nonlinearity, a=a, mode=mode, distribution=dist)
            elif scheme in ("xavier", "xavier_normal"):
                xavier_init_(m, gain=gain, distribution="uniform" if scheme == "xavier" else "normal")
            else:
                with torch.no_grad():
                    m.weight.normal_(0.0, std)
                    if m.bias is not None:
                        m.bias.zero_()
        elif is_norm(m):
            if scheme == "default":
                m.reset_parameters()
            elif getattr(m, "weight", None) is not None:
                with torch.no_grad():
                    m.weight.fill_(1.0)
                    m.bias.zero_()
    if keep_special:
        for m in module.modules():
            special = getattr(m, "reset_special_parameters", None)
            if callable(special):
                special()
    return module


def kaiming_std(fan_in: int, nonlinearity: str = "relu", a: float = 0.0) -> float:
    """The Kaiming-normal standard deviation ``gain / sqrt(fan_in)``."""
    return nn.init.calculate_gain(nonlinearity, a) / math.sqrt(fan_in)
