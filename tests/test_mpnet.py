"""The MPNet family (issue 12): equality with the HF forward, zero relative bias on prefix columns, padding,
training touches only the adapter, and the CLI on an MPNet folder. One test loads the real all-mpnet-base-v2."""

import json
import math
import shutil

import pytest
import torch
from transformers import AutoModel, MPNetConfig

from adaprefix import PrefixConfig, TaskModel, attach
from adaprefix.backbones.mpnet import MPNetFamily, relative_bucket
from conftest import SHARED_DATA, padded_batch, randomize_adapter, split_heads, written_out_prefix_attention

TINY = dict(vocab_size=120, hidden_size=32, num_hidden_layers=3, num_attention_heads=4, intermediate_size=64,
            max_position_embeddings=80)


def tiny_mpnet(seed: int = 0, **overrides) -> torch.nn.Module:
    torch.manual_seed(seed)
    return AutoModel.from_config(MPNetConfig(**{**TINY, **overrides})).eval()


def mpnet_batch(lengths=(9, 6, 3), vocab=120):
    """A padded batch with MPNet's pad id 1 (and no token types)."""
    ids, mask, _ = padded_batch(vocab=vocab, lengths=lengths)
    return torch.where(mask.bool(), ids, torch.ones_like(ids)), mask


def real_mpnet_path() -> str:
    from adaprefix.backbones.packaged import packaged_model_path

    try:
        return str(packaged_model_path("mpnet"))
    except FileNotFoundError as err:
        pytest.skip(str(err))


def test_bucket_matches_transformers():
    from transformers.models.mpnet.modeling_mpnet import MPNetEncoder

    rel = torch.arange(-300, 301)
    assert torch.equal(relative_bucket(rel), MPNetEncoder.relative_position_bucket(rel))


def test_zero_prefix_equals_hf_tiny():
    encoder = tiny_mpnet()
    ids, mask = mpnet_batch()
    with torch.no_grad():
        ref = encoder(input_ids=ids, attention_mask=mask)
        out = attach(encoder, PrefixConfig(method="apt", prefix_len=0)).eval()(ids, mask)
    # padded rows are compared too: both sides let a padded query attend to the real keys
    assert (out.last_hidden_state - ref.last_hidden_state).abs().max() < 1e-5
    assert (out.pooler_output - ref.pooler_output).abs().max() < 1e-5


def test_zero_prefix_equals_hf_real_mpnet():
    encoder = AutoModel.from_pretrained(real_mpnet_path()).eval()
    ids, mask = mpnet_batch(vocab=30000, lengths=(40, 17, 5))  # 40 tokens: relative distances reach log buckets
    with torch.no_grad():
        ref = encoder(input_ids=ids, attention_mask=mask)
        out = attach(encoder, PrefixConfig(method="prefix", prefix_len=0)).eval()(ids, mask)
    assert (out.last_hidden_state - ref.last_hidden_state).abs().max() < 1e-5
    assert (out.pooler_output - ref.pooler_output).abs().max() < 1e-5


def test_prefix_columns_get_no_relative_bias():
    """One layer against a written-out softmax: prefix columns score q.P_k / sqrt(d_h) only; real columns add the
    relative bias b[h, i, j]."""
    encoder = tiny_mpnet()
    family = MPNetFamily()
    ids, mask = mpnet_batch()
    batch, n = ids.shape
    heads, d = encoder.config.num_attention_heads, encoder.config.hidden_size
    dh, length = d // heads, 3
    g = torch.Generator().manual_seed(3)
    pk, pv = torch.randn(length, d, generator=g), torch.randn(length, d, generator=g)
    with torch.no_grad():
        hidden = family.embed(encoder, ids, None, 0)
        bias = family.prepare(encoder, ids, mask)
        # the relative bias is not trivially zero, and varies with distance
        assert bias.abs().max() > 1e-3 and (bias[0, :, 0, 1] - bias[0, :, 0, 5]).abs().max() > 1e-4
        layer = encoder.encoder.layer[0]
        got = family.layer_forward(encoder, layer, hidden, mask.bool(), (pk, pv), None, 0.0, bias)

        attn = layer.attention.attn
        q, k, v = (split_heads(proj(hidden), heads) for proj in (attn.q, attn.k, attn.v))
        context = written_out_prefix_attention(q, k, v, pk, pv, math.sqrt(dh), bias, mask.bool())  # prefix: no bias
        attn_out = layer.attention.LayerNorm(attn.o(context) + hidden)
        expected = layer.output(layer.intermediate(attn_out), attn_out)
    assert (got - expected).abs().max() < 1e-5


