"""The BERT family (BERT, MiniLM, RoBERTa, XLM-R, ELECTRA): embeddings, layers and pooler by module name.

All of these share the layer layout ``encoder.layer[i].{attention.{self.{query,key,value}, output},
intermediate, output}``. We call the public submodules for everything except the attention itself, which
``gated_prefix_attention`` computes so that each layer sees its own input (for the token gate) and its prefix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..attention import gated_prefix_attention


@dataclass(frozen=True)
class BertFamily:
    """How one model type numbers its positions; everything else is shared. Implements ``EncoderFamily``."""

    model_type: str
    roberta_positions: bool  # positions start after padding_idx and skip pad tokens (RoBERTa, XLM-R)

    def layers(self, encoder: nn.Module) -> nn.ModuleList:
        return encoder.encoder.layer

    def position_ids(self, encoder: nn.Module, input_ids: torch.Tensor, offset: int) -> torch.Tensor:
        """Position ids of real tokens, shifted by ``offset`` (P-tuning v2's past_key_values shift when > 0)."""
        if self.roberta_positions:
            pad = encoder.config.pad_token_id
            real = input_ids.ne(pad).long()
            return (torch.cumsum(real, dim=1) + offset) * real + pad
        n = input_ids.shape[1]
        return (torch.arange(n, device=input_ids.device) + offset).unsqueeze(0).expand_as(input_ids)

    def embed(
        self, encoder: nn.Module, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, offset: int
    ) -> torch.Tensor:
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        positions = self.position_ids(encoder, input_ids, offset)
        hidden = encoder.embeddings(input_ids=input_ids, token_type_ids=token_type_ids, position_ids=positions)
        project = getattr(encoder, "embeddings_project", None)  # ELECTRA with embedding_size != hidden_size
        return project(hidden) if project is not None else hidden

    def prepare(self, encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        return None  # absolute positions only: nothing shared across layers

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
        self_attn = layer.attention.self
        # One fused matmul for query, key and value: a third of the kernel launches, same arithmetic.
        weight = torch.cat([self_attn.query.weight, self_attn.key.weight, self_attn.value.weight])
        bias = torch.cat([self_attn.query.bias, self_attn.key.bias, self_attn.value.bias])
        query, key, value = F.linear(hidden, weight, bias).chunk(3, dim=-1)
        heads = encoder.config.num_attention_heads
        attended = gated_prefix_attention(
            query, key, value, heads, prefix, None, key_mask, attn_dropout, prefix_mask=prefix_mask
        )
        attn_out = layer.attention.output(attended, hidden)
        return layer.output(layer.intermediate(attn_out), attn_out)

    def pooler(self, encoder: nn.Module) -> nn.Module | None:
        return getattr(encoder, "pooler", None)
