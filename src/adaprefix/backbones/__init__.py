"""Which encoder families adaprefix can attach to, and ``attach`` itself.

Usage::

    from transformers import AutoModel
    from adaprefix import PrefixConfig, attach
    encoder = attach(AutoModel.from_pretrained(path), PrefixConfig(method="apt", prefix_len=16))
    out = encoder(input_ids, attention_mask)        # out.last_hidden_state, out.pooler_output
    encoder.last_gates                              # per layer: lambda and alpha of that forward
"""

from __future__ import annotations

from torch import nn

from ..config import PrefixConfig
from .bert import BertFamily
from .deberta import DebertaV2Family
from .encoder import AdaptedEncoder, EncoderOutput, GateValues
from .family import EncoderFamily
from .mpnet import MPNetFamily

# transformers model_type -> family. A new family is one file implementing ``EncoderFamily`` (family.py).
FAMILIES: dict[str, EncoderFamily] = {
    "bert": BertFamily("bert", roberta_positions=False),
    "electra": BertFamily("electra", roberta_positions=False),
    "roberta": BertFamily("roberta", roberta_positions=True),
    "xlm-roberta": BertFamily("xlm-roberta", roberta_positions=True),
    "mpnet": MPNetFamily(),
    "deberta-v2": DebertaV2Family(),
}


def family_of(encoder: nn.Module) -> EncoderFamily:
    if isinstance(encoder, AdaptedEncoder):
        raise ValueError(
            "this encoder already carries adaprefix prefixes (an AdaptedEncoder); pass the bare transformers "
            "encoder instead, e.g. adapted.encoder (several adapters may share it)"
        )
    if type(encoder).__name__ == "TaskModel":
        raise ValueError("got a TaskModel; pass the bare transformers encoder, e.g. model.encoder.encoder")
    model_type = getattr(getattr(encoder, "config", None), "model_type", None)
    if model_type not in FAMILIES:
        raise ValueError(
            f"unsupported encoder architecture {model_type!r} ({type(encoder).__name__}); "
            f"supported model types: {sorted(FAMILIES)} (MiniLM checkpoints are 'bert'). "
            "Pass the bare encoder from transformers.AutoModel, not a model with a task head."
        )
    return FAMILIES[model_type]


def attach(encoder: nn.Module, config: PrefixConfig) -> AdaptedEncoder:
    """Freeze ``encoder`` (unless method is 'finetune') and wrap it with prefixes and gates per ``config``."""
    return AdaptedEncoder(encoder, config, family_of(encoder))


__all__ = ["FAMILIES", "AdaptedEncoder", "EncoderFamily", "EncoderOutput", "GateValues", "attach", "family_of"]
