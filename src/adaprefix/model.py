"""TaskModel: an adapted encoder plus one task head; the unit that trains, saves and serves.

Usage::

    from transformers import AutoModel
    from adaprefix import PrefixConfig, TaskModel, attach
    encoder = attach(AutoModel.from_pretrained(path), PrefixConfig(method="apt", prefix_len=16))
    model = TaskModel(encoder, "classification", label_names=["entailment", "contradiction", "neutral"])
    out = model(input_ids, attention_mask, token_type_ids, labels=labels)   # out.loss, out.logits
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .backbones import AdaptedEncoder
from .heads import TaskHead


@dataclass
class TaskOutput:
    logits: torch.Tensor | None
    loss: torch.Tensor | None = None
    hidden_states: torch.Tensor | None = None


class TaskModel(nn.Module):
    """An :class:`AdaptedEncoder` with a head (or ``head_type=None`` for bare hidden states).

    Multiple choice inputs are (B x C x n); they run as B*C rows and come back as (B x C) scores.
    """

    def __init__(
        self,
        encoder: AdaptedEncoder,
        head_type: str | None,
        label_names: list[str] | None = None,
        head_dropout: float | None = None,
    ) -> None:
        super().__init__()
        if not isinstance(encoder, AdaptedEncoder):
            raise ValueError(f"TaskModel needs the result of adaprefix.attach(encoder, config), got {type(encoder).__name__}")
        if head_type in ("classification", "token_classification") and not label_names:
            raise ValueError(f"a {head_type} head needs label_names (the class names, in label-id order)")
        self.encoder = encoder
        self.head_type = head_type
        self.label_names = list(label_names or [])
        dropout = encoder.encoder.config.hidden_dropout_prob if head_dropout is None else head_dropout
        self.head = (
            TaskHead(head_type, encoder.hidden_size, len(self.label_names), dropout) if head_type is not None else None
        )
        self.uses_pooler = head_type in ("classification", "multiple_choice")
        pooler = encoder.family.pooler(encoder.encoder)
        if pooler is not None and not self.uses_pooler:
            pooler.requires_grad_(False)  # unused: fine-tuning must not expect gradients there (DDP would hang)
        self.train(encoder.training)  # one mode for all parts: the encoder's (eval after from_pretrained)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> TaskOutput:
        choices = None
        if self.head_type == "multiple_choice":
            choices = input_ids.shape[1]
            input_ids, attention_mask, token_type_ids = (
                None if t is None else t.reshape(-1, t.shape[-1]) for t in (input_ids, attention_mask, token_type_ids)
            )
        out = self.encoder(input_ids, attention_mask, token_type_ids, pooled=self.uses_pooler)
        if self.head is None:
            return TaskOutput(logits=None, hidden_states=out.last_hidden_state)
        logits = self.head(out.last_hidden_state, out.pooler_output)
        if choices is not None:
            logits = logits.view(-1, choices)
        loss = self.head.loss(logits, labels) if labels is not None else None
        return TaskOutput(logits=logits, loss=loss, hidden_states=out.last_hidden_state)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    def count_trainable(self, include_head: bool = True) -> int:
        params = self.trainable_parameters() if include_head else self.encoder.adapter_parameters()
        return sum(p.numel() for p in params)
