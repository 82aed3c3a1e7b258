"""MultiAdapterModel: rows of one batch through different adapters equal each adapter loaded alone."""

from __future__ import annotations

import pytest
import torch

from adaprefix import AdapterMismatchError, PrefixConfig, TaskModel, attach, load_adapter, save_adapter
from adaprefix.backbones import bert as bert_family
from adaprefix.serving.multi import MultiAdapterModel
from conftest import padded_batch, randomize_adapter, tiny_encoder

torch.set_num_threads(1)

# name -> (config, head, labels): mixed methods, lengths, per-layer lengths with zeros, heads, position offsets.
ADAPTERS = {
    "apt-var": (PrefixConfig(method="apt", prefix_len=[3, 0, 2]), "classification", ["a", "b", "c"]),
    "pt2-proj": (PrefixConfig(method="prefix", prefix_len=4, prefix_projection=True), "classification", ["x", "y"]),
    "apt-tok": (PrefixConfig(method="apt", prefix_len=2, layer_gate=False, gate_pooling="cls"),
                "token_classification", ["O", "B", "I", "E", "S"]),
    "pt2-zeros": (PrefixConfig(method="prefix", prefix_len=[0, 5, 0]), "classification", ["p", "q", "r", "s"]),
    "apt-mc": (PrefixConfig(method="apt", prefix_len=[1, 2, 3]), "multiple_choice", ["choice1", "choice2"]),
    "pt2-offset": (PrefixConfig(method="prefix", prefix_len=3, position_offset="prefix"), "classification", ["u", "v"]),
}
LENGTHS = (9, 6, 3, 8, 5, 7, 4, 9, 2, 6, 8, 5)
# Row -> adapter; rows 10 and 11 are the two choices of one multiple-choice example (as are rows 2 and 3).
ROWS = ["apt-var", "pt2-proj", "apt-mc", "apt-mc", "apt-tok", "pt2-zeros", "apt-var", "pt2-offset", "apt-tok",
        "pt2-zeros", "apt-mc", "apt-mc"]
MC_PAIRS = [(2, 3), (10, 11)]


def save_random_adapter(directory, config, head, labels, seed, family="bert"):
    model = TaskModel(attach(tiny_encoder(family, seed=0), config), head, label_names=labels).eval()
    randomize_adapter(model, seed=seed)
    save_adapter(model, directory, extra={"task": "test"})
    return directory


@pytest.fixture(scope="module")
def adapter_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    return {name: save_random_adapter(root / name, *spec, seed=i + 1) for i, (name, spec) in enumerate(ADAPTERS.items())}


@pytest.fixture(scope="module")
def multi(adapter_dirs):
    model = MultiAdapterModel(tiny_encoder(seed=0))
    for name, directory in adapter_dirs.items():
        model.add(name, directory)
    return model


def alone_logits(directory, ids, mask, types) -> dict[int, torch.Tensor]:
    """Row -> logits of the adapter loaded alone on its own copy of the base (the independent computation)."""
    model = load_adapter(directory, tiny_encoder(seed=0)).eval()
    with torch.no_grad():
        if model.head_type == "multiple_choice":
            out = {}
            for a, b in MC_PAIRS:
                pair = [a, b]
                scores = model(ids[pair][None], mask[pair][None], types[pair][None]).logits[0]
                out[a], out[b] = scores[:1], scores[1:]
            return out
        logits = model(ids, mask, types).logits
    return dict(enumerate(logits))


def test_mixed_batch_rows_equal_each_adapter_alone(multi, adapter_dirs):
    ids, mask, types = padded_batch(lengths=LENGTHS)
    with torch.inference_mode():
        got = multi(ids, mask, types, adapters=ROWS)
    assert len(got) == len(ROWS)
    for name, directory in adapter_dirs.items():
        expected = alone_logits(directory, ids, mask, types)
        for row in (r for r, a in enumerate(ROWS) if a == name):
            assert got[row].shape == expected[row].shape, (name, row)
            torch.testing.assert_close(got[row], expected[row], atol=1e-5, rtol=1e-5, msg=f"{name} row {row}")


@pytest.mark.parametrize("family", ["roberta", "electra"])
def test_mixed_batch_other_families(tmp_path, family):
    """RoBERTa numbers positions from the padding (offsets shift them differently); ELECTRA has no pooler."""
    names = ["apt-var", "pt2-offset", "pt2-zeros", "apt-tok"]
    multi = MultiAdapterModel(tiny_encoder(family, seed=0))
    dirs = {}
    for seed, name in enumerate(names, 1):
        dirs[name] = save_random_adapter(tmp_path / name, *ADAPTERS[name], seed=seed, family=family)
        multi.add(name, dirs[name])
    ids, mask, types = padded_batch(lengths=(7, 3, 5, 6, 2, 4))
    ids = torch.where(mask.bool(), ids, torch.ones_like(ids))  # RoBERTa pads with id 1
    rows = ["pt2-offset", "apt-var", "pt2-zeros", "apt-tok", "pt2-offset", "apt-var"]
    with torch.inference_mode():
        got = multi(ids, mask, types, adapters=rows)
    for name, directory in dirs.items():
        alone = load_adapter(directory, tiny_encoder(family, seed=0)).eval()
        with torch.no_grad():
            expected = alone(ids, mask, types).logits
        for row in (r for r, a in enumerate(rows) if a == name):
            torch.testing.assert_close(got[row], expected[row], atol=1e-5, rtol=1e-5, msg=f"{name} row {row}")


