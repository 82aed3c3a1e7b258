"""What an encoder family must provide to carry prefixes: the contract every ``backbones/<family>.py`` fulfils.

Adding a family (say ModernBERT) is one file: a class with the methods below, registered in
``backbones/__init__.py`` under its transformers ``model_type``. It must work from the encoder's public
submodules and weights only (no private transformers internals), and come with a test that at prefix length 0
its output equals the HF forward (see tests/test_encoder.py).

The encoder (``AdaptedEncoder``) owns everything method-specific: it computes each layer's gates from the layer
input and hands the family a ready (possibly per-row, gate-scaled) prefix. A family only embeds, runs one layer
with extra keys/values in front, and pools.
"""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn


class EncoderFamily(Protocol):
    model_type: str

    def layers(self, encoder: nn.Module) -> nn.ModuleList:
        """The transformer layers, in order."""

    def embed(
        self, encoder: nn.Module, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None, offset: int
    ) -> torch.Tensor:
        """Input embeddings (B x n x d); real-token positions shifted by ``offset`` where the family has absolute
        positions (P-tuning v2's past_key_values quirk, ``position_offset="prefix"``)."""

    def prepare(self, encoder: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        """Anything computed once per forward and shared by all layers (e.g. relative position bias); may be None."""

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
        """One layer: attention over [prefix ; real] keys/values (``attention.gated_prefix_attention``), then the
        layer's own output and feed-forward modules. ``prefix`` is (l x d) or (B x l x d), already gate-scaled."""

    def pooler(self, encoder: nn.Module) -> nn.Module | None:
        """The pretrained pooler (dense + tanh on [CLS]), or None (then heads use the [CLS] hidden state)."""
