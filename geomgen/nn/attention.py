"""Multi-head attention and a pre-norm transformer block with key padding masks.

Shape letters: ``N`` batch, ``L`` query tokens, ``S`` key/value tokens,
``C`` model width, ``C_kv`` width of a cross-attention context.

::

    blk = TransformerBlock(128, num_heads=4)        # 198,272 parameters
    y = blk(x, key_padding_mask=pad)                # x (N, L, 128), pad (N, L) bool, True = padding
    attn = MultiHeadAttention(128, 4, kv_dim=64)
    y = attn(x, context, key_padding_mask=ctx_pad)  # x (N, L, 128), context (N, S, 64)

Mask conventions are :class:`torch.nn.MultiheadAttention`'s:
``key_padding_mask`` is ``True`` at padded keys (ignored); a boolean
``attn_mask`` is ``True`` where attention is **not** allowed (a floating one
is added to the logits).  Internally the masks are merged into the boolean
"may attend" mask of :func:`torch.nn.functional.scaled_dot_product_attention`.
A query left with no key to attend to (every key padded) gets zeros instead
of NaN, and in self-attention the outputs at padded positions are zero, so
padded tokens never change the outputs at valid ones (and stay finite).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from geomgen import checks as V
from geomgen.nn.init import xavier_init_
from geomgen.nn.mlp import MLP

__all__ = ["MultiHeadAttention", "TransformerBlock", "lengths_to_padding_mask"]


def lengths_to_padding_mask(lengths: Any, max_len: int) -> torch.Tensor:
    """``(N,)`` lengths -> ``(N, max_len)`` bool mask, ``True`` at positions ``>= lengths[n]`` (padding).

    Raises:
        InvalidInputError: lengths not integers in ``[0, max_len]``.
    """
    max_len = V.check_int(max_len, "max_len", min_value=0, fn="lengths_to_padding_mask")
    n = len(lengths) if not isinstance(lengths, torch.Tensor) or lengths.dim() == 1 else -1
    if n < 0:
        raise V.fail("lengths", f"must be a 1-D integer tensor, got shape {tuple(lengths.shape)}", "lengths_to_padding_mask")
    lengths = V.check_lengths(lengths, "lengths", batch_size=n, max_len=max_len, fn="lengths_to_padding_mask")
    return torch.arange(max_len, device=lengths.device)[None, :] >= lengths[:, None]


class MultiHeadAttention(nn.Module):
    """Multi-head (self or cross) attention on ``scaled_dot_product_attention``.

    Args:
        dim: ``C``, the query and output width; must divide by ``num_heads``.
        num_heads: ``H``; head width ``C / H``.
        kv_dim: ``C_kv`` of the context for cross-attention (default ``C``).
        qkv_bias: biases of the query/key/value projections.
        attn_dropout: dropout on the attention weights (training mode only).
        proj_dropout: dropout after the output projection (training mode only).

    Projections are Xavier-uniform with zero biases (kept by :func:`~geomgen.nn.init.init_weights`).
    ``MultiHeadAttention(128, 4)`` has 66,048 parameters.

    Shapes: ``forward(x (N, L, C), context (N, S, C_kv) = None) -> (N, L, C)``;
    self-attention (``S = L``) when ``context`` is None.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 4,
        *,
        kv_dim: int | None = None,
        qkv_bias: bool = True,
        attn_dropout: float = 0.0,
        proj_dropout: float = 0.0,
    ) -> None:
        fn = "MultiHeadAttention"
        dim = V.check_int(dim, "dim", min_value=1, fn=fn)
        num_heads = V.check_int(num_heads, "num_heads", min_value=1, fn=fn)
        if dim % num_heads:
            raise V.fail("num_heads", f"must divide dim={dim}, got {num_heads}", fn)
        kv_dim = dim if kv_dim is None else V.check_int(kv_dim, "kv_dim", min_value=1, fn=fn)
        V.check_bool(qkv_bias, "qkv_bias", fn=fn)
        for name, p in (("attn_dropout", attn_dropout), ("proj_dropout", proj_dropout)):
            p = V.check_float(p, name, nonnegative=True, fn=fn)
            if p >= 1:
                raise V.fail(name, f"must be < 1, got {p}", fn)
        super().__init__()
        self.dim, self.num_heads, self.kv_dim = dim, num_heads, kv_dim
        self.head_dim = dim // num_heads
        self.attn_dropout = float(attn_dropout)
        self.q_proj = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv_proj = nn.Linear(kv_dim, 2 * dim, bias=qkv_bias)
        self.out_proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_dropout) if proj_dropout > 0 else nn.Identity()
        self.reset_special_parameters()

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, kv_dim={self.kv_dim}"

    def reset_special_parameters(self) -> None:
        """Xavier-uniform projections (keys and values separately), zero biases."""
        xavier_init_(self.q_proj)
        with torch.no_grad():
            k_w, v_w = self.kv_proj.weight.chunk(2, dim=0)
            nn.init.xavier_uniform_(k_w)
            nn.init.xavier_uniform_(v_w)
            if self.kv_proj.bias is not None:
                self.kv_proj.bias.zero_()
        xavier_init_(self.out_proj)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        key_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """Attend from ``x`` to ``context`` (or to ``x`` itself).

        Args:
            x: ``(N, L, C)`` queries.
            context: ``(N, S, C_kv)`` keys/values; ``None``: ``x`` (self-attention).
            key_padding_mask: ``(N, S)`` bool, ``True`` at padded keys.
            attn_mask: ``(L, S)`` or ``(N, L, S)``; bool ``True`` = not allowed,
                or floating, added to the logits.
            is_causal: query ``i`` only sees keys ``j <= i`` (needs ``L == S``).

        Returns:
            ``(N, L, C)``; zero rows for queries without any allowed key, and
            (self-attention) at padded positions.

        Raises:
            InvalidInputError: wrong ranks, widths, batch sizes or mask shapes.
        """
        fn = "MultiHeadAttention.forward"
        V.check_tensor(x, "x", ndim=3, shape_desc=f"(N, L, {self.dim})", floating=True, fn=fn)
        if x.shape[-1] != self.dim:
            raise V.fail("x", f"must have C={self.dim} channels, got shape {tuple(x.shape)}", fn)
        self_attn = context is None
        if self_attn:
            if self.kv_dim != self.dim:
                raise V.fail("context", f"must be given: the layer was built with kv_dim={self.kv_dim}", fn)
            context = x
        else:
            V.check_tensor(context, "context", ndim=3, shape_desc=f"(N, S, {self.kv_dim})", floating=True, fn=fn)
            if context.shape[0] != x.shape[0] or context.shape[-1] != self.kv_dim:
                raise V.fail(
                    "context", f"must have shape (N={x.shape[0]}, S, {self.kv_dim}), got {tuple(context.shape)}", fn
                )
        V.check_bool(is_causal, "is_causal", fn=fn)
        n, lq, _ = x.shape
        s = context.shape[1]
        if is_causal and lq != s:
            raise V.fail("is_causal", f"needs as many queries as keys, got L={lq}, S={s}", fn)
        allowed = self._allowed(n, lq, s, key_padding_mask, attn_mask, is_causal, x, fn)

        h, dh = self.num_heads, self.head_dim
        q = self.q_proj(x).view(n, lq, h, dh).transpose(1, 2)
        k, v = self.kv_proj(context).view(n, s, 2, h, dh).permute(2, 0, 3, 1, 4)
        drop = self.attn_dropout if self.training else 0.0
        if allowed is None:
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=is_causal)
            empty = None
        else:
            finite = allowed if allowed.dtype == torch.bool else allowed > float("-inf")
            empty = ~finite.any(dim=-1, keepdim=True)  # (N or 1, 1, L, 1): queries with no key
            if bool(empty.any()):
                mask = (allowed | empty) if allowed.dtype == torch.bool else allowed.masked_fill(empty, 0.0)
            else:
                mask, empty = allowed, None
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)
        out = out.transpose(1, 2).reshape(n, lq, self.dim)
        out = self.proj_drop(self.out_proj(out))
        zero = None
        if empty is not None:
            zero = empty[:, 0, :, 0]  # (N or 1, L or 1)
        if self_attn and key_padding_mask is not None:
            zero = key_padding_mask if zero is None else (zero | key_padding_mask)
        if zero is not None:
            out = out.masked_fill(zero.unsqueeze(-1), 0.0)
        return out

    def _allowed(
        self,
        n: int,
        lq: int,
        s: int,
        key_padding_mask: torch.Tensor | None,
        attn_mask: torch.Tensor | None,
        is_causal: bool,
        x: torch.Tensor,
        fn: str,
    ) -> torch.Tensor | None:
        """SDPA mask ``(N or 1, 1, L, S)``: bool "may attend", or floating additive; None if no mask."""
        if key_padding_mask is None and attn_mask is None:
            return None  # is_causal is passed to SDPA directly
        allowed: torch.Tensor | None = None
        bias: torch.Tensor | None = None
        if key_padding_mask is not None:
            V.check_tensor(key_padding_mask, "key_padding_mask", shape=(n, s), shape_desc=f"(N={n}, S={s})", dtype=torch.bool, fn=fn)
            allowed = (~key_padding_mask)[:, None, None, :]
        if attn_mask is not None:
            V.check_tensor(attn_mask, "attn_mask", ndim=(2, 3), shape_desc=f"(L={lq}, S={s}) or (N, L, S)", fn=fn)
            want = (lq, s) if attn_mask.dim() == 2 else (n, lq, s)
            if tuple(attn_mask.shape) != want:
                raise V.fail("attn_mask", f"must have shape {want}, got {tuple(attn_mask.shape)}", fn)
            m = attn_mask if attn_mask.dim() == 3 else attn_mask.unsqueeze(0)
            if m.dtype == torch.bool:
                a = (~m)[:, None]
                allowed = a if allowed is None else (allowed & a)
            elif m.is_floating_point():
                bias = m[:, None].to(x.dtype)
            else:
                raise V.fail("attn_mask", f"must be bool or floating, got {attn_mask.dtype}", fn)
        if is_causal:
            causal = torch.ones(lq, s, dtype=torch.bool, device=x.device).tril()[None, None]
            allowed = causal if allowed is None else (allowed & causal)
        if bias is None:
            return allowed
        if allowed is None:
            return bias
        return bias.masked_fill(~allowed, float("-inf"))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))``, (``x + cross(LN(x), context)``), ``x + MLP(LN(x))``.

    Args:
        dim: ``C``.
        num_heads: attention heads (must divide ``C``).
        mlp_ratio: hidden width of the MLP as a multiple of ``C``.
        context_dim: if given, a cross-attention layer to a ``(N, S, context_dim)``
            context follows the self-attention.
        act: MLP activation (default ``"gelu"``).
        dropout: dropout after the attention projections and in the MLP.
        attn_dropout: dropout on the attention weights.
        eps: LayerNorm epsilon.

    ``TransformerBlock(128)`` (4 heads, ratio 4) has 198,272 parameters.

    Shapes: ``forward(x (N, L, C), context (N, S, C_kv) = None) -> (N, L, C)``.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 4,
        mlp_ratio: float = 4.0,
        *,
        context_dim: int | None = None,
        act: str = "gelu",
        dropout: float = 0.0,
        attn_dropout: float = 0.0,
        eps: float = 1e-5,
    ) -> None:
        fn = "TransformerBlock"
        dim = V.check_int(dim, "dim", min_value=1, fn=fn)
        mlp_ratio = V.check_float(mlp_ratio, "mlp_ratio", positive=True, fn=fn)
        super().__init__()
        self.dim = dim
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = MultiHeadAttention(dim, num_heads, attn_dropout=attn_dropout, proj_dropout=dropout)
        self.cross: MultiHeadAttention | None = None
        self.norm_cross: nn.Module | None = None
        if context_dim is not None:
            self.norm_cross = nn.LayerNorm(dim, eps=eps)
            self.cross = MultiHeadAttention(
                dim, num_heads, kv_dim=context_dim, attn_dropout=attn_dropout, proj_dropout=dropout
            )
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        hidden = max(1, int(round(dim * mlp_ratio)))
        self.mlp = MLP(dim, dim, (hidden,), act=act, dropout=dropout, init="xavier")
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        *,
        key_padding_mask: torch.Tensor | None = None,
        context_padding_mask: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
    ) -> torch.Tensor:
        """Apply the block.

        Args:
            x: ``(N, L, C)`` tokens.
            context: ``(N, S, C_kv)``; required iff built with ``context_dim``.
            key_padding_mask: ``(N, L)`` bool, ``True`` at padded tokens of ``x``.
            context_padding_mask: ``(N, S)`` bool, ``True`` at padded context tokens.
            attn_mask: self-attention mask (see :meth:`MultiHeadAttention.forward`).
            is_causal: causal self-attention.

        Returns:
            ``(N, L, C)``; tokens at padded positions are not meaningful (but finite).

        Raises:
            InvalidInputError: wrong shapes, missing or unexpected ``context``.
        """
        fn = "TransformerBlock.forward"
        V.check_tensor(x, "x", ndim=3, shape_desc=f"(N, L, {self.dim})", floating=True, fn=fn)
        x = x + self.attn(self.norm1(x), key_padding_mask=key_padding_mask, attn_mask=attn_mask, is_causal=is_causal)
        if self.cross is not None:
            if context is None:
                raise V.fail("context", "must be given: the block was built with context_dim", fn)
            x = x + self.cross(self.norm_cross(x), context, key_padding_mask=context_padding_mask)
        elif context is not None:
            raise V.fail("context", "must be None: the block was built without context_dim", fn)
        return x + self.drop(self.mlp(self.norm2(x)))
