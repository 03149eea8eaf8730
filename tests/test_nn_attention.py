"""Tests of geomgen.nn.attention: MultiHeadAttention, TransformerBlock, padding masks."""

from __future__ import annotations

import pytest
import torch

from geomgen.errors import InvalidInputError
from geomgen.nn.attention import MultiHeadAttention, TransformerBlock, lengths_to_padding_mask


def nparams(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def torch_mha_like(attn: MultiHeadAttention) -> torch.nn.MultiheadAttention:
    ref = torch.nn.MultiheadAttention(attn.dim, attn.num_heads, batch_first=True)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([attn.q_proj.weight, attn.kv_proj.weight]))
        ref.in_proj_bias.copy_(torch.cat([attn.q_proj.bias, attn.kv_proj.bias]))
        ref.out_proj.weight.copy_(attn.out_proj.weight)
        ref.out_proj.bias.copy_(attn.out_proj.bias)
    return ref.eval()


def randomise(m: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.3)
    return m


def test_shapes_and_parameter_counts():
    assert nparams(MultiHeadAttention(128, 4)) == 66_048  # reported in the docstrings
    assert nparams(TransformerBlock(128)) == 198_272
    x = torch.randn(2, 7, 16)
    assert MultiHeadAttention(16, 4)(x).shape == (2, 7, 16)
    cross = MultiHeadAttention(16, 2, kv_dim=6)
    assert cross(x, torch.randn(2, 3, 6)).shape == (2, 7, 16)
    blk = TransformerBlock(16, 2, context_dim=6, mlp_ratio=2.0)
    assert blk(x, torch.randn(2, 3, 6)).shape == (2, 7, 16)
    assert TransformerBlock(16, 1)(torch.randn(1, 1, 16)).shape == (1, 1, 16)


