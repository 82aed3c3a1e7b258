"""Prefix tables and APT gates, one small module per layer (pure torch, no transformers).

For layer i with prefix length l_i and hidden size d this holds:

* the prefix keys and values P_k, P_v (l_i x d), in the space after the frozen key/value projections;
* the token gate a = sigmoid(pool(h_{i-1}) W^T + b), W: (l_i x d), b: (l_i)   (APT only);
* the layer gate lambda, one unconstrained scalar                             (APT only).

``PrefixStack`` owns all layers and, optionally, P-tuning v2's reparameterisation MLP, which produces every
layer's table from one small embedding and can be folded into plain tables for saving or serving.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import PrefixConfig


class LayerPrefix(nn.Module):
    """Prefix table and gates of one layer. With a projection MLP the table lives in ``PrefixStack``."""

    def __init__(self, length: int, hidden: int, config: PrefixConfig, own_table: bool) -> None:
        super().__init__()
        self.length = length
        self.pooling = config.gate_pooling
        if own_table and length > 0:
            self.key = nn.Parameter(torch.randn(length, hidden) * config.init_std)
            self.value = nn.Parameter(torch.randn(length, hidden) * config.init_std)
        else:
            self.register_parameter("key", None)
            self.register_parameter("value", None)
        # Zero weights: every token gate starts at sigmoid(bias), independent of the input [ours].
        self.token_gate = nn.Linear(hidden, length) if config.token_gate and length > 0 else None
        if self.token_gate is not None:
            nn.init.zeros_(self.token_gate.weight)
            nn.init.constant_(self.token_gate.bias, float(config.token_gate_bias_init))
        self.layer_gate = (
            nn.Parameter(torch.tensor(float(config.layer_gate_init))) if config.layer_gate and length > 0 else None
        )

    def gate(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-example, per-slot gate lambda * a: (B x l), and a itself (B x l) for probing.

        hidden_states: the layer's input (B x n x d); attention_mask: (B x n), 1 for real tokens.
        """
        batch = hidden_states.shape[0]
        if self.token_gate is None:
            alpha = hidden_states.new_ones(batch, self.length)
        else:
            if self.pooling == "cls":
                summary = hidden_states[:, 0]
            else:
                mask = attention_mask.to(hidden_states.dtype).unsqueeze(-1)
                summary = (hidden_states * mask).sum(1) / mask.sum(1).clamp_min(1.0)
            alpha = torch.sigmoid(self.token_gate(summary))
        scale = alpha if self.layer_gate is None else alpha * self.layer_gate
        return scale, alpha


class PrefixProjection(nn.Module):
    """P-tuning v2 reparameterisation: Embedding(l, d) -> Linear(d, h) -> tanh -> Linear(h, 2*L*d)."""

    def __init__(self, max_len: int, num_layers: int, hidden: int, proj_hidden: int) -> None:
        super().__init__()
        self.num_layers, self.hidden = num_layers, hidden
        self.embedding = nn.Embedding(max_len, hidden)
        self.mlp = nn.Sequential(nn.Linear(hidden, proj_hidden), nn.Tanh(), nn.Linear(proj_hidden, 2 * num_layers * hidden))

    def forward(self) -> torch.Tensor:
        """All tables at once: (L x 2 x max_len x d)."""
        out = self.mlp(self.embedding.weight)  # (max_len, 2*L*d)
        return out.view(-1, self.num_layers, 2, self.hidden).permute(1, 2, 0, 3)


class PrefixStack(nn.Module):
    """All layers' prefixes and gates.

    Usage::

        stack = PrefixStack(PrefixConfig(prefix_len=8), num_layers=6, hidden=384)
        tables = stack.tables()          # per layer: (key, value) each (l_i x d), or None when l_i = 0
    """

    def __init__(self, config: PrefixConfig, num_layers: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.lengths = config.layer_lengths(num_layers)
        self.hidden = hidden
        own_tables = not config.prefix_projection
        self.layers = nn.ModuleList(LayerPrefix(n, hidden, config, own_tables) for n in self.lengths)
        max_len = max(self.lengths, default=0)
        self.projection = (
            PrefixProjection(max_len, num_layers, hidden, config.prefix_projection_hidden)
            if config.prefix_projection and max_len > 0
            else None
        )
        self.dropout = nn.Dropout(dropout)

    def tables(self) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """Effective (key, value) per layer after any projection and dropout; None where the length is 0."""
        projected = self.projection() if self.projection is not None else None
        out: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        for i, layer in enumerate(self.layers):
            if layer.length == 0:
                out.append(None)
            elif projected is not None:
                kv = self.dropout(projected[i, :, : layer.length])
                out.append((kv[0], kv[1]))
            else:
                out.append((self.dropout(layer.key), self.dropout(layer.value)))
        return out

    @torch.no_grad()
    def folded_tables(self) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
        """Tables without dropout, any projection folded in: what an adapter file stores."""
        was_training = self.training
        self.eval()
        try:
            return [None if t is None else (t[0].detach().clone(), t[1].detach().clone()) for t in self.tables()]
        finally:
            self.train(was_training)
