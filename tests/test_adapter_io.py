"""Adapters on disk: names, round trip, base checks, PEFT import."""

import json

import pytest
import torch
from safetensors.torch import load_file

from adaprefix import AdapterMismatchError, PrefixConfig, TaskModel, attach, load_adapter, save_adapter
from adaprefix.adapter_io import import_peft_prefix
from conftest import minilm, padded_batch, randomize_adapter, tiny_encoder


def make_model(config, head="classification", labels=("no", "yes", "maybe"), seed=0):
    model = TaskModel(attach(tiny_encoder(seed=seed), config), head, label_names=list(labels)).eval()
    randomize_adapter(model)
    return model


@pytest.mark.parametrize(
    "config",
    [
        PrefixConfig(method="apt", prefix_len=[3, 0, 2]),
        PrefixConfig(method="prefix", prefix_len=4, prefix_projection=True),
        PrefixConfig(method="apt", prefix_len=2, layer_gate=False, gate_pooling="cls"),
        PrefixConfig(method="finetune"),
    ],
    ids=["apt-variable", "pt2-projection", "apt-token-gate-only", "finetune"],
)
def test_save_then_load_gives_identical_logits(tmp_path, config):
    model = make_model(config)
    ids, mask, types = padded_batch()
    with torch.no_grad():
        expected = model(ids, mask, types).logits
    save_adapter(model, tmp_path / "adapter")
    loaded = load_adapter(tmp_path / "adapter", tiny_encoder(seed=0)).eval()
    with torch.no_grad():
        got = loaded(ids, mask, types).logits
    assert torch.equal(got, expected)
    assert loaded.label_names == ["no", "yes", "maybe"]
    assert sorted(p.name for p in (tmp_path / "adapter").iterdir()) == ["adapter.safetensors", "adapter_config.json"]


def test_file_layout_and_names(tmp_path):
    model = make_model(PrefixConfig(method="apt", prefix_len=[3, 0, 2], prefix_projection=True))
    save_adapter(model, tmp_path)
    tensors = load_file(str(tmp_path / "adapter.safetensors"))
    d = 32
    expected = {}
    for i, n in ((0, 3), (2, 2)):
        expected.update({
            f"prefix.{i}.key": (n, d), f"prefix.{i}.value": (n, d),
            f"gate.{i}.token.weight": (n, d), f"gate.{i}.token.bias": (n,), f"gate.{i}.layer": (),
        })
    expected.update({"head.classifier.weight": (3, d), "head.classifier.bias": (3,)})
    assert {k: tuple(v.shape) for k, v in tensors.items()} == expected
    # the projection MLP is folded: stored tables equal what the model computes
    tables = model.encoder.prefix.folded_tables()
    assert torch.equal(tensors["prefix.2.value"], tables[2][1])
    meta = json.loads((tmp_path / "adapter_config.json").read_text())
    assert meta["format_version"] == 1 and meta["prefix_lengths"] == [3, 0, 2]
    assert meta["base_model"]["model_type"] == "bert" and meta["base_model"]["num_layers"] == 3
    assert meta["base_model"]["hidden_size"] == d and len(meta["base_model"]["fingerprint"]) == 64
    assert meta["head"]["type"] == "classification" and meta["label_names"] == ["no", "yes", "maybe"]


def test_mismatched_base_is_refused(tmp_path):
    save_adapter(make_model(PrefixConfig(prefix_len=2)), tmp_path)
    with pytest.raises(AdapterMismatchError, match="fingerprint"):
        load_adapter(tmp_path, tiny_encoder(seed=1))  # same shape, other weights
    with pytest.raises(AdapterMismatchError, match="num_layers: adapter expects 3, encoder has 6"):
        load_adapter(tmp_path, minilm())
    from transformers import AutoModel, RobertaConfig

    from conftest import TINY

    with pytest.raises(AdapterMismatchError, match="model_type: adapter expects 'bert', encoder has 'roberta'"):
        load_adapter(tmp_path, AutoModel.from_config(RobertaConfig(**TINY)))


def test_minilm_adapter_is_small(tmp_path):
    model = TaskModel(attach(minilm(), PrefixConfig(method="apt", prefix_len=16)), "classification", ["a", "b", "c"])
    save_adapter(model, tmp_path)
    assert (tmp_path / "adapter.safetensors").stat().st_size < 1_000_000


def test_corrupt_or_foreign_config_is_a_clear_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text('{"format": "adaprefix-adapter",\n "format_version": }')
    with pytest.raises(ValueError, match=r"adapter_config.json:2: not valid JSON"):
        load_adapter(tmp_path, tiny_encoder())
    (tmp_path / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    with pytest.raises(ValueError, match="not an adaprefix adapter"):
        load_adapter(tmp_path, tiny_encoder())


@pytest.mark.parametrize("projection", [False, True])
def test_imported_peft_prefix_matches_peft(tmp_path, projection):
    from peft import PrefixTuningConfig, TaskType, get_peft_model

    ids, mask, _ = padded_batch(vocab=30000, lengths=(14, 9, 5))
    # PEFT drops token_type_ids for prompt-learning methods (with a warning), so compare with none.
    types = None
    peft_config = PrefixTuningConfig(task_type=TaskType.FEATURE_EXTRACTION, num_virtual_tokens=6,
                                     prefix_projection=projection, encoder_hidden_size=64)
    peft_model = get_peft_model(minilm(), peft_config)
    randomize_adapter(peft_model, std=0.2 if projection else 0.5)
    peft_model.eval()
    with torch.no_grad():
        expected = peft_model(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    peft_model.save_pretrained(tmp_path / "peft")
    imported = import_peft_prefix(tmp_path / "peft", minilm()).eval()
    assert imported.encoder.config.position_offset == "prefix"
    with torch.no_grad():
        got = imported(ids, mask, types).hidden_states
        plain = minilm()(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    real = mask[..., None].bool()
    assert ((got - expected).abs() * real).max() < 1e-5
    assert ((plain - expected).abs() * real).max() > 1e-2  # the prefix changes the output
    # and the imported adapter survives a save/load round trip
    save_adapter(imported, tmp_path / "ours")
    reloaded = load_adapter(tmp_path / "ours", minilm()).eval()
    with torch.no_grad():
        again = reloaded(ids, mask, types).hidden_states
    assert torch.equal(again, got)


def test_peft_import_rejects_other_methods(tmp_path):
    (tmp_path / "adapter_config.json").write_text('{"peft_type": "LORA"}')
    with pytest.raises(ValueError, match="expected 'PREFIX_TUNING'"):
        import_peft_prefix(tmp_path, tiny_encoder())
