"""PrefixConfig: every choice that shapes the prefix, the gates and what is trained.

Usage::

    from adaprefix import PrefixConfig
    cfg = PrefixConfig(method="apt", prefix_len=16)            # APT, both gates on
    cfg = PrefixConfig(method="prefix", prefix_len=[4, 4, 8, 8, 16, 16])  # P-tuning v2, per-layer lengths
    cfg = PrefixConfig(method="apt", layer_gate=False)          # ablation: token gate only

Bad values raise ``ValueError`` naming the field; nothing is silently replaced.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

METHODS = ("apt", "prefix", "finetune")
GATE_POOLINGS = ("mean", "cls")
POSITION_OFFSETS = ("none", "prefix")


@dataclass
class PrefixConfig:
    """How a frozen encoder is adapted.

    method: ``"apt"`` (gated prefixes), ``"prefix"`` (P-tuning v2), ``"finetune"`` (everything trains, no prefix).
    prefix_len: one length for every layer, or a list with one length per layer (0 = no prefix there).
    token_gate / layer_gate: the two APT gates. ``None`` means the method's default (on for apt, off otherwise).
    gate_pooling: how the token gate summarises the layer input: masked ``"mean"`` or the ``"cls"`` vector [ours].
    layer_gate_init: initial value of each layer's scalar gate (unconstrained) [ours: 1.0].
    token_gate_bias_init: initial bias of every token gate (weights start at 0), so gates start at
        sigmoid(bias): 0 -> 0.5 (half of P-tuning v2's prefix); 3 -> 0.95 (APT starts as P-tuning v2) [ours: 0].
    prefix_projection: P-tuning v2's reparameterisation MLP (Embedding -> Linear(d, hidden) -> tanh -> Linear).
    prefix_projection_hidden: the MLP's hidden size (512 as in P-tuning v2).
    prefix_dropout: dropout on the prefix tensor; ``None`` uses the backbone's hidden dropout [PT2].
    position_offset: ``"none"`` keeps pretrained positions; ``"prefix"`` shifts real tokens by the prefix length,
        as HF's past_key_values path (and so P-tuning v2 and PEFT) does.
    attention_dropout: dropout on attention probabilities; ``None`` uses the backbone's [PT2]. On CPU, 0 lets
        scaled_dot_product_attention use its fused kernel: about 40% faster steps and far less memory [ours].
    init_std: standard deviation of the prefix table initialisation (N(0, init_std), as nn.Embedding with
        std 1 in P-tuning v2 would be too large for a table in key/value space) [ours: 0.02].
    """

    method: str = "apt"
    prefix_len: int | list[int] = 16
    token_gate: bool | None = None
    layer_gate: bool | None = None
    gate_pooling: str = "mean"
    layer_gate_init: float = 1.0
    token_gate_bias_init: float = 0.0
    prefix_projection: bool = False
    prefix_projection_hidden: int = 512
    prefix_dropout: float | None = None
    position_offset: str = "none"
    attention_dropout: float | None = None
    init_std: float = 0.02

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"PrefixConfig.method must be one of {METHODS}, got {self.method!r}")
        is_apt = self.method == "apt"
        for name in ("token_gate", "layer_gate"):
            value = getattr(self, name)
            if value is None:
                setattr(self, name, is_apt)
            elif not isinstance(value, bool):
                raise ValueError(f"PrefixConfig.{name} must be a bool, got {value!r}")
            elif value and not is_apt:
                raise ValueError(
                    f"PrefixConfig.{name}=True needs method='apt' (method={self.method!r} has no gates)"
                )
        self._check_prefix_len()
        if self.gate_pooling not in GATE_POOLINGS:
            raise ValueError(f"PrefixConfig.gate_pooling must be one of {GATE_POOLINGS}, got {self.gate_pooling!r}")
        if self.position_offset not in POSITION_OFFSETS:
            raise ValueError(
                f"PrefixConfig.position_offset must be one of {POSITION_OFFSETS}, got {self.position_offset!r}"
            )
        for name in ("layer_gate_init", "token_gate_bias_init"):
            value = getattr(self, name)
            if not _is_number(value) or value != value or abs(value) == float("inf"):
                raise ValueError(f"PrefixConfig.{name} must be a finite number, got {value!r}")
        if not isinstance(self.prefix_projection, bool):
            raise ValueError(f"PrefixConfig.prefix_projection must be a bool, got {self.prefix_projection!r}")
        if not _is_int(self.prefix_projection_hidden) or self.prefix_projection_hidden < 1:
            raise ValueError(
                f"PrefixConfig.prefix_projection_hidden must be a positive int, got {self.prefix_projection_hidden!r}"
            )
        for name in ("prefix_dropout", "attention_dropout"):
            value = getattr(self, name)
            if value is not None and (not _is_number(value) or not 0.0 <= value < 1.0):
                raise ValueError(f"PrefixConfig.{name} must be None or in [0, 1), got {value!r}")
        if not _is_number(self.init_std) or self.init_std <= 0:
            raise ValueError(f"PrefixConfig.init_std must be a positive number, got {self.init_std!r}")

    def _check_prefix_len(self) -> None:
        lens = self.prefix_len
        if isinstance(lens, (list, tuple)):
            if not lens:
                raise ValueError("PrefixConfig.prefix_len list must not be empty (one length per layer)")
            bad = [x for x in lens if not _is_int(x) or x < 0]
            if bad:
                raise ValueError(f"PrefixConfig.prefix_len entries must be ints >= 0, got {bad}")
            self.prefix_len = [int(x) for x in lens]
        elif not _is_int(lens) or lens < 0:
            raise ValueError(f"PrefixConfig.prefix_len must be an int >= 0 or a list of them, got {lens!r}")

    @property
    def uses_prefix(self) -> bool:
        return self.method != "finetune"

    def layer_lengths(self, num_layers: int) -> list[int]:
        """The prefix length of each of ``num_layers`` layers (all 0 for finetune)."""
        if not self.uses_prefix:
            return [0] * num_layers
        if isinstance(self.prefix_len, list):
            if len(self.prefix_len) != num_layers:
                raise ValueError(
                    f"PrefixConfig.prefix_len has {len(self.prefix_len)} entries but the encoder has {num_layers} layers"
                )
            return list(self.prefix_len)
        return [self.prefix_len] * num_layers

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PrefixConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown PrefixConfig fields {unknown}; known: {sorted(known)}")
        return cls(**data)


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)
