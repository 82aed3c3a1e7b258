"""Hostile or damaged adapter files: one sentence and exit code 2 through the real CLI, no traceback, no code run."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from adaprefix import PrefixConfig, TaskModel, attach, save_adapter
from adaprefix.cli import main
from conftest import minilm, padded_batch, randomize_adapter

MARKER = Path("/tmp/adaprefix-pickle-ran")


class Payload:
    """Unpickling this would create MARKER: proof that a loader ran code from a file."""

    def __reduce__(self):
        return (MARKER.touch, ())


@pytest.fixture(scope="module")
def good_adapter(tmp_path_factory) -> Path:
    model = TaskModel(attach(minilm(), PrefixConfig(method="apt", prefix_len=2)), "classification",
                      label_names=["entailment", "contradiction", "neutral"])
    randomize_adapter(model, std=0.05)
    directory = tmp_path_factory.mktemp("adapters") / "good"
    save_adapter(model, directory, extra={"task": "cb", "max_length": 32})
    return directory


def edit_config(d: Path, change) -> None:
    meta = json.loads((d / "adapter_config.json").read_text())
    change(meta)
    (d / "adapter_config.json").write_text(json.dumps(meta))


def edit_tensors(d: Path, change) -> None:
    tensors = load_file(str(d / "adapter.safetensors"))
    change(tensors)
    save_file(tensors, str(d / "adapter.safetensors"))


def truncate(d):
    data = (d / "adapter.safetensors").read_bytes()
    (d / "adapter.safetensors").write_bytes(data[: len(data) // 2])


def pickled(d):
    (d / "adapter.safetensors").write_bytes(pickle.dumps({"prefix.0.key": Payload()}))


def torch_saved(d):
    torch.save({"prefix.0.key": torch.zeros(2, 384)}, d / "adapter.safetensors")


def other_base(d):
    edit_config(d, lambda m: m["base_model"].update(fingerprint="0" * 64))


CASES = {
    "truncated-weights": (truncate, "not a readable safetensors file"),
    "pickle-bytes": (pickled, "not a readable safetensors file"),
    "torch-save-file": (torch_saved, "not a readable safetensors file"),
    "weights-missing": (lambda d: (d / "adapter.safetensors").unlink(), "adapter.safetensors: not found"),
    "config-missing": (lambda d: (d / "adapter_config.json").unlink(), "neither an adapter directory"),
    "config-not-json": (lambda d: (d / "adapter_config.json").write_text("{oops"), "not valid JSON"),
    "config-not-utf8": (lambda d: (d / "adapter_config.json").write_bytes(b"\xff\xfe{"), "not UTF-8"),
    "config-a-list": (lambda d: (d / "adapter_config.json").write_text("[1, 2]"), "not an adaprefix adapter"),
    "other-format": (lambda d: edit_config(d, lambda m: m.update(format="peft")), "not an adaprefix adapter"),
    "no-prefix-config": (lambda d: edit_config(d, lambda m: m.pop("prefix_config")), "lacks ['prefix_config']"),
    "newer-version": (lambda d: edit_config(d, lambda m: m.update(format_version=99)), "format version 99"),
    "unknown-method": (lambda d: edit_config(d, lambda m: m["prefix_config"].update(method="lora")),
                       "method must be one of"),
    "unknown-field": (lambda d: edit_config(d, lambda m: m["prefix_config"].update(rank=8)), "unknown PrefixConfig"),
    "lengths-not-list": (lambda d: edit_config(d, lambda m: m.update(prefix_lengths="2")), "prefix_lengths must be"),
    "another-base": (other_base, "adapter was trained on base"),
    "wrong-shape": (lambda d: edit_tensors(d, lambda t: t.update({"prefix.0.key": torch.zeros(3, 384)})),
                    "prefix.0.key has shape (3, 384), expected (2, 384)"),
    "missing-tensor": (lambda d: edit_tensors(d, lambda t: t.pop("gate.3.layer")), "missing ['gate.3.layer']"),
    "extra-tensor": (lambda d: edit_tensors(d, lambda t: t.update({"backdoor": torch.zeros(1)})),
                     "unexpected ['backdoor']"),
    "nan-values": (lambda d: edit_tensors(d, lambda t: t["prefix.1.value"].fill_(float("nan"))), "NaN or infinite"),
    "unknown-task": (lambda d: edit_config(d, lambda m: m["extra"].update(task="sst9")), "unknown task 'sst9'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_adapter_is_refused_with_one_sentence(case, good_adapter, tmp_path, capsys):
    damage, message = CASES[case]
    directory = tmp_path / "adapter"
    shutil.copytree(good_adapter, directory)
    damage(directory)
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"premise": "It rains.", "hypothesis": "It is wet.", "idx": 0}\n')
    MARKER.unlink(missing_ok=True)
    code = main(["predict", str(directory), "--input", str(inp), "--output", str(tmp_path / "out.jsonl")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(directory) in err  # names the file or folder
    assert not (tmp_path / "out.jsonl").exists()
    assert not MARKER.exists()  # nothing in the file ran


def test_the_good_adapter_predicts(good_adapter, tmp_path):
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"premise": "It rains.", "hypothesis": "It is wet.", "idx": 0}\n')
    assert main(["predict", str(good_adapter), "--input", str(inp), "--output", str(tmp_path / "o.jsonl")]) == 0
    assert json.loads((tmp_path / "o.jsonl").read_text())["label"] in ("entailment", "contradiction", "neutral")
