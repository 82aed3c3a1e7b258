"""Task heads on an adapted encoder (APT-SPEC section 4).

* ``classification``: frozen pooler on [CLS] -> dropout -> linear (C classes).
* ``multiple_choice``: the same pooled vector -> dropout -> linear(d, 1), one score per choice row (COPA).
* ``token_classification``: dropout -> linear per token; labels of -100 are ignored (first sub-token labelling).

Backbones without a pooler (ELECTRA) use the [CLS] hidden state as the pooled vector.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HEAD_TYPES = ("classification", "multiple_choice", "token_classification")


class TaskHead(nn.Module):
    """dropout -> linear on the pooled vector or on every token; ``loss`` matches the head type."""

    def __init__(self, head_type: str, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        if head_type not in HEAD_TYPES:
            raise ValueError(f"head type must be one of {HEAD_TYPES}, got {head_type!r}")
        if head_type == "multiple_choice":
            num_labels = 1
        elif num_labels < 1:
            raise ValueError(f"a {head_type} head needs num_labels >= 1, got {num_labels}")
        self.head_type = head_type
        self.class_weights: torch.Tensor | None = None  # per-label loss weights (--class-weights); not saved
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def forward(self, hidden: torch.Tensor, pooled: torch.Tensor | None) -> torch.Tensor:
        if self.head_type == "token_classification":
            return self.classifier(self.dropout(hidden))
        if pooled is None:
            pooled = hidden[:, 0]
        return self.classifier(self.dropout(pooled))

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        weight = self.class_weights.to(logits.device) if self.class_weights is not None else None
        if self.head_type == "token_classification":
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), weight=weight,
                                   ignore_index=-100)
        return F.cross_entropy(logits.float(), labels, weight=weight)
