"""Equivalence and training behaviour of the adapted encoder (issue: core package)."""

import pytest
import torch

from adaprefix import PrefixConfig, TaskModel, attach
from conftest import TINY_CONFIGS, minilm, padded_batch, randomize_adapter, tiny_encoder


def hf_hidden(encoder, ids, mask, types):
    with torch.no_grad():
        return encoder(input_ids=ids, attention_mask=mask, token_type_ids=types)


def real_token_diff(a, b, mask):
    return ((a - b).abs() * mask[..., None]).max()


@pytest.mark.parametrize("family", sorted(TINY_CONFIGS))
def test_zero_prefix_equals_hf_encoder(family):
    encoder = tiny_encoder(family)
    ids, mask, types = padded_batch()
    if family in ("roberta", "xlm-roberta"):
        ids = torch.where(mask.bool(), ids, torch.ones_like(ids))  # RoBERTa pads with id 1
        types = torch.zeros_like(types)
    ref = hf_hidden(encoder, ids, mask, types)
    adapted = attach(encoder, PrefixConfig(method="apt", prefix_len=0)).eval()
    with torch.no_grad():
        out = adapted(ids, mask, types)
    assert (out.last_hidden_state - ref.last_hidden_state).abs().max() < 1e-5
    if getattr(ref, "pooler_output", None) is not None:
        assert (out.pooler_output - ref.pooler_output).abs().max() < 1e-5


def test_zero_prefix_equals_hf_on_minilm():
    encoder = minilm()
    ids, mask, types = padded_batch(vocab=30000, lengths=(20, 11, 4))
    ref = hf_hidden(encoder, ids, mask, types)
    adapted = attach(encoder, PrefixConfig(method="prefix", prefix_len=0)).eval()
    with torch.no_grad():
        out = adapted(ids, mask, types)
    assert (out.last_hidden_state - ref.last_hidden_state).abs().max() < 1e-5
    assert (out.pooler_output - ref.pooler_output).abs().max() < 1e-5


def test_apt_without_gates_equals_ptuning_v2():
    ids, mask, types = padded_batch()
    apt = attach(tiny_encoder(), PrefixConfig(method="apt", prefix_len=4, token_gate=False, layer_gate=False)).eval()
    pt2 = attach(tiny_encoder(), PrefixConfig(method="prefix", prefix_len=4)).eval()
    randomize_adapter(pt2)
    apt.prefix.load_state_dict(pt2.prefix.state_dict())
    with torch.no_grad():
        a, p = apt(ids, mask, types), pt2(ids, mask, types)
    plain = hf_hidden(tiny_encoder(), ids, mask, types)
    assert (a.last_hidden_state - p.last_hidden_state).abs().max() < 1e-6
    assert real_token_diff(a.last_hidden_state, plain.last_hidden_state, mask) > 1e-2  # the prefix does act


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_padded_batch_equals_each_example_alone(pooling):
    ids, mask, types = padded_batch(lengths=(9, 6, 3))
    adapted = attach(tiny_encoder(), PrefixConfig(method="apt", prefix_len=[3, 0, 5], gate_pooling=pooling)).eval()
    randomize_adapter(adapted)
    with torch.no_grad():
        batch = adapted(ids, mask, types)
        batch_gates = [g.token.clone() if g is not None else None for g in adapted.last_gates]
        for row in range(ids.shape[0]):
            n = int(mask[row].sum())
            alone = adapted(ids[row : row + 1, :n], mask[row : row + 1, :n], types[row : row + 1, :n])
            assert (alone.last_hidden_state[0] - batch.last_hidden_state[row, :n]).abs().max() < 1e-5
            assert (alone.pooler_output[0] - batch.pooler_output[row]).abs().max() < 1e-5
            for g_alone, g_batch in zip(adapted.last_gates, batch_gates):
                if g_batch is not None:
                    assert (g_alone.token[0] - g_batch[row]).abs().max() < 1e-6


