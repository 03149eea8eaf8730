"""Multi-layer perceptrons and the fully connected residual blocks of occupancy networks.

Everything here is **channels-last**: features are the last axis, ``(N, *, C)``
(e.g. ``(N, C)`` vectors or ``(N, T, C)`` per-point features), and every
leading axis is treated as a batch axis, also by the norms (``"batch"``
normalises over all rows ``N * T``).

::

    mlp = MLP(3, 1, hidden_dims=(128, 128))               # 17,153 parameters
    occ = mlp(points)                                      # (N, T, 3) -> (N, T, 1)
    blk = ResnetBlockFC(128)                               # 33,024 parameters
    cbn = ConditionalBatchNorm(128, cond_dim=256)          # 65,792 parameters
    y = cbn(x, c)                                          # x (N, T, 128), c (N, 256)

:class:`ResnetBlockFC` and :class:`CondResnetBlockFC` are the pre-activation
residual blocks of Mescheder et al., "Occupancy Networks: Learning 3D
Reconstruction in Function Space" (CVPR 2019): their last linear layer starts
at zero, so each block starts as its shortcut.  :class:`ConditionalBatchNorm`
is that paper's conditional batch normalisation: batch statistics of ``x``,
scale and shift predicted from a conditioning vector.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from geomgen import checks as V
from geomgen.nn.activation import activation_gain_name, make_activation
from geomgen.nn.init import INIT_SCHEMES, init_weights
from geomgen.nn.norm import make_norm

__all__ = ["MLP", "RowNorm", "ResnetBlockFC", "ConditionalBatchNorm", "CondResnetBlockFC"]

_MLP_NORMS = ("batch", "group", "layer", "none")


def _check_features(x: Any, name: str, channels: int, fn: str, desc: str = "(N, *, C)") -> torch.Tensor:
    V.check_tensor(x, name, floating=True, fn=fn)
    if x.dim() < 1:
        raise V.fail(name, f"must have at least 1 dimension {desc}, got a 0-D tensor", fn)
    if x.shape[-1] != channels:
        raise V.fail(name, f"must have C={channels} features in its last axis, got shape {tuple(x.shape)}", fn)
    return x


class RowNorm(nn.Module):
    """A :func:`~geomgen.nn.norm.make_norm` normalisation applied to channels-last features.

    The input ``(N, *, C)`` is viewed as ``(M, C)`` rows (``M`` the product of
    the leading sizes), normalised and reshaped back.

    Args:
        kind: ``"batch"`` (statistics over the ``M`` rows), ``"group"``,
            ``"layer"`` (per row) or ``"none"``.
        channels: ``C``.
        groups: maximum group count of ``"group"``.

    Shapes: ``(N, *, C) -> (N, *, C)``.
    """

    def __init__(self, kind: str, channels: int, groups: int = 8, *, fn: str | None = None) -> None:
        V.check_choice(kind, "norm", _MLP_NORMS, fn=fn or "RowNorm")
        super().__init__()
        self.kind = kind
        self.norm = make_norm(kind, channels, groups, dim=1, fn=fn or "RowNorm")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, *, C) -> (N, *, C)``."""
        if self.kind == "none":
            return x
        return self.norm(x.reshape(-1, x.shape[-1])).view(x.shape)


