"""Activation factory shared by the layers of :mod:`geomgen.nn`.

Every block that takes an ``act=`` argument builds its activation with
:func:`make_activation`, so one name means the same layer everywhere::

    make_activation("relu")            # nn.ReLU(inplace=False)
    make_activation("leaky_relu")      # nn.LeakyReLU(0.2) (the GAN default slope)
    make_activation("none")            # nn.Identity()

Activations act elementwise, so any shape ``(N, *)`` goes through unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from geomgen import checks as V

__all__ = ["ACTIVATIONS", "make_activation", "activation_gain_name"]

_FACTORIES: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.2),
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "none": nn.Identity,
}

#: Accepted activation names (``act=`` of every block in :mod:`geomgen.nn`).
ACTIVATIONS: tuple[str, ...] = tuple(_FACTORIES)


def make_activation(act: str, *, name: str = "act", fn: str | None = None) -> nn.Module:
    """Build the activation layer called ``act``.

    Args:
        act: one of :data:`ACTIVATIONS`: ``"relu"``, ``"leaky_relu"`` (slope
            0.2), ``"gelu"``, ``"silu"``, ``"elu"``, ``"tanh"``, ``"sigmoid"``,
            ``"softplus"`` or ``"none"`` (identity).
        name: argument name used in error messages.
        fn: public function named in error messages.

    Returns:
        A parameter-free module mapping ``(N, *)`` to ``(N, *)``.

    Raises:
        InvalidInputError: unknown ``act``.
    """
    V.check_choice(act, name, ACTIVATIONS, fn=fn)
    return _FACTORIES[act]()


def activation_gain_name(act: str) -> tuple[str, float]:
    """The ``(nonlinearity, param)`` pair that :func:`torch.nn.init.calculate_gain`
    (and Kaiming initialisation) should use after activation ``act``.

    ``"gelu"``/``"silu"``/``"elu"``/``"softplus"`` are treated as ReLU-like;
    ``"none"`` and ``"sigmoid"`` as linear/sigmoid.
    """
    V.check_choice(act, "act", ACTIVATIONS, fn="activation_gain_name")
    if act == "leaky_relu":
        return "leaky_relu", 0.2
    if act in ("tanh", "sigmoid"):
        return act, 0.0
    if act == "none":
        return "linear", 0.0
    return "relu", 0.0
