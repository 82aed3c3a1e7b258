"""Correct where users run it: devices, mixed precision, several processes, loaded adapters, API traps, resume.

Each test here failed on the code before the fix it guards (issue: correctness on GPUs, processes, the API).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from adaprefix import PrefixConfig, TaskModel, attach, load_adapter, save_adapter
from adaprefix.backbones.encoder import weights_fingerprint
from adaprefix.cli import main
from adaprefix.tasks.encode import Collator, Feature, shard_steps
from adaprefix.training import TrainArgs, make_accelerator, predict_logits
from conftest import SHARED_DATA, minilm, padded_batch, randomize_adapter, tiny_encoder

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")
QUICK = ["--data-dir", str(SHARED_DATA), "--limit-train", "16", "--limit-eval", "8", "--batch-size", "8",
         "--no-progress", "--max-length", "48"]


# ---------------------------------------------------------------- devices and precision


@pytest.mark.parametrize("device", DEVICES)
def test_predict_logits_runs_on_the_models_device(device):
    model = TaskModel(attach(tiny_encoder(), PrefixConfig(prefix_len=2)), "classification", label_names=["a", "b"])
    randomize_adapter(model)
    model.to(device).eval()
    ids, mask, types = padded_batch()
    features = [Feature(i, ids[i, : int(mask[i].sum())].tolist(), types[i, : int(mask[i].sum())].tolist(), 0)
                for i in range(3)]
    logits = predict_logits(model, features, Collator(0), batch_size=2)
    with torch.no_grad():
        direct = model(ids.to(device), mask.to(device), types.to(device)).logits.cpu()
    assert sorted(logits) == [0, 1, 2]
    for i in range(3):
        assert logits[i].device.type == "cpu"
        assert (logits[i] - direct[i]).abs().max() < 1e-5


def test_mixed_precision_goes_through_accelerate():
    acc = make_accelerator(TrainArgs(task="cb", output="x", mixed_precision="bf16"))
    assert acc.mixed_precision == "bf16"
    model = TaskModel(attach(tiny_encoder(), PrefixConfig(prefix_len=2)), "classification", label_names=["a", "b"])
    prepared = acc.prepare(model)
    seen = {}
    hook = model.head.classifier.register_forward_hook(lambda m, i, o: seen.update(dtype=o.dtype))
    ids, mask, types = padded_batch()
    out = prepared(ids, mask, types, labels=torch.tensor([0, 1, 0]))
    hook.remove()
    assert seen["dtype"] == torch.bfloat16  # the head's matmul ran under accelerate's autocast
    assert out.loss.dtype == torch.float32  # the loss is computed in float32 whatever the autocast
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="fp16 needs a GPU"):
            make_accelerator(TrainArgs(task="cb", output="x", mixed_precision="fp16"))


def test_bf16_flag_is_an_alias(tmp_path, capsys):
    from adaprefix.cli import build_parser, mixed_precision

    ns = build_parser().parse_args(["train", "--task", "cb", "--output", "x", "--bf16"])
    assert mixed_precision(ns) == "bf16"
    ns = build_parser().parse_args(["train", "--task", "cb", "--output", "x", "--bf16", "--mixed-precision", "no"])
    with pytest.raises(ValueError, match="contradicts"):
        mixed_precision(ns)


# ---------------------------------------------------------------- several processes


@settings(max_examples=300, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=1, max_size=12), world=st.integers(1, 8))
def test_shard_steps_covers_every_example_once_with_equal_step_counts(sizes, world):
    batches, start = [], 0
    for n in sizes:
        batches.append(list(range(start, start + n)))
        start += n
    if start < world:
        with pytest.raises(ValueError, match="cannot be shared"):
            shard_steps(batches, world)
        return
    steps = shard_steps(batches, world)
    seen = [i for step in steps for part in step for i in part]
    assert sorted(seen) == list(range(start))  # each example exactly once
    for step in steps:
        assert len(step) == world  # every process has a share of every step
        assert all(part for part in step)  # and no share is empty
        assert max(map(len, step)) - min(map(len, step)) <= 1


def test_shard_steps_keeps_the_short_batch_wherever_it_falls():
    # the bug: a short batch in the middle of a shuffled order made accelerate's sharding skip examples
    steps = shard_steps([[0, 1, 2, 3], [4, 5], [6, 7, 8, 9]], world=2)
    assert steps == [[[0, 1], [2, 3]], [[4], [5]], [[6, 7], [8, 9]]]


# ---------------------------------------------------------------- loaded adapters


def _saved_adapter(tmp_path: Path, method: str = "apt") -> tuple[Path, torch.nn.Module]:
    encoder = tiny_encoder()
    model = TaskModel(attach(encoder, PrefixConfig(method=method, prefix_len=3 if method != "finetune" else 0)),
                      "classification", label_names=["a", "b"])
    model.train()
    randomize_adapter(model)
    save_adapter(model, tmp_path / "adapter")
    return tmp_path / "adapter", encoder


def test_load_adapter_is_in_eval_mode_and_deterministic(tmp_path):
    directory, _ = _saved_adapter(tmp_path)
    loaded = load_adapter(directory, tiny_encoder())
    assert not any(m.training for m in loaded.modules())
    ids, mask, types = padded_batch()
    with torch.no_grad():
        first, second = loaded(ids, mask, types).logits, loaded(ids, mask, types).logits
    assert torch.equal(first, second)


def test_attach_and_task_model_keep_one_mode():
    for mode in (True, False):
        encoder = tiny_encoder().train(mode)
        model = TaskModel(attach(encoder, PrefixConfig(prefix_len=2)), "classification", label_names=["a", "b"])
        assert {m.training for m in model.modules()} == {mode}


def test_loading_a_finetune_adapter_leaves_the_shared_encoder_alone(tmp_path):
    directory, _ = _saved_adapter(tmp_path, method="finetune")
    shared = tiny_encoder()
    before = weights_fingerprint(shared)
    prefix_model = TaskModel(attach(shared, PrefixConfig(prefix_len=2)), "classification", label_names=["a", "b"])
    ids, mask, types = padded_batch()
    with torch.no_grad():
        prefix_before = prefix_model(ids, mask, types).logits.clone()
    finetuned = load_adapter(directory, shared)
    assert finetuned.encoder.encoder is not shared
    assert weights_fingerprint(shared) == before
    assert all(not p.requires_grad for p in shared.parameters())  # still frozen for the prefix adapter
    with torch.no_grad():
        assert torch.equal(prefix_model(ids, mask, types).logits, prefix_before)
    load_adapter(directory, shared)  # the fingerprint check still passes on the untouched base


def test_packaged_encoder_is_recorded_by_name(tmp_path):
    model = TaskModel(attach(minilm(), PrefixConfig(prefix_len=1)), "classification", label_names=["a", "b"])
    save_adapter(model, tmp_path / "a")
    meta = json.loads((tmp_path / "a" / "adapter_config.json").read_text())
    assert meta["base_model"]["name_or_path"] == "minilm"
    from adaprefix.serving import load_for_serving

    meta["extra"] = {"task": "rte", "max_length": 32}
    (tmp_path / "a" / "adapter_config.json").write_text(json.dumps(meta))
    task, _, loaded, max_length, _ = load_for_serving(tmp_path / "a", None, None)  # resolves "minilm" here
    assert task.name == "rte" and max_length == 32 and not loaded.training


# ---------------------------------------------------------------- API traps


def test_save_adapter_accepts_an_adapted_encoder(tmp_path):
    adapted = attach(tiny_encoder(), PrefixConfig(prefix_len=[2, 0, 3]))
    randomize_adapter(adapted)
    save_adapter(adapted, tmp_path / "bare")
    loaded = load_adapter(tmp_path / "bare", tiny_encoder())
    ids, mask, types = padded_batch()
    adapted.eval()
    with torch.no_grad():
        want = adapted(ids, mask, types).last_hidden_state
        got = loaded(ids, mask, types).hidden_states
    assert loaded.head is None and (got - want).abs().max() < 1e-6


def test_mistakes_get_errors_that_name_them(tmp_path):
    adapted = attach(tiny_encoder(), PrefixConfig(prefix_len=2))
    with pytest.raises(ValueError, match="already carries adaprefix prefixes"):
        attach(adapted, PrefixConfig())
    directory, _ = _saved_adapter(tmp_path)
    with pytest.raises(ValueError, match="already carries adaprefix prefixes"):
        load_adapter(directory, adapted)
    with pytest.raises(ValueError, match="needs label_names"):
        TaskModel(attach(tiny_encoder(), PrefixConfig(prefix_len=2)), "classification")


@pytest.mark.parametrize("flags, message", [
    (["--method", "prefix", "--gate-pooling", "cls"], "--gate-pooling is an APT option"),
    (["--method", "prefix", "--no-token-gate"], "--no-token-gate is an APT option"),
    (["--method", "finetune", "--prefix-len", "8"], "--prefix-len has no meaning with --method finetune"),
    (["--method", "finetune", "--prefix-projection"], "--prefix-projection has no meaning"),
    (["--eval-batch-size", "0"], "--eval-batch-size must be >= 1"),
    (["--shots", "0"], "--shots must be >= 1"),
    (["--limit-train", "0"], "--limit-train must be >= 1"),
    (["--early-stop", "-1"], "--early-stop must be >= 1"),
    (["--max-length", "3"], "--max-length must be >= 8"),
    (["--max-length", "1000"], "exceeds the encoder's 512 positions"),
    (["--model", "/no/such/dir"], "no such folder"),
])
def test_ignored_or_bad_options_are_refused_before_work(tmp_path, capsys, flags, message):
    code = main(["train", "--task", "cb", "--output", str(tmp_path / "r"), "--data-dir", str(tmp_path), *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err


# ---------------------------------------------------------------- resume and fresh runs


@needs_data
def test_resume_refuses_changed_arithmetic_and_pickled_state(tmp_path, capsys):
    run = tmp_path / "run"
    base = ["train", "--task", "cb", "--epochs", "1", "--output", str(run), *QUICK]
    assert main(base) == 0
    (run / "results.json").unlink()
    for extra, what in ((["--attention-dropout", "0"], "attention_dropout"), (["--bf16"], "mixed_precision"),
                        (["--limit-train", "12"], "limit_train")):
        capsys.readouterr()
        assert main([*base, *extra, "--resume"]) == 2
        assert what in capsys.readouterr().err
    # the grad-clip setting is not a flag; change it through the Python API
    from adaprefix.training import train

    args = TrainArgs(task="cb", output=str(run), data_dir=str(SHARED_DATA), limit_train=16, limit_eval=8,
                     batch_size=8, max_length=48, epochs=1, grad_clip=0.5, resume=True, progress=False)
    with pytest.raises(ValueError, match="grad_clip was 1.0, now 0.5"):
        train(args)
    # a state file that needs unpickling of arbitrary objects is refused, not executed
    state = run / "checkpoint" / "trainer_state.pt"
    torch.save({"epoch": 0, "payload": Path("/")}, state)
    capsys.readouterr()
    assert main([*base, "--resume"]) == 2
    assert "unreadable checkpoint state" in capsys.readouterr().err


@needs_data
def test_resume_without_checkpoint_starts_and_fresh_run_replaces_stale_log(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"epoch": 1, "stale": true}\n{"epoch": 2, "stale": true}\n')
    assert main(["train", "--task", "cb", "--epochs", "1", "--output", str(run), *QUICK, "--resume"]) == 0
    assert "no checkpoint" in capsys.readouterr().out
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1] and "stale" not in lines[0]
    assert lines[0]["train_examples_seen"] == 16 and lines[0]["val"]["examples_scored"] == 8


@needs_data
def test_non_finite_loss_stops_with_the_step_named_and_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    from adaprefix.heads import TaskHead

    run = tmp_path / "run"
    args = ["train", "--task", "cb", "--epochs", "2", "--output", str(run), *QUICK]
    real_loss = TaskHead.loss
    calls = {"n": 0}

    def loss_that_explodes_in_epoch_two(self, logits, labels):
        calls["n"] += 1
        value = real_loss(self, logits, labels)
        return value * float("nan") if calls["n"] == 3 else value  # 2 steps per epoch: epoch 2, step 1

    monkeypatch.setattr(TaskHead, "loss", loss_that_explodes_in_epoch_two)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "epoch 2, step 1: the loss is nan" in err and "--lr" in err and "Traceback" not in err
    state = torch.load(run / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["epoch"] == 0 and (run / "adapter" / "adapter.safetensors").is_file()
    del state["cpu_s"]  # as a checkpoint written before results recorded CPU time
    torch.save(state, run / "checkpoint" / "trainer_state.pt")
    monkeypatch.undo()
    assert main([*args, "--resume"]) == 0  # goes on from epoch 1's checkpoint
    results = json.loads((run / "results.json").read_text())
    assert results["best_epoch"] in (1, 2) and results["cpu_s"] is None  # unknown, not the resumed part alone


@needs_data
def test_full_disk_while_checkpointing_keeps_previous_files(tmp_path, capsys, monkeypatch):
    import errno

    import adaprefix.training as training

    run = tmp_path / "run"
    args = ["train", "--task", "cb", "--epochs", "2", "--output", str(run), *QUICK]
    real_save = training.save_file
    calls = {"n": 0}

    def save_file_on_a_full_disk(tensors, path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:  # epoch 2's checkpoint
            with open(path, "wb") as f:
                f.write(b"torn")
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(tensors, path, *a, **k)

    monkeypatch.setattr(training, "save_file", save_file_on_a_full_disk)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "no space left" in err and "previous checkpoint and adapter are intact" in err
    state = torch.load(run / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["epoch"] == 0  # epoch 1's checkpoint, whole
    from safetensors.torch import load_file

    assert load_file(str(run / "checkpoint" / "trainable.safetensors"))  # readable, not the torn bytes
    assert not list(run.glob(".checkpoint.tmp-*"))  # the half-written folder is gone