class MLP(nn.Module):
    """Fully connected network ``in_dim -> hidden_dims... -> out_dim`` on the last axis.

    Each hidden layer is ``Linear -> norm -> act -> dropout``; the output layer
    is a plain ``Linear`` followed by ``out_act`` (default none).  With
    ``residual=True`` each hidden layer adds its input back
    (``h = layer(x) + skip(x)``, ``skip`` the identity when the sizes agree,
    else a bias-free linear projection).

    Args:
        in_dim: ``C_in``.
        out_dim: ``C_out``.
        hidden_dims: sizes of the hidden layers (may be empty: one linear layer).
        act: activation of the hidden layers.
        norm: ``"batch"``, ``"group"``, ``"layer"`` or ``"none"`` (see :class:`RowNorm`).
        groups: maximum group count of ``norm="group"``.
        dropout: dropout probability after each hidden layer (training mode only).
        residual: residual hidden layers.
        out_act: activation after the output layer.
        bias: biases of the hidden layers (the output layer always has one).
        init: :func:`~geomgen.nn.init.init_weights` scheme (with the gain of ``act``).

    ``MLP(3, 1)`` (hidden ``(128, 128)``) has 17,153 parameters.

    Shapes: ``forward(x (N, *, C_in)) -> (N, *, C_out)``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dims: Sequence[int] = (128, 128),
        *,
        act: str = "relu",
        norm: str = "none",
        groups: int = 8,
        dropout: float = 0.0,
        residual: bool = False,
        out_act: str = "none",
        bias: bool = True,
        init: str = "kaiming",
    ) -> None:
        fn = "MLP"
        in_dim = V.check_int(in_dim, "in_dim", min_value=1, fn=fn)
        out_dim = V.check_int(out_dim, "out_dim", min_value=1, fn=fn)
        if isinstance(hidden_dims, (str, bytes)) or not isinstance(hidden_dims, Sequence):
            raise V.fail("hidden_dims", f"must be a sequence of integers, got {hidden_dims!r}", fn)
        hidden = tuple(V.check_int(h, "hidden_dims", min_value=1, fn=fn) for h in hidden_dims)
        V.check_choice(norm, "norm", _MLP_NORMS, fn=fn)
        dropout = V.check_float(dropout, "dropout", ge=0.0, lt=1.0, fn=fn)
        V.check_bool(residual, "residual", fn=fn)
        V.check_bool(bias, "bias", fn=fn)
        V.check_choice(init, "init", INIT_SCHEMES, fn=fn)
        make_activation(act, fn=fn)
        make_activation(out_act, name="out_act", fn=fn)
        super().__init__()
        self.in_dim, self.out_dim, self.hidden_dims, self.residual = in_dim, out_dim, hidden, residual
        self.layers = nn.ModuleList()
        self.skips = nn.ModuleList()
        d = in_dim
        for h in hidden:
            self.layers.append(
                nn.Sequential(
                    nn.Linear(d, h, bias=bias),
                    RowNorm(norm, h, groups, fn=fn),
                    make_activation(act, fn=fn),
                    nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
                )
            )
            if residual:
                self.skips.append(nn.Identity() if d == h else nn.Linear(d, h, bias=False))
            d = h
        self.out = nn.Linear(d, out_dim)
        self.out_act = make_activation(out_act, name="out_act", fn=fn)
        nonlin, slope = activation_gain_name(act)
        init_weights(self, init, nonlinearity=nonlin, a=slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the network to ``x (N, *, C_in)``; returns ``(N, *, C_out)``.

        Raises:
            InvalidInputError: ``x`` not floating or its last axis is not ``C_in``.
        """
        _check_features(x, "x", self.in_dim, "MLP.forward", "(N, *, C_in)")
        for i, layer in enumerate(self.layers):
            x = layer(x) + self.skips[i](x) if self.residual else layer(x)
        return self.out_act(self.out(x))


class ResnetBlockFC(nn.Module):
    """Pre-activation fully connected residual block (occupancy networks).

    ``out = shortcut(x) + fc_1(act(fc_0(act(x))))`` with ``shortcut`` the
    identity, or a bias-free linear layer when ``size_in != size_out``.
    ``fc_1`` starts at zero (weights and bias; kept by :func:`init_weights`),
    so the block starts as its shortcut.

    Args:
        size_in: ``C_in``.
        size_out: ``C_out`` (default ``C_in``).
        size_h: hidden size (default ``min(C_in, C_out)``).
        act: activation name.

    ``ResnetBlockFC(128)`` has 33,024 parameters.

    Shapes: ``(N, *, C_in) -> (N, *, C_out)``.
    """

    def __init__(
        self, size_in: int, size_out: int | None = None, size_h: int | None = None, *, act: str = "relu"
    ) -> None:
        fn = "ResnetBlockFC"
        size_in = V.check_int(size_in, "size_in", min_value=1, fn=fn)
        size_out = size_in if size_out is None else V.check_int(size_out, "size_out", min_value=1, fn=fn)
        size_h = min(size_in, size_out) if size_h is None else V.check_int(size_h, "size_h", min_value=1, fn=fn)
        super().__init__()
        self.size_in, self.size_h, self.size_out = size_in, size_h, size_out
        self.act = make_activation(act, fn=fn)
        self.fc_0 = nn.Linear(size_in, size_h)
        self.fc_1 = nn.Linear(size_h, size_out)
        self.shortcut: nn.Module = nn.Identity() if size_in == size_out else nn.Linear(size_in, size_out, bias=False)
        nonlin, slope = activation_gain_name(act)
        init_weights(self, "kaiming", nonlinearity=nonlin, a=slope)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, *, C_in) -> (N, *, C_out)``."""
        _check_features(x, "x", self.size_in, "ResnetBlockFC.forward", "(N, *, C_in)")
        dx = self.fc_1(self.act(self.fc_0(self.act(x))))
        return self.shortcut(x) + dx

    def reset_special_parameters(self) -> None:
        """Zero ``fc_1`` so the block starts as its shortcut."""
        with torch.no_grad():
            self.fc_1.weight.zero_()
            self.fc_1.bias.zero_()


class ConditionalBatchNorm(nn.Module):
    """Batch normalisation whose scale and shift are predicted from a condition.

    ``out = gamma(c) * (x - mean) / sqrt(var + eps) + beta(c)`` with batch
    statistics over all rows of ``x`` (running estimates in eval mode, as
    ``BatchNorm1d``) and ``gamma``, ``beta`` linear in ``c``.  ``gamma``
    starts at 1 and ``beta`` at 0 for every condition (kept by :func:`init_weights`).

    Args:
        channels: ``C`` (features of ``x``).
        cond_dim: ``F`` (features of the condition ``c``).
        eps: added to the variance.
        momentum: of the running estimates.

    ``ConditionalBatchNorm(128, 256)`` has 65,792 parameters.

    Shapes: ``forward(x (N, C) or (N, T, C), c (N, F)) -> x.shape``; every
    sample ``n`` uses ``gamma(c[n])``, ``beta(c[n])``.
    """

    def __init__(self, channels: int, cond_dim: int, *, eps: float = 1e-5, momentum: float = 0.1) -> None:
        fn = "ConditionalBatchNorm"
        channels = V.check_int(channels, "channels", min_value=1, fn=fn)
        cond_dim = V.check_int(cond_dim, "cond_dim", min_value=1, fn=fn)
        super().__init__()
        self.channels, self.cond_dim = channels, cond_dim
        self.bn = nn.BatchNorm1d(channels, eps=eps, momentum=momentum, affine=False)
        self.gamma = nn.Linear(cond_dim, channels)
        self.beta = nn.Linear(cond_dim, channels)
        self.reset_special_parameters()

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Normalise ``x (N, C) or (N, T, C)`` conditioned on ``c (N, F)``.

        Raises:
            InvalidInputError: wrong ranks, feature sizes or batch sizes.
        """
        fn = "ConditionalBatchNorm.forward"
        V.check_tensor(x, "x", ndim=(2, 3), shape_desc="(N, C) or (N, T, C)", floating=True, fn=fn)
        _check_features(x, "x", self.channels, fn)
        V.check_tensor(c, "c", shape=(x.shape[0], self.cond_dim), shape_desc=f"(N, F={self.cond_dim})", floating=True, fn=fn)
        y = self.bn(x.reshape(-1, self.channels)).view(x.shape)
        gamma, beta = self.gamma(c), self.beta(c)
        if x.dim() == 3:
            gamma, beta = gamma.unsqueeze(1), beta.unsqueeze(1)
        return gamma * y + beta

    def reset_special_parameters(self) -> None:
        """``gamma(c) = 1`` and ``beta(c) = 0`` for every ``c``."""
        with torch.no_grad():
            self.gamma.weight.zero_()
            self.gamma.bias.fill_(1.0)
            self.beta.weight.zero_()
            self.beta.bias.zero_()


