"""What an encoder family must provide to carry prefixes: the contract every ``backbones/<family>.py`` fulfils.

Adding a family (say ModernBERT) is one file: a class with the methods below, registered in
``backbones/__init__.py`` under its transformers ``model_type``. It must work from the encoder's public
submodules and weights only (no private transformers internals), and come with a test that at prefix length 0
its output equals the HF forward (see tests/test_encoder.py).

The encoder (``AdaptedEncoder``) owns everything method-specific: it computes each layer's gates from the layer
input and hands the family a ready (possibly per-row, gate-scaled) prefix. A family only embeds, runs one layer
with extra keys/values in front, and pools.

Rules the families here follow (bert.py, mpnet.py, deberta.py):

* ``embed`` may ignore ``token_type_ids`` (MPNet has none).
* ``prepare`` gets the attention mask and may carry it in its context (DeBERTa's conv layer needs it).
* Relative-position terms go through ``gated_prefix_attention(score_bias=...)`` only: they apply to real keys,
  prefix columns take the plain content score (docs/spec-relative-positions.md).
* A family whose score scale is not 1/sqrt(d_h) pre-scales the query (DeBERTa: 1/sqrt(d_h * s)).
* Tests a new family needs: equality with the HF forward at prefix length 0 on a padded batch; a written-out
  softmax showing what prefix columns get; a padded batch equal to each example alone; training that changes
  only the adapter (see tests/test_mpnet.py, tests/test_deberta.py).
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
