"""Graph convolution block over packed vertex features (Mesh R-CNN's refinement stages).

Shape letters: ``V`` packed vertices of a batch of meshes
(``Meshes.verts_packed()`` rows), ``E`` edges (``Meshes.edges_packed()``),
``C`` channels.

::

    blk = GraphConvBlock(128)                       # 33,024 parameters
    y = blk(x, edges)                               # x (V, 128), edges (E, 2) -> (V, 128)
    blk = GraphConvBlock(259, 128, residual=False)  # Mesh R-CNN style: relu(gconv(x))

:class:`GraphConvBlock` wraps :class:`geomgen.ops.GraphConv`
(``W0 f_i + b0 + sum_{j in N(i)} (W1 f_j + b1)``, PyTorch3D's layer) with a
normalisation over the packed vertices, an activation and an optional
residual connection::

    out = act(norm(gconv(x, edges)) + skip(x))      # residual=True
    out = act(norm(gconv(x, edges)))                # residual=False

``skip`` is the identity when ``C_in == C_out``, else a bias-free linear
projection.  Mesh R-CNN's refinement head (Gkioxari et al., ICCV 2019) is a
stack of ``residual=False, norm="none"`` blocks whose inputs are vertex
features sampled with :func:`geomgen.ops.vert_align` concatenated with the
vertex positions; its offsets come from a final plain ``Linear``.
"""

from __future__ import annotations

import torch
from torch import nn

from geomgen import checks as V
from geomgen.nn.activation import activation_gain_name, make_activation
from geomgen.nn.init import kaiming_init_
from geomgen.nn.mlp import RowNorm
from geomgen.ops.graph_conv import GraphConv
from geomgen.ops.mesh_edges import GraphAdjacency

__all__ = ["GraphConvBlock"]


class GraphConvBlock(nn.Module):
    """``GraphConv -> norm -> (+ skip) -> act`` over packed vertex features.

    Args:
        in_dim: ``C_in``.
        out_dim: ``C_out`` (default ``C_in``).
        norm: ``"batch"`` (statistics over all ``V`` vertices of the batch),
            ``"group"``, ``"layer"`` (per vertex) or ``"none"``.
        groups: maximum group count of ``norm="group"``.
        act: activation name.
        residual: add ``skip(x)`` before the activation.
        init: the graph convolution's init, ``"normal"`` (N(0, 0.01^2), biases
            0, as PyTorch3D/Mesh R-CNN) or ``"zero"``; the projection of the
            skip is Kaiming-initialised.  Kept by :func:`~geomgen.nn.init.init_weights`.
        directed: one-way edges (see :class:`~geomgen.ops.GraphConv`).

    ``GraphConvBlock(128)`` has 33,024 parameters (``norm="none"``, identity
    skip); a projection adds ``C_in * C_out``, an affine norm ``2 C_out``.

    Shapes: ``forward(x (V, C_in), edges (E, 2) or GraphAdjacency) -> (V, C_out)``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int | None = None,
        *,
        norm: str = "none",
        groups: int = 8,
        act: str = "relu",
        residual: bool = True,
        init: str = "normal",
        directed: bool = False,
    ) -> None:
        fn = "GraphConvBlock"
        in_dim = V.check_int(in_dim, "in_dim", min_value=1, fn=fn)
        out_dim = in_dim if out_dim is None else V.check_int(out_dim, "out_dim", min_value=1, fn=fn)
        V.check_bool(residual, "residual", fn=fn)
        V.check_choice(init, "init", ("normal", "zero"), fn=fn)
        super().__init__()
        self.in_dim, self.out_dim, self.residual, self.init = in_dim, out_dim, residual, init
        self.act_name = act
        self.gconv = GraphConv(in_dim, out_dim, init=init, directed=directed)
        self.norm = RowNorm(norm, out_dim, groups, fn=fn)
        self.act = make_activation(act, fn=fn)
        self.skip: nn.Module | None = None
        if residual:
            self.skip = nn.Identity() if in_dim == out_dim else nn.Linear(in_dim, out_dim, bias=False)
        self.reset_special_parameters()

    def extra_repr(self) -> str:
        return f"residual={self.residual}"

    def forward(self, x: torch.Tensor, edges: torch.Tensor | GraphAdjacency) -> torch.Tensor:
        """Apply the block.

        Args:
            x: ``(V, C_in)`` packed vertex features.
            edges: ``(E, 2)`` integer edges into ``x`` (e.g. ``Meshes.edges_packed()``)
                or a :class:`~geomgen.ops.GraphAdjacency` of ``V`` vertices.

        Returns:
            ``(V, C_out)``.

        Raises:
            InvalidInputError: ``x`` not ``(V, C_in)`` floating, bad ``edges``.
        """
        fn = "GraphConvBlock.forward"
        V.check_tensor(x, "x", ndim=2, shape_desc=f"(V, C_in={self.in_dim})", floating=True, fn=fn)
        if x.shape[1] != self.in_dim:
            raise V.fail("x", f"must have C_in={self.in_dim} channels, got shape {tuple(x.shape)}", fn)
        y = self.norm(self.gconv(x, edges))
        if self.skip is not None:
            y = y + self.skip(x)
        return self.act(y)

    def reset_special_parameters(self) -> None:
        """Re-initialise the graph convolution with its ``init`` and the projection (Kaiming)."""
        self.gconv.reset_parameters(self.init)
        if isinstance(self.skip, nn.Linear):
            nonlin, slope = activation_gain_name(self.act_name)
            kaiming_init_(self.skip, nonlinearity=nonlin, a=slope)
