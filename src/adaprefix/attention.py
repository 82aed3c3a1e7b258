"""Gated prefix attention (pure torch): APT-SPEC sections 1 and 2.

    Attn(h W_q, [K_p ; h W_k], [V_p ; h W_v]),   K_p = scale[..., None] * P_k,   V_p = scale[..., None] * P_v

where ``scale`` = lambda * a (B x l) is the layer's gate (APT) or None (P-tuning v2). Queries come only from real
tokens; every real token may attend to every prefix slot; padding masks real keys only.

Two extensions serve other parts of the package without changing that arithmetic:

* per-row prefixes (B x l x d) with a ``prefix_mask`` (B x l): rows of one batch may carry different adapters,
  padded to the longest prefix (mixed-adapter serving);
* ``score_bias`` (B or 1 x H x n x n): an additive term on the real-key scores only, for families with relative
  position bias (MPNet, DeBERTa); prefix columns take plain content scores.
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
    prefix_mask: torch.Tensor | None = None,
    score_bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """Multi-head attention over [prefix ; real] keys and values.

    query, key, value: (B x n x d), already projected by the frozen encoder's own weights.
    prefix: (P_k, P_v), each (l x d) shared by every row or (B x l x d) per row; None for no prefix here.
    gate: (B x l) per-example scale of each prefix slot, shared across heads; None means 1.
    key_mask: (B x n) bool, True for real tokens; None when nothing is padded (lets SDPA use its fastest path).
    prefix_mask: (B x l) bool, True for the prefix slots a row uses; None means all.
    score_bias: added to the scores of real keys (broadcastable to B x H x n x n); None for none.
    Returns the attention context (B x n x d).

    >>> q = k = v = torch.randn(2, 5, 8)
    >>> gated_prefix_attention(q, k, v, num_heads=2, prefix=(torch.randn(3, 8), torch.randn(3, 8))).shape
    torch.Size([2, 5, 8])
    """
    batch, n, d = query.shape
    head_dim = d // num_heads
    if prefix is not None:
        prefix_key, prefix_value = prefix
        if prefix_key.dim() == 2:
            prefix_key = prefix_key.unsqueeze(0).expand(batch, -1, -1)
            prefix_value = prefix_value.unsqueeze(0).expand(batch, -1, -1)
        length = prefix_key.shape[1]
        if gate is not None:
            scale = gate.to(prefix_key.dtype).unsqueeze(-1)
            prefix_key, prefix_value = prefix_key * scale, prefix_value * scale
        key = torch.cat([prefix_key.to(key.dtype), key], dim=1)
        value = torch.cat([prefix_value.to(value.dtype), value], dim=1)
        if key_mask is not None or prefix_mask is not None:
            real = key_mask if key_mask is not None else key.new_ones(batch, n, dtype=torch.bool)
            slots = prefix_mask if prefix_mask is not None else real.new_ones(batch, length)
            key_mask = torch.cat([slots.bool(), real.bool()], dim=1)
        if score_bias is not None:
            score_bias = F.pad(score_bias, (length, 0))  # zero bias on prefix columns

    def split_heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, -1, num_heads, head_dim).transpose(1, 2)

    attn_mask = None if key_mask is None else key_mask[:, None, None, :]
    if score_bias is not None:
        bias = score_bias.to(query.dtype)
        attn_mask = bias if attn_mask is None else torch.where(attn_mask, bias, float("-inf"))
    context = F.scaled_dot_product_attention(
        split_heads(query), split_heads(key), split_heads(value), attn_mask=attn_mask, dropout_p=dropout_p
    )
    return context.transpose(1, 2).reshape(batch, n, d)
