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


def test_per_row_prefixes_and_prefix_mask_match_the_written_out_softmax():
    """Rows with their own prefixes, padded to one length and masked per row (mixed-adapter batches)."""
    torch.manual_seed(2)
    b, n, d, heads, length = 3, 5, 8, 2, 4
    q, k, v = (torch.randn(b, n, d) for _ in range(3))
    pk, pv = torch.randn(b, length, d), torch.randn(b, length, d)
    used = torch.tensor([4, 2, 0])
    prefix_mask = torch.arange(length)[None] < used[:, None]
    out = gated_prefix_attention(q, k, v, heads, (pk, pv), None, None, prefix_mask=prefix_mask)
    for row in range(b):
        l = int(used[row])
        ref = reference_attention(q[row:row + 1], k[row:row + 1], v[row:row + 1], heads, pk[row, :l], pv[row, :l],
                                  torch.ones(1, l), torch.ones(1, n, dtype=torch.bool))
        assert (out[row] - ref[0]).abs().max() < 1e-5


def test_score_bias_applies_to_real_keys_only():
    torch.manual_seed(3)
    b, n, d, heads, length = 2, 4, 8, 2, 3
    q, k, v = (torch.randn(b, n, d) for _ in range(3))
    pk, pv = torch.randn(length, d), torch.randn(length, d)
    bias = torch.randn(1, heads, n, n)
    key_mask = torch.tensor([[True] * 4, [True, True, False, False]])
    out = gated_prefix_attention(q, k, v, heads, (pk, pv), None, key_mask, score_bias=bias)
    dh = d // heads
    keys = torch.cat([pk.expand(b, -1, -1), k], 1).view(b, -1, heads, dh).transpose(1, 2)
    vals = torch.cat([pv.expand(b, -1, -1), v], 1).view(b, -1, heads, dh).transpose(1, 2)
    scores = q.view(b, n, heads, dh).transpose(1, 2) @ keys.transpose(-1, -2) / math.sqrt(dh)
    scores = scores + torch.cat([torch.zeros(1, heads, n, length), bias], -1)
    full = torch.cat([torch.ones(b, length, dtype=torch.bool), key_mask], 1)
    scores = scores.masked_fill(~full[:, None, None], float("-inf"))
    ref = (scores.softmax(-1) @ vals).transpose(1, 2).reshape(b, n, d)
    assert (out - ref).abs().max() < 1e-5
