"""AdaptedEncoder: a frozen encoder run layer by layer with gated prefixes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import PrefixConfig
from ..prefix import PrefixStack
if TYPE_CHECKING:
    from .family import EncoderFamily


@dataclass
class EncoderOutput:
    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor | None


@dataclass
class GateValues:
    """Gates of one layer in the last forward: ``layer`` = lambda (scalar tensor, 1 when off),
    ``token`` = alpha per example and prefix slot (B x l, ones when off)."""

    layer: torch.Tensor
    token: torch.Tensor


def weights_fingerprint(module: nn.Module) -> str:
    """SHA-256 over every tensor of the state dict (names, shapes, dtypes, bytes); identifies the exact base."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tuple(t.shape)}|{t.dtype}|".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def describe_base(encoder: nn.Module, family: "EncoderFamily") -> dict:
    """What identifies a base encoder in an adapter file: name, type, shape and weights fingerprint."""
    hf = encoder.config
    return {
        "name_or_path": hf.name_or_path,
        "model_type": hf.model_type,
        "num_layers": len(family.layers(encoder)),
        "hidden_size": hf.hidden_size,
        "num_heads": hf.num_attention_heads,
        "fingerprint": weights_fingerprint(encoder),
    }


class AdaptedEncoder(nn.Module):
    """An encoder from ``transformers.AutoModel`` with APT / P-tuning v2 prefixes.

    The backbone's weights are frozen (``requires_grad=False``) unless ``config.method == "finetune"``;
    only ``self.prefix`` (tables and gates) trains. Build it with :func:`adaprefix.attach`.
    """

    def __init__(
        self, encoder: nn.Module, config: PrefixConfig, family: "EncoderFamily", base: dict | None = None
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.config = config
        self.family = family
        hf = encoder.config
        # Identify the base before any fine-tuning changes its weights (``base`` if the caller already did).
        self._base = base if base is not None else describe_base(encoder, family)
        self.num_layers = self._base["num_layers"]
        self.hidden_size = hf.hidden_size
        self.num_heads = hf.num_attention_heads
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden size {self.hidden_size} is not divisible by {self.num_heads} heads")
        dropout = config.prefix_dropout if config.prefix_dropout is not None else hf.hidden_dropout_prob
        self.prefix = PrefixStack(config, self.num_layers, self.hidden_size, dropout) if config.uses_prefix else None
        encoder.requires_grad_(not config.uses_prefix)
        self.last_gates: list[GateValues | None] = [None] * self.num_layers
        self.gradient_checkpointing = False
        # One mode for wrapper and encoder: the encoder's (eval after from_pretrained), as transformers does.
        self.train(encoder.training)

    @property
    def lengths(self) -> list[int]:
        return self.prefix.lengths if self.prefix is not None else [0] * self.num_layers

    def base_info(self) -> dict:
        """What identifies the base encoder in an adapter file."""
        return dict(self._base)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        pooled: bool = True,
    ) -> EncoderOutput:
        """Last hidden states (B x n x d) and, when ``pooled`` and the backbone has one, the pooler output."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        lengths = self.lengths
        # HF's past_key_values path numbers real tokens after the cache length of layer 0.
        offset = lengths[0] if self.config.position_offset == "prefix" else 0
        hidden = self.family.embed(self.encoder, input_ids, token_type_ids, offset)
        key_mask = attention_mask.bool()
        if bool(key_mask.all()):
            key_mask = None
        tables = self.prefix.tables() if self.prefix is not None else [None] * self.num_layers
        attn_dropout = self.attention_dropout() if self.training else 0.0
        context = self.family.prepare(self.encoder, input_ids, attention_mask)
        gates_out: list[GateValues | None] = []
        checkpointing = self.gradient_checkpointing and self.training and torch.is_grad_enabled()
        for i, layer in enumerate(self.family.layers(self.encoder)):
            step = (i, layer, tables[i], attention_mask, key_mask, attn_dropout, context)
            # The last layer is never checkpointed: its backward runs first, so recomputing it would rebuild the
            # very activations it keeps, at the same moment (same peak memory, one layer's forward more time).
            if checkpointing and i < self.num_layers - 1:
                # Keep only the layer's input; recompute the layer (gates included) in backward, with the RNG
                # state of the forward so dropout draws the same masks.
                hidden, alpha = torch.utils.checkpoint.checkpoint(self._layer_step, hidden, *step, use_reentrant=False)
            else:
                hidden, alpha = self._layer_step(hidden, *step)
            gates_out.append(self._gate_record(i, alpha, hidden))
        self.last_gates = gates_out
        pooler = self.family.pooler(self.encoder) if pooled else None
        return EncoderOutput(hidden, pooler(hidden) if pooler is not None else None)

    def _layer_step(self, hidden, i, layer, table, attention_mask, key_mask, attn_dropout, context):
        """One layer with its gated prefix; returns the output and the token gate alpha (or None)."""
        prefix, alpha = self._layer_prefix(i, table, hidden, attention_mask)
        out = self.family.layer_forward(self.encoder, layer, hidden, key_mask, prefix, None, attn_dropout, context)
        return out, alpha

    def _gate_record(self, i: int, alpha: torch.Tensor | None, hidden: torch.Tensor) -> GateValues | None:
        if self.prefix is None or self.prefix.layers[i].length == 0:
            return None
        layer_prefix = self.prefix.layers[i]
        lam = layer_prefix.layer_gate.detach().clone() if layer_prefix.layer_gate is not None else hidden.new_ones(())
        token = alpha.detach() if alpha is not None else hidden.new_ones(hidden.shape[0], layer_prefix.length)
        return GateValues(lam, token)

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        """Recompute each layer but the last in backward instead of keeping its activations (the transformers name).

        Gates and dropout are recomputed exactly (same inputs, same RNG state); gradients equal those without.
        """
        self.gradient_checkpointing = True

    def gradient_checkpointing_disable(self) -> None:
        self.gradient_checkpointing = False

    def attention_dropout(self) -> float:
        """Dropout on attention probabilities while training: the config's, else the backbone's."""
        p = self.config.attention_dropout
        return self.encoder.config.attention_probs_dropout_prob if p is None else p

    def _layer_prefix(
        self, i: int, table: tuple[torch.Tensor, torch.Tensor] | None, hidden: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]:
        """Layer i's prefix scaled by its gates (lambda_i * a_i, from this layer's input), and a_i (None if off)."""
        if table is None:
            return None, None
        layer_prefix = self.prefix.layers[i]
        if layer_prefix.token_gate is None and layer_prefix.layer_gate is None:  # P-tuning v2: gates are 1
            return table, None
        scale, alpha = layer_prefix.gate(hidden, attention_mask)
        scale = scale.to(table[0].dtype).unsqueeze(-1)
        return (scale * table[0], scale * table[1]), alpha if layer_prefix.token_gate is not None else None

    def adapter_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]