def test_gate_values_are_exposed_per_layer():
    ids, mask, types = padded_batch()
    adapted = attach(tiny_encoder(), PrefixConfig(method="apt", prefix_len=[2, 0, 4])).eval()
    randomize_adapter(adapted)
    with torch.no_grad():
        adapted(ids, mask, types)
    gates = adapted.last_gates
    assert gates[1] is None
    assert gates[0].token.shape == (3, 2) and gates[2].token.shape == (3, 4)
    assert gates[0].layer.shape == ()
    assert float(gates[2].layer) == pytest.approx(float(adapted.prefix.layers[2].layer_gate.detach()))
    # the token gate depends on the input: different examples get different alphas
    assert (gates[2].token[0] - gates[2].token[1]).abs().max() > 1e-4
    assert ((gates[2].token > 0) & (gates[2].token < 1)).all()


@pytest.mark.parametrize("method", ["apt", "prefix"])
@pytest.mark.parametrize("projection", [False, True])
def test_training_updates_only_the_adapter(method, projection):
    torch.manual_seed(0)
    encoder = tiny_encoder()
    frozen_before = {k: v.clone() for k, v in encoder.state_dict().items()}
    adapted = attach(encoder, PrefixConfig(method=method, prefix_len=[3, 2, 0], prefix_projection=projection))
    model = TaskModel(adapted, "classification", label_names=["a", "b"])
    ids, mask, types = padded_batch()
    labels = torch.tensor([0, 1, 1])
    model.eval()
    with torch.no_grad():
        before = model(ids, mask, types).logits.clone()
    model.train()
    optimiser = torch.optim.AdamW(model.trainable_parameters(), lr=1e-2)
    for step in range(3):
        optimiser.zero_grad()
        model(ids, mask, types, labels=labels).loss.backward()
        if step == 0:
            missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
            assert not missing, f"no gradient for {missing}"
            assert all(p.grad is None for p in encoder.parameters())
        optimiser.step()
    model.eval()
    with torch.no_grad():
        after = model(ids, mask, types).logits
    for name, tensor in encoder.state_dict().items():
        assert torch.equal(tensor, frozen_before[name]), f"backbone weight {name} changed"
    assert (after - before).abs().max() > 1e-4


def test_finetune_trains_the_backbone():
    encoder = tiny_encoder()
    model = TaskModel(attach(encoder, PrefixConfig(method="finetune")), "classification", label_names=["a", "b"])
    assert model.encoder.prefix is None
    assert all(p.requires_grad for p in encoder.parameters())
    ids, mask, types = padded_batch()
    model(ids, mask, types, labels=torch.tensor([0, 1, 0])).loss.backward()
    assert encoder.embeddings.word_embeddings.weight.grad is not None


@pytest.mark.parametrize("length", [1, 7, 16])
def test_apt_parameter_count_is_one_and_a_half_ptuning_v2(length):
    encoder = minilm()
    num_layers, d = 6, 384
    apt = attach(encoder, PrefixConfig(method="apt", prefix_len=length))
    pt2 = attach(encoder, PrefixConfig(method="prefix", prefix_len=length))
    n_apt = sum(p.numel() for p in apt.adapter_parameters())
    n_pt2 = sum(p.numel() for p in pt2.adapter_parameters())
    assert n_pt2 == 2 * num_layers * d * length
    assert n_apt * 2 == 3 * n_pt2 + 2 * num_layers * (length + 1)


def test_multiple_choice_and_token_heads():
    ids, mask, types = padded_batch()
    adapted = attach(tiny_encoder(), PrefixConfig(prefix_len=2))
    mc = TaskModel(adapted, "multiple_choice")
    out = mc(ids.view(1, 3, -1), mask.view(1, 3, -1), types.view(1, 3, -1), labels=torch.tensor([2]))
    assert out.logits.shape == (1, 3) and out.loss.ndim == 0
    tok = TaskModel(adapted, "token_classification", label_names=["O", "B-X", "I-X"])
    labels = torch.full(ids.shape, -100)
    labels[:, 1] = 1
    out = tok(ids, mask, types, labels=labels)
    assert out.logits.shape == (3, ids.shape[1], 3) and torch.isfinite(out.loss)


def test_unsupported_architecture_is_a_clear_error():
    from transformers import AutoModel, GPT2Config

    gpt2 = AutoModel.from_config(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(ValueError, match="unsupported encoder architecture 'gpt2'.*supported model types"):
        attach(gpt2, PrefixConfig())