def test_padded_batch_equals_each_example_alone():
    ids, mask = mpnet_batch()
    adapted = attach(tiny_mpnet(), PrefixConfig(method="apt", prefix_len=[3, 0, 5])).eval()
    randomize_adapter(adapted)
    with torch.no_grad():
        batch = adapted(ids, mask)
        for row in range(ids.shape[0]):
            n = int(mask[row].sum())
            alone = adapted(ids[row : row + 1, :n], mask[row : row + 1, :n])
            assert (alone.last_hidden_state[0] - batch.last_hidden_state[row, :n]).abs().max() < 1e-5
            assert (alone.pooler_output[0] - batch.pooler_output[row]).abs().max() < 1e-5


@pytest.mark.parametrize("method", ["apt", "prefix"])
def test_training_updates_only_the_adapter(method):
    encoder = tiny_mpnet()
    frozen = {k: v.clone() for k, v in encoder.state_dict().items()}
    model = TaskModel(attach(encoder, PrefixConfig(method=method, prefix_len=[3, 2, 0])), "classification",
                      label_names=["a", "b"])
    ids, mask = mpnet_batch()
    labels = torch.tensor([0, 1, 1])
    with torch.no_grad():
        before = model.eval()(ids, mask).logits.clone()
    model.train()
    optimiser = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    for _ in range(3):
        optimiser.zero_grad()
        model(ids, mask, labels=labels).loss.backward()
        assert all(p.grad is None for p in encoder.parameters())
        optimiser.step()
    with torch.no_grad():
        after = model.eval()(ids, mask).logits
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, frozen[name]), f"backbone weight {name} changed"
    assert (after - before).abs().max() > 1e-4


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")
@pytest.mark.parametrize("method", ["apt", "prefix"])
def test_cli_trains_on_an_mpnet_folder(tmp_path, method):
    """`adaprefix train --model <MPNet folder>`: a small random MPNet with the real tokenizer (fast)."""
    from adaprefix.cli import main

    real = real_mpnet_path()
    folder = tmp_path / "mpnet-small"
    tiny_mpnet(vocab_size=30527, max_position_embeddings=514).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt"):
        shutil.copy(f"{real}/{name}", folder / name)
    run = tmp_path / "run"
    args = ["train", "--task", "cb", "--method", method, "--model", str(folder), "--data-dir", str(SHARED_DATA),
            "--epochs", "1", "--limit-train", "16", "--limit-eval", "8", "--batch-size", "8", "--max-length", "48",
            "--prefix-len", "4", "--no-progress", "--output", str(run)]
    assert main(args) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["method"] == method and results["trainable_params"] > 0
    assert (run / "adapter" / "adapter_config.json").is_file()


# With attention dropout > 0 the recomputed-dropout path must pass the score_bias gradient (fixed in 58f19c6).
def test_finetune_trains_the_relative_bias_with_attention_dropout():
    encoder = tiny_mpnet()
    model = TaskModel(attach(encoder, PrefixConfig(method="finetune", attention_dropout=0.1)), "classification",
                      label_names=["a", "b"]).train()
    ids, mask = mpnet_batch()
    model(ids, mask, labels=torch.tensor([0, 1, 1])).loss.backward()
    grad = encoder.encoder.relative_attention_bias.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_finetune_trains_the_relative_bias_without_attention_dropout():
    encoder = tiny_mpnet()
    model = TaskModel(attach(encoder, PrefixConfig(method="finetune", attention_dropout=0.0)), "classification",
                      label_names=["a", "b"]).train()
    ids, mask = mpnet_batch()
    model(ids, mask, labels=torch.tensor([0, 1, 1])).loss.backward()
    assert encoder.encoder.relative_attention_bias.weight.grad.abs().sum() > 0
