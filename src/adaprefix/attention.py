"""Gated prefix attention (pure torch): APT-SPEC sections 1 and 2.

    Attn(h W_q, [K_p ; h W_k], [V_p ; h W_v]),   K_p = scale[..., None] * P_k,   V_p = scale[..., None] * P_v

where ``scale`` = lambda * a (B x l) is the layer's gate (APT) or None (P-tuning v2). Queries come only from real
tokens; every real token may attend to every prefix slot; padding masks real keys only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gated_prefix_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    num_heads: int,
    prefix: tuple[torch.Tensor, torch.Tensor] | None = None,
    gate: torch.Tensor | None = None,
    key_mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> torch.Tensor:
    """Multi-head attention over [prefix ; real] keys and values.

    query, key, value: (B x n x d), already projected by the frozen encoder's own weights.
    prefix: (P_k, P_v), each (l x d), or None for no prefix in this layer.
    gate: (B x l) per-example scale of each prefix slot, shared across heads; None means 1.
    key_mask: (B x n) bool, True for real tokens; None when nothing is padded (lets SDPA use its fastest path).
    Returns the attention context (B x n x d).

    >>> q = k = v = torch.randn(2, 5, 8)
    >>> gated_prefix_attention(q, k, v, num_heads=2, prefix=(torch.randn(3, 8), torch.randn(3, 8))).shape
    torch.Size([2, 5, 8])
    """
    batch, n, d = query.shape
    head_dim = d // num_heads
    if prefix is not None:
        prefix_key, prefix_value = prefix
        length = prefix_key.shape[0]
        prefix_key = prefix_key.unsqueeze(0).expand(batch, -1, -1)
        prefix_value = prefix_value.unsqueeze(0).expand(batch, -1, -1)
        if gate is not None:
            scale = gate.to(prefix_key.dtype).unsqueeze(-1)
            prefix_key, prefix_value = prefix_key * scale, prefix_value * scale
        key = torch.cat([prefix_key.to(key.dtype), key], dim=1)
        value = torch.cat([prefix_value.to(value.dtype), value], dim=1)
        if key_mask is not None:
            key_mask = torch.cat([key_mask.new_ones(batch, length), key_mask], dim=1)

    def split_heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, -1, num_heads, head_dim).transpose(1, 2)

    attn_mask = None if key_mask is None else key_mask[:, None, None, :]
    context = F.scaled_dot_product_attention(
        split_heads(query), split_heads(key), split_heads(value), attn_mask=attn_mask, dropout_p=dropout_p
    )
    return context.transpose(1, 2).reshape(batch, n, d)
