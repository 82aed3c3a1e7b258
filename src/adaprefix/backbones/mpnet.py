"""The MPNet family (e.g. all-mpnet-base-v2, ``--model mpnet``): BERT-like layers plus a T5-style relative bias.

Module layout used (transformers ``MPNetModel``)::

    embeddings(input_ids, position_ids)          word + absolute position (RoBERTa numbering, pad id 1), no types
    encoder.relative_attention_bias              Embedding(buckets, heads): one bias per head and distance bucket
    encoder.layer[i].attention.attn.{q,k,v,o}    projections; o sits inside the attention block
    encoder.layer[i].attention.{LayerNorm,dropout}   post-norm around attention
    encoder.layer[i].{intermediate, output}      feed-forward, as BERT
    pooler                                       dense + tanh on the first token

Attention of a real query i over key j is q_i.k_j / sqrt(d_h) + b_h(bucket(j - i)). The bias is computed once
per forward (``prepare``) and handed to ``gated_prefix_attention`` as ``score_bias``, which adds it to the
real-key columns only: prefix slots have no position, so their columns get no relative bias [ours], the same
choice P-tuning v2 makes implicitly for absolute positions.

Usage::

    from transformers import AutoModel
    from adaprefix import PrefixConfig, attach, packaged_model_path
    adapted = attach(AutoModel.from_pretrained(packaged_model_path("mpnet")), PrefixConfig(prefix_len=16))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..attention import gated_prefix_attention

# transformers' MPNetEncoder always buckets with these (not config.relative_attention_num_buckets); so do we,
# so that the arithmetic matches the pretrained model's.
NUM_BUCKETS = 32
MAX_DISTANCE = 128


def relative_bucket(relative: torch.Tensor, num_buckets: int = NUM_BUCKETS, max_distance: int = MAX_DISTANCE) -> torch.Tensor:
    """T5/MPNet bucket of ``relative`` = key position - query position: half the buckets per direction, exact
    below a quarter of ``num_buckets``, then logarithmic up to ``max_distance``.

    >>> relative_bucket(torch.tensor([0, 1, -1, 200])).tolist()
    [0, 17, 1, 31]
    """
    half = num_buckets // 2
    distance = -relative  # positive when the key lies before the query
    bucket = (distance < 0).long() * half
    distance = distance.abs()
    exact = half // 2
    # clamp_min(1) only keeps log() finite where the exact branch is taken anyway
    log_part = exact + (
        torch.log(distance.clamp_min(1).float() / exact) / math.log(max_distance / exact) * (half - exact)
    ).long()
    log_part = log_part.clamp_max(half - 1)
    return bucket + torch.where(distance < exact, distance, log_part)


@dataclass(frozen=True)
class MPNetFamily:
    """MPNet embeddings, layers and pooler by module name. Implements ``EncoderFamily`` (family.py)."""

    model_type: str = "mpnet"

    def layers(self, encoder: nn.Module) -> nn.ModuleList:
        return encoder.encoder.layer

    def position_ids(self, encoder: nn.Module, input_ids: torch.Tensor, offset: int) -> torch.Tensor:
        """RoBERTa numbering: real tokens from padding_idx + 1 (skipping pads), pads at padding_idx; + ``offset``."""
        pad = encoder.embeddings.padding_idx
        real = input_ids.ne(pad).long()
        return (torch.cumsum(real, dim=1) + offset) * real + pad

    def embed(
        self, encoder: nn.Module, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, offset: int
    ) -> torch.Tensor:
        # MPNet has no token types: token_type_ids is accepted for the common interface and ignored.
        return encoder.embeddings(input_ids=input_ids, position_ids=self.position_ids(encoder, input_ids, offset))

    def prepare(self, encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The relative position bias (1 x H x n x n), shared by every layer and every row (positions 0..n-1, as
        transformers does, whatever the padding)."""
        n = input_ids.shape[1]
        pos = torch.arange(n, device=input_ids.device)
        buckets = relative_bucket(pos[None, :] - pos[:, None])  # [query, key]
        return encoder.encoder.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)

    def layer_forward(
        self,
        encoder: nn.Module,
        layer: nn.Module,
        hidden: torch.Tensor,
        key_mask: torch.Tensor | None,
        prefix: tuple[torch.Tensor, torch.Tensor] | None,
        prefix_mask: torch.Tensor | None,
        attn_dropout: float,
        context: Any,
    ) -> torch.Tensor:
        block = layer.attention
        attn = block.attn
        # One fused matmul for q, k and v (as bert.py): fewer kernel launches, same arithmetic.
        weight = torch.cat([attn.q.weight, attn.k.weight, attn.v.weight])
        bias = torch.cat([attn.q.bias, attn.k.bias, attn.v.bias])
        query, key, value = F.linear(hidden, weight, bias).chunk(3, dim=-1)
        attended = gated_prefix_attention(
            query, key, value, encoder.config.num_attention_heads, prefix, None, key_mask, attn_dropout,
            prefix_mask=prefix_mask, score_bias=context,
        )
        attn_out = block.LayerNorm(block.dropout(attn.o(attended)) + hidden)
        return layer.output(layer.intermediate(attn_out), attn_out)

    def pooler(self, encoder: nn.Module) -> nn.Module | None:
        return getattr(encoder, "pooler", None)