def test_single_adapter_batch_equals_alone(multi, adapter_dirs):
    """The fast paths (one adapter: shared table, no slot mask) give the adapter's own logits too."""
    ids, mask, types = padded_batch(lengths=(7, 3, 5))
    for name in ("apt-var", "pt2-proj", "pt2-offset", "apt-tok"):
        expected = load_adapter(adapter_dirs[name], tiny_encoder(seed=0)).eval()(ids, mask, types).logits.detach()
        with torch.inference_mode():
            got = torch.stack(multi(ids, mask, types, adapters=[name] * 3))
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_multiple_choice_three_dimensional_input(multi, adapter_dirs):
    ids, mask, types = padded_batch(lengths=(6, 4, 8, 5))
    ids, mask, types = (t.view(2, 2, -1) for t in (ids, mask, types))
    expected = load_adapter(adapter_dirs["apt-mc"], tiny_encoder(seed=0)).eval()(ids, mask, types).logits.detach()
    with torch.inference_mode():
        got = torch.stack(multi(ids, mask, types, adapters=["apt-mc", "apt-mc"]))
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="multiple-choice"):
        multi(ids, mask, types, adapters=["apt-mc", "apt-var"])


def test_prefix_mask_is_what_keeps_rows_apart(multi, monkeypatch):
    """Dropping the slot mask lets rows with shorter prefixes attend to zero padding slots: results change."""
    ids, mask, types = padded_batch(lengths=LENGTHS)
    with torch.inference_mode():
        right = multi(ids, mask, types, adapters=ROWS)
    original = bert_family.gated_prefix_attention

    def without_mask(*args, **kwargs):
        kwargs["prefix_mask"] = None
        return original(*args, **kwargs)

    monkeypatch.setattr(bert_family, "gated_prefix_attention", without_mask)
    with torch.inference_mode():
        wrong = multi(ids, mask, types, adapters=ROWS)
    # apt-var (lengths 3,0,2) sits beside pt2-zeros (0,5,0): both get padded slots in every layer.
    for row in (0, 5, 6):
        assert not torch.allclose(right[row], wrong[row], atol=1e-4), row


def test_add_refuses_finetune_other_base_and_duplicates(tmp_path, adapter_dirs):
    multi = MultiAdapterModel(tiny_encoder(seed=0))
    ft = TaskModel(attach(tiny_encoder(seed=0), PrefixConfig(method="finetune")), "classification", ["a", "b"])
    save_adapter(ft, tmp_path / "ft")
    with pytest.raises(ValueError, match="fine-tuning adapter holds a whole fine-tuned encoder"):
        multi.add("ft", tmp_path / "ft")
    other = TaskModel(attach(tiny_encoder(seed=3), PrefixConfig(prefix_len=2)), "classification", ["a", "b"])
    save_adapter(other, tmp_path / "other")
    with pytest.raises(AdapterMismatchError, match="fingerprint"):
        multi.add("other", tmp_path / "other")
    multi.add("a", adapter_dirs["apt-var"])
    with pytest.raises(ValueError, match="already loaded"):
        multi.add("a", adapter_dirs["pt2-proj"])
    with pytest.raises(FileNotFoundError, match="neither an adapter directory"):
        multi.add("missing", tmp_path / "nothing-here")
    assert multi.names == ["a"]


def test_run_directory_remove_and_unknown_names(tmp_path, adapter_dirs):
    run = tmp_path / "run"
    save_random_adapter(run / "adapter", *ADAPTERS["apt-var"], seed=1)
    multi = MultiAdapterModel(tiny_encoder(seed=0))
    info = multi.add("run", run)
    multi.add("b", adapter_dirs["pt2-zeros"])
    assert info.task == "test" and info.method == "apt" and info.lengths == [3, 0, 2]
    # prefix keys+values (2*5*32) + gates (5*32+5+2 layer scalars) + head (3*32+3)
    assert info.parameters == 2 * 5 * 32 + (5 * 32 + 5 + 2) + (3 * 32 + 3)
    size = multi.adapter_bytes()
    multi.remove("run")
    assert multi.names == ["b"] and "run" not in multi and multi.adapter_bytes() < size
    ids, mask, types = padded_batch(lengths=(4, 3))
    with pytest.raises(KeyError, match="unknown adapter"):
        multi(ids, mask, types, adapters=["b", "run"])
    with pytest.raises(ValueError, match="2 rows"):
        multi(ids, mask, types, adapters=["b"])
    assert not any(p.requires_grad for p in multi.parameters())
    with pytest.raises(ValueError, match="eval mode"):
        multi.train()


def test_refuses_an_adapted_encoder():
    with pytest.raises(ValueError, match="bare transformers encoder"):
        MultiAdapterModel(attach(tiny_encoder(seed=0), PrefixConfig(prefix_len=2)))
