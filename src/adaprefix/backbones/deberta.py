"""The DeBERTa-v2/v3 family (transformers model_type ``deberta-v2``): disentangled attention with prefixes.

Module layout used (transformers ``DebertaV2Model``)::

    embeddings(input_ids, token_type_ids, position_ids)    word (+ absolute position if position_biased_input)
                                                            (+ type if type_vocab_size > 0), LayerNorm
    encoder.rel_embeddings, encoder.LayerNorm              relative position embeddings (2k x d), optional norm
    encoder.conv                                           optional ConvLayer after layer 0 (conv_kernel_size > 0)
    encoder.layer[i].attention.self.{query,key,value}_proj
    encoder.layer[i].attention.self.pos_{key,query}_proj   absent when share_att_key
    encoder.layer[i].attention.output, intermediate, output    as BERT
    (no pooler: heads use the first token's hidden state)

Scores of a real query i over a real key j, with s = 1 + [c2p] + [p2c] and r = relative position bucket::

    (q_i . k_j  +  q_i . Kr[r(i, j)]  +  k_j . Qr[-r(j, i)]) / sqrt(d_h * s)
       content      content->position     position->content

Prefix columns [ours]: a prefix slot has no position, so its score is the content term alone,
q_i . P_k / sqrt(d_h * s) (same scale s, so a prefix key competes with real keys on the pretrained scale).
We pass the query pre-divided by sqrt(s) to ``gated_prefix_attention`` (whose SDPA divides by sqrt(d_h)), and
the c2p + p2c terms as its ``score_bias``, which it adds to real-key columns only.

Usage::

    from transformers import AutoModel
    from adaprefix import PrefixConfig, attach
    adapted = attach(AutoModel.from_pretrained("microsoft/deberta-v3-base"), PrefixConfig(prefix_len=16))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..attention import gated_prefix_attention


def log_bucket(relative: torch.Tensor, bucket_size: int, max_position: int) -> torch.Tensor:
    """DeBERTa-v2 log buckets: exact for |r| < bucket_size / 2, logarithmic beyond, sign kept.

    >>> log_bucket(torch.tensor([0, 3, -3, 50]), bucket_size=8, max_position=64).tolist()
    [0, 3, -3, 7]
    """
    sign = torch.sign(relative)
    mid = bucket_size // 2
    inside = (relative < mid) & (relative > -mid)
    magnitude = torch.where(inside, torch.full_like(relative, mid - 1), relative.abs())
    log_pos = torch.ceil(
        torch.log(magnitude / mid) / torch.log(torch.tensor((max_position - 1) / mid)) * (mid - 1)
    ) + mid
    return torch.where(magnitude <= mid, relative.to(log_pos.dtype), log_pos * sign).long()


@dataclass(frozen=True)
class DebertaContext:
    """Computed once per forward: relative position buckets (n x n, [query, key]) and the relative embeddings."""

    relative: torch.Tensor | None
    rel_embeddings: torch.Tensor | None
    input_mask: torch.Tensor  # (B x n), 1 for real tokens: the conv layer zeroes padding with it


@dataclass(frozen=True)
class DebertaV2Family:
    """DeBERTa-v2/v3 embeddings, layers and (absent) pooler by module name. Implements ``EncoderFamily``."""

    model_type: str = "deberta-v2"

    def layers(self, encoder: nn.Module) -> nn.ModuleList:
        return encoder.encoder.layer

    @staticmethod
    def _settings(encoder: nn.Module) -> tuple[int, int, list[str], bool]:
        """(position_buckets, max_relative_positions, pos_att_type, share_att_key) as the layers read them."""
        cfg = encoder.config
        buckets = getattr(cfg, "position_buckets", -1)
        max_rel = getattr(cfg, "max_relative_positions", -1)
        if max_rel < 1:
            max_rel = cfg.max_position_embeddings
        return buckets, max_rel, list(cfg.pos_att_type or []), bool(getattr(cfg, "share_att_key", False))

    def embed(
        self, encoder: nn.Module, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, offset: int
    ) -> torch.Tensor:
        if getattr(encoder, "z_steps", 0) > 1:
            raise ValueError("DeBERTa with z_steps > 1 (enhanced mask decoder reuse) is not supported")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        n = input_ids.shape[1]
        # Absolute positions matter only when position_biased_input (DeBERTa-v2 xlarge/xxlarge: False; v3: False).
        positions = (torch.arange(n, device=input_ids.device) + offset).unsqueeze(0).expand_as(input_ids)
        # transformers also multiplies padding rows by 0 here; only the conv layer can see them, and it gets the
        # mask in layer_forward, so real tokens come out the same.
        return encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=positions)

    def prepare(self, encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> DebertaContext:
        cfg = encoder.config
        head_dim = getattr(cfg, "attention_head_size", cfg.hidden_size // cfg.num_attention_heads)
        if head_dim * cfg.num_attention_heads != cfg.hidden_size:
            raise ValueError("DeBERTa with attention_head_size * heads != hidden_size is not supported")
        relative = rel = None
        if getattr(cfg, "relative_attention", False):
            buckets, max_rel, _, _ = self._settings(encoder)
            n = input_ids.shape[1]
            ids = torch.arange(n, device=input_ids.device)
            relative = ids[:, None] - ids[None, :]  # query position - key position
            if buckets > 0 and max_rel > 0:
                relative = log_bucket(relative, buckets, max_rel)
            rel = encoder.encoder.rel_embeddings.weight
            if "layer_norm" in [x.strip() for x in getattr(cfg, "norm_rel_ebd", "none").lower().split("|")]:
                rel = encoder.encoder.LayerNorm(rel)
        return DebertaContext(relative, rel, attention_mask)

    def _position_bias(
        self, encoder: nn.Module, attn: nn.Module, query: torch.Tensor, key: torch.Tensor, ctx: DebertaContext,
        scale: float, heads: int,
    ) -> torch.Tensor | None:
        """c2p + p2c terms for real keys (B x H x n x n), already divided by sqrt(d_h * s)."""
        buckets, max_rel, pos_att_type, share = self._settings(encoder)
        if ctx.relative is None or not ({"c2p", "p2c"} & set(pos_att_type)):
            return None
        span = buckets if buckets > 0 else max_rel
        rel = attn.pos_dropout(ctx.rel_embeddings)[: 2 * span]  # (2k x d); dropout per layer, as transformers
        batch, n, d = query.shape

        def heads_of(x: torch.Tensor) -> torch.Tensor:  # (m x d) -> (H x m x d_h)
            return x.view(x.shape[0], heads, -1).transpose(0, 1)

        def split(x: torch.Tensor) -> torch.Tensor:  # (B x n x d) -> (B x H x n x d_h)
            return x.view(batch, n, heads, -1).transpose(1, 2)

        bias = 0
        if "c2p" in pos_att_type:
            pos_key = heads_of(attn.key_proj(rel) if share else attn.pos_key_proj(rel))
            c2p = split(query) @ pos_key.transpose(-1, -2)  # B x H x n x 2k: query i . Kr[bucket]
            index = (ctx.relative + span).clamp(0, 2 * span - 1)  # [i, j] -> bucket of r(i, j)
            bias = bias + c2p.gather(-1, index.expand(batch, heads, n, n)) / scale
        if "p2c" in pos_att_type:
            pos_query = heads_of(attn.query_proj(rel) if share else attn.pos_query_proj(rel))
            p2c = split(key) @ pos_query.transpose(-1, -2)  # B x H x n(key j) x 2k: key j . Qr[bucket]
            index = (-ctx.relative + span).clamp(0, 2 * span - 1)  # [j, i] -> bucket of -r(j, i)
            bias = bias + p2c.gather(-1, index.expand(batch, heads, n, n)).transpose(-1, -2) / scale
        return bias

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
        attn = layer.attention.self
        heads = encoder.config.num_attention_heads
        query = attn.query_proj(hidden)
        key = attn.key_proj(hidden)
        value = attn.value_proj(hidden)
        _, _, pos_att_type, _ = self._settings(encoder)
        factor = 1 + ("c2p" in pos_att_type) + ("p2c" in pos_att_type)
        head_dim = query.shape[-1] // heads
        scale = math.sqrt(head_dim * factor)
        bias = self._position_bias(encoder, attn, query, key, context, scale, heads)
        # SDPA divides by sqrt(d_h); dividing the query by sqrt(s) gives DeBERTa's 1/sqrt(d_h * s) on every
        # column, prefix columns included.
        attended = gated_prefix_attention(
            query / math.sqrt(factor), key, value, heads, prefix, None, key_mask, attn_dropout,
            prefix_mask=prefix_mask, score_bias=bias,
        )
        attn_out = layer.attention.output(attended, hidden)
        out = layer.output(layer.intermediate(attn_out), attn_out)
        conv = getattr(encoder.encoder, "conv", None)
        if conv is not None and layer is encoder.encoder.layer[0]:
            # ConvLayer mixes neighbouring tokens of the (padding-zeroed) embedding output into layer 0's output.
            mask = context.input_mask.to(hidden.dtype)
            out = conv(hidden * mask.unsqueeze(-1), out, context.input_mask)
        return out

    def pooler(self, encoder: nn.Module) -> nn.Module | None:
        return None  # DebertaV2Model has no pooler; heads use the first token's hidden state
