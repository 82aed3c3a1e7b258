"""The gated prefix attention against a plain softmax written out from APT-SPEC sections 1-2."""

import math

import torch

from adaprefix.attention import gated_prefix_attention


def reference_attention(q, k, v, heads, pk, pv, gate, key_mask):
    b, n, d = q.shape
    dh = d // heads
    kp = gate[..., None] * pk  # (B, l, d)
    vp = gate[..., None] * pv
    keys = torch.cat([kp, k], 1).view(b, -1, heads, dh).permute(0, 2, 3, 1)  # B H dh (l+n)
    vals = torch.cat([vp, v], 1).view(b, -1, heads, dh).transpose(1, 2)
    qs = q.view(b, n, heads, dh).transpose(1, 2)
    scores = qs @ keys / math.sqrt(dh)
    full_mask = torch.cat([torch.ones(b, pk.shape[0], dtype=torch.bool), key_mask], 1)
    scores = scores.masked_fill(~full_mask[:, None, None, :], float("-inf"))
    return (scores.softmax(-1) @ vals).transpose(1, 2).reshape(b, n, d)


def test_matches_written_out_softmax_with_gates_and_padding():
    torch.manual_seed(0)
    b, n, d, heads, length = 3, 7, 16, 4, 5
    q, k, v = (torch.randn(b, n, d) for _ in range(3))
    pk, pv = torch.randn(length, d), torch.randn(length, d)
    gate = torch.rand(b, length) * 2
    key_mask = torch.ones(b, n, dtype=torch.bool)
    key_mask[1, 4:] = False
    key_mask[2, 2:] = False
    out = gated_prefix_attention(q, k, v, heads, (pk, pv), gate, key_mask)
    ref = reference_attention(q, k, v, heads, pk, pv, gate, key_mask)
    assert (out - ref).abs().max() < 1e-5


def test_gate_scales_prefix_contribution():
    """A zero gate removes the prefix entirely: its keys score 0, and its values add nothing."""
    torch.manual_seed(1)
    q, k, v = (torch.randn(2, 4, 8) for _ in range(3))
    pk, pv = torch.randn(3, 8), torch.randn(3, 8)
    with_prefix = gated_prefix_attention(q, k, v, 2, (pk, pv), torch.ones(2, 3))
    zero_gate = gated_prefix_attention(q, k, v, 2, (pk, pv), torch.zeros(2, 3))
    no_prefix = gated_prefix_attention(q, k, v, 2, None)
    assert (with_prefix - no_prefix).abs().max() > 1e-2
    # zero keys still take softmax mass (exp(0)) but zero values contribute nothing; so not equal to no prefix,
    # yet the output must shrink towards zero relative to no prefix
    assert zero_gate.norm() < no_prefix.norm()
