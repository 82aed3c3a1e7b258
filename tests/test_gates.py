"""The APT gates against independent computations (APT-SPEC section 2), from the HF model's own hidden states."""

from __future__ import annotations

import math

import pytest
import torch

from adaprefix import PrefixConfig, attach
from adaprefix.attention import gated_prefix_attention
from conftest import padded_batch, randomize_adapter, tiny_encoder


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    if pooling == "cls":
        return hidden[:, 0]
    m = mask.float().unsqueeze(-1)
    return (hidden * m).sum(1) / m.sum(1)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("layer", [0, 1, 2])
def test_token_gate_is_sigmoid_of_the_previous_layers_pooled_output(pooling, layer):
    """alpha_i = sigmoid(W_i pool(h_{i-1}) + b_i) with h_{i-1} taken from HF's output_hidden_states.

    Only layer ``layer`` has a prefix, so every earlier layer's output equals the plain HF forward's."""
    lengths = [0, 0, 0]
    lengths[layer] = 4
    encoder = tiny_encoder()
    ids, mask, types = padded_batch(lengths=(9, 6, 3))
    with torch.no_grad():
        hf = encoder(input_ids=ids, attention_mask=mask, token_type_ids=types, output_hidden_states=True)
    adapted = attach(encoder, PrefixConfig(method="apt", prefix_len=lengths, gate_pooling=pooling)).eval()
    randomize_adapter(adapted)
    with torch.no_grad():
        adapted(ids, mask, types)
    gate = adapted.prefix.layers[layer].token_gate
    summary = pool(hf.hidden_states[layer], mask, pooling)  # h_{i-1}: hidden_states[0] is the embedding output
    expected = torch.sigmoid(summary @ gate.weight.T + gate.bias)
    got = adapted.last_gates[layer].token
    assert (got - expected).abs().max() < 1e-5
    # the check has teeth: the wrong layer's input, or a mean over padding, gives other values
    wrong_layer = torch.sigmoid(pool(hf.hidden_states[layer + 1], mask, pooling) @ gate.weight.T + gate.bias)
    assert (got - wrong_layer).abs().max() > 1e-3
    if pooling == "mean":
        unmasked = torch.sigmoid(hf.hidden_states[layer].mean(1) @ gate.weight.T + gate.bias)
        assert (got[1:] - unmasked[1:]).abs().max() > 1e-3  # rows 1 and 2 are padded
    assert float(adapted.last_gates[layer].layer) == pytest.approx(float(adapted.prefix.layers[layer].layer_gate.detach()))


def test_layer_output_uses_the_gate_scaled_prefix():
    """The layer's attention sees lambda * alpha * P: feeding that scaled table as an ungated prefix (P-tuning v2
    arithmetic) reproduces APT's hidden states, and the unscaled table does not."""
    ids, mask, types = padded_batch()
    apt = attach(tiny_encoder(), PrefixConfig(method="apt", prefix_len=[3, 0, 0])).eval()
    randomize_adapter(apt)
    with torch.no_grad():
        out = apt(ids, mask, types).last_hidden_state
        g = apt.last_gates[0]
        scale = (g.layer * g.token).unsqueeze(-1)
        table = apt.prefix.layers[0]
        per_row = (scale * table.key, scale * table.value)
        ref = []
        for row in range(3):
            pt2 = attach(tiny_encoder(), PrefixConfig(method="prefix", prefix_len=[3, 0, 0])).eval()
            pt2.prefix.layers[0].key.copy_(per_row[0][row])
            pt2.prefix.layers[0].value.copy_(per_row[1][row])
            ref.append(pt2(ids[row:row + 1], mask[row:row + 1], types[row:row + 1]).last_hidden_state)
        ungated = attach(tiny_encoder(), PrefixConfig(method="prefix", prefix_len=[3, 0, 0])).eval()
        ungated.prefix.layers[0].key.copy_(table.key)
        ungated.prefix.layers[0].value.copy_(table.value)
        plain = ungated(ids, mask, types).last_hidden_state
    m = mask[..., None]
    assert ((out - torch.cat(ref)) * m).abs().max() < 1e-5
    assert ((out - plain) * m).abs().max() > 1e-3


def test_zero_gate_gives_zero_keys_and_values_exactly():
    """With gate 0 the prefix keys score 0 and add nothing to the values: the output is
    sum_j e^{s_j} v_j / (l + sum_j e^{s_j}), written out here; ignoring the gate would not give it."""
    torch.manual_seed(1)
    heads, d, n, length = 2, 8, 4, 3
    q, k, v = (torch.randn(2, n, d) for _ in range(3))
    pk, pv = torch.randn(length, d) * 3, torch.randn(length, d) * 3
    out = gated_prefix_attention(q, k, v, heads, (pk, pv), torch.zeros(2, length))
    dh = d // heads
    qs, ks, vs = (x.view(2, n, heads, dh).transpose(1, 2) for x in (q, k, v))
    weights = torch.exp(qs @ ks.transpose(-1, -2) / math.sqrt(dh))  # B H n n
    expected = (weights @ vs) / (length + weights.sum(-1, keepdim=True))
    expected = expected.transpose(1, 2).reshape(2, n, d)
    assert (out - expected).abs().max() < 1e-5
    ignored = gated_prefix_attention(q, k, v, heads, (pk, pv), None)
    assert (ignored - expected).abs().max() > 1e-2