def test_matches_torch_multihead_attention():
    attn = randomise(MultiHeadAttention(16, 4))
    ref = torch_mha_like(attn)
    x = torch.randn(3, 6, 16)
    pad = lengths_to_padding_mask(torch.tensor([6, 2, 4]), 6)
    expect, _ = ref(x, x, x, need_weights=False)
    assert torch.allclose(attn(x), expect, atol=1e-5)
    expect, _ = ref(x, x, x, key_padding_mask=pad, need_weights=False)
    got = attn(x, key_padding_mask=pad)
    assert torch.allclose(got[~pad], expect[~pad], atol=1e-5)
    assert torch.all(got[pad] == 0)  # padded positions are zero
    causal = torch.ones(6, 6, dtype=torch.bool).triu(1)
    expect, _ = ref(x, x, x, attn_mask=causal, need_weights=False)
    assert torch.allclose(attn(x, is_causal=True), expect, atol=1e-5)
    assert torch.allclose(attn(x, attn_mask=causal), expect, atol=1e-5)
    additive = torch.zeros(6, 6).masked_fill(causal, float("-inf"))
    assert torch.allclose(attn(x, attn_mask=additive), expect, atol=1e-5)
    bias = torch.randn(3, 6, 6)
    pad_f = torch.zeros(3, 6).masked_fill(pad, float("-inf"))  # torch wants one mask type
    expect, _ = ref(x, x, x, attn_mask=bias.repeat_interleave(4, 0), key_padding_mask=pad_f, need_weights=False)
    assert torch.allclose(attn(x, attn_mask=bias, key_padding_mask=pad)[~pad], expect[~pad], atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_padded_keys_do_not_change_valid_outputs(causal):
    blk = randomise(TransformerBlock(16, 4)).train()  # dropout 0: deterministic in training mode too
    x = torch.randn(3, 8, 16)
    lengths = torch.tensor([8, 3, 5])
    pad = lengths_to_padding_mask(lengths, 8)
    out = blk(x, key_padding_mask=pad, is_causal=causal)
    x2 = x.clone()
    x2[pad] = 100 * torch.randn(int(pad.sum()), 16)
    out2 = blk(x2, key_padding_mask=pad, is_causal=causal)
    assert torch.allclose(out[~pad], out2[~pad], atol=1e-4)
    for i, n in enumerate(lengths.tolist()):  # same as each sequence alone, unpadded
        alone = blk(x[i : i + 1, :n], is_causal=causal)[0]
        assert torch.allclose(out[i, :n], alone, atol=1e-4)


def test_padded_context_in_cross_attention():
    blk = randomise(TransformerBlock(8, 2, context_dim=4))
    x, ctx = torch.randn(2, 5, 8), torch.randn(2, 6, 4)
    cpad = lengths_to_padding_mask([6, 2], 6)
    out = blk(x, ctx, context_padding_mask=cpad)
    ctx2 = ctx.clone()
    ctx2[cpad] = 50.0
    assert torch.allclose(out, blk(x, ctx2, context_padding_mask=cpad), atol=1e-5)


def test_fully_padded_rows_are_zero_and_finite():
    attn = randomise(MultiHeadAttention(8, 2))
    x = torch.randn(2, 4, 8, requires_grad=True)
    pad = torch.tensor([[True] * 4, [False, False, True, True]])
    y = attn(x, key_padding_mask=pad)
    assert torch.isfinite(y).all() and torch.all(y[0] == 0)
    y.sum().backward()
    assert torch.isfinite(x.grad).all()
    cross = MultiHeadAttention(8, 2, kv_dim=3)
    y = cross(torch.randn(2, 4, 8), torch.randn(2, 5, 3), key_padding_mask=torch.tensor([[True] * 5, [False] * 5]))
    assert torch.all(y[0] == 0) and torch.isfinite(y).all() and y[1].abs().sum() > 0
    blk = TransformerBlock(8, 2)
    assert torch.isfinite(blk(torch.randn(2, 4, 8), key_padding_mask=pad)).all()


def test_causality_by_gradients():
    blk = randomise(TransformerBlock(8, 2))
    x = torch.randn(1, 6, 8, requires_grad=True)
    y = blk(x, is_causal=True)
    for i in range(6):
        (g,) = torch.autograd.grad(y[0, i].sum(), x, retain_graph=True)
        assert g[0, i + 1 :].abs().sum() == 0
        assert g[0, : i + 1].abs().sum(dim=-1).min() > 0


def test_gradients_flow_and_dropout_modes():
    blk = TransformerBlock(16, 4, context_dim=8, dropout=0.3, attn_dropout=0.3)
    x, ctx = torch.randn(2, 5, 16, requires_grad=True), torch.randn(2, 3, 8)
    blk(x, ctx).sum().backward()
    missing = [n for n, p in blk.named_parameters() if p.grad is None]
    assert not missing and x.grad is not None
    assert not torch.allclose(blk(x, ctx), blk(x, ctx))
    blk.eval()
    assert torch.equal(blk(x, ctx), blk(x, ctx))


def test_xavier_init():
    attn = MultiHeadAttention(256, 4)
    bound = (6 / 512) ** 0.5
    for w in (attn.q_proj.weight, attn.kv_proj.weight[:256], attn.kv_proj.weight[256:], attn.out_proj.weight):
        assert w.abs().max() <= bound and w.std().item() == pytest.approx((2 / 512) ** 0.5, rel=0.05)
    assert torch.count_nonzero(attn.q_proj.bias) == 0


def test_lengths_to_padding_mask():
    m = lengths_to_padding_mask(torch.tensor([2, 0, 3]), 3)
    assert m.tolist() == [[False, False, True], [True, True, True], [False, False, False]]
    with pytest.raises(InvalidInputError, match="'lengths'"):
        lengths_to_padding_mask([4], 3)


def test_bad_arguments():
    with pytest.raises(InvalidInputError, match="'num_heads'"):
        MultiHeadAttention(10, 4)
    with pytest.raises(InvalidInputError, match="'attn_dropout'"):
        MultiHeadAttention(8, 2, attn_dropout=1.5)
    attn = MultiHeadAttention(8, 2)
    with pytest.raises(InvalidInputError, match="'x'.*3-D"):
        attn(torch.randn(4, 8))
    with pytest.raises(InvalidInputError, match="'x'.*C=8"):
        attn(torch.randn(1, 4, 6))
    with pytest.raises(InvalidInputError, match="'key_padding_mask'.*torch.bool"):
        attn(torch.randn(1, 4, 8), key_padding_mask=torch.zeros(1, 4))
    with pytest.raises(InvalidInputError, match="'key_padding_mask'"):
        attn(torch.randn(1, 4, 8), key_padding_mask=torch.zeros(1, 5, dtype=torch.bool))
    with pytest.raises(InvalidInputError, match="'attn_mask'"):
        attn(torch.randn(1, 4, 8), attn_mask=torch.zeros(4, 3, dtype=torch.bool))
    with pytest.raises(InvalidInputError, match="'is_causal'"):
        attn(torch.randn(1, 4, 8), torch.randn(1, 3, 8), is_causal=True)
    with pytest.raises(InvalidInputError, match="'context'"):
        MultiHeadAttention(8, 2, kv_dim=4)(torch.randn(1, 4, 8))
    with pytest.raises(InvalidInputError, match="'context'"):
        attn(torch.randn(2, 4, 8), torch.randn(1, 3, 8))
    with pytest.raises(InvalidInputError, match="'context'"):
        TransformerBlock(8, 2, context_dim=4)(torch.randn(1, 4, 8))
    with pytest.raises(InvalidInputError, match="'context'"):
        TransformerBlock(8, 2)(torch.randn(1, 4, 8), torch.randn(1, 2, 8))
    with pytest.raises(InvalidInputError, match="'act'"):
        TransformerBlock(8, 2, act="swish")