class CondResnetBlockFC(nn.Module):
    """:class:`ResnetBlockFC` with :class:`ConditionalBatchNorm` before each activation.

    ``out = shortcut(x) + fc_1(act(cbn_1(fc_0(act(cbn_0(x, c))), c)))``
    (the occupancy network decoder's conditional block); ``fc_1`` starts at zero.

    Args:
        size_in: ``C_in``.
        cond_dim: ``F``.
        size_out: ``C_out`` (default ``C_in``).
        size_h: hidden size (default ``min(C_in, C_out)``).
        act: activation name.

    ``CondResnetBlockFC(128, 128)`` has 99,072 parameters.

    Shapes: ``forward(x (N, C_in) or (N, T, C_in), c (N, F)) -> (N, [T,] C_out)``.
    """

    def __init__(
        self,
        size_in: int,
        cond_dim: int,
        size_out: int | None = None,
        size_h: int | None = None,
        *,
        act: str = "relu",
    ) -> None:
        fn = "CondResnetBlockFC"
        size_in = V.check_int(size_in, "size_in", min_value=1, fn=fn)
        size_out = size_in if size_out is None else V.check_int(size_out, "size_out", min_value=1, fn=fn)
        size_h = min(size_in, size_out) if size_h is None else V.check_int(size_h, "size_h", min_value=1, fn=fn)
        super().__init__()
        self.size_in, self.size_h, self.size_out = size_in, size_h, size_out
        self.bn_0 = ConditionalBatchNorm(size_in, cond_dim)
        self.bn_1 = ConditionalBatchNorm(size_h, cond_dim)
        self.act = make_activation(act, fn=fn)
        self.fc_0 = nn.Linear(size_in, size_h)
        self.fc_1 = nn.Linear(size_h, size_out)
        self.shortcut: nn.Module = nn.Identity() if size_in == size_out else nn.Linear(size_in, size_out, bias=False)
        nonlin, slope = activation_gain_name(act)
        init_weights(self, "kaiming", nonlinearity=nonlin, a=slope)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``x (N, [T,] C_in)``, ``c (N, F)`` -> ``(N, [T,] C_out)``."""
        net = self.fc_0(self.act(self.bn_0(x, c)))
        dx = self.fc_1(self.act(self.bn_1(net, c)))
        return self.shortcut(x) + dx

    def reset_special_parameters(self) -> None:
        """Zero ``fc_1`` so the block starts as its shortcut."""
        with torch.no_grad():
            self.fc_1.weight.zero_()
            self.fc_1.bias.zero_()
