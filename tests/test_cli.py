"""End to end through the command line on small slices of ../shared/data with the packaged MiniLM."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import adaprefix.training as training
from adaprefix.cli import main
from conftest import SHARED_DATA, interrupt_after_checkpoint

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")
QUICK = ["--data-dir", str(SHARED_DATA), "--limit-train", "24", "--limit-eval", "12", "--batch-size", "8",
         "--no-progress", "--max-length", "64"]


def read_results(run: Path) -> dict:
    return json.loads((run / "results.json").read_text())


@pytest.mark.parametrize("task, method, metric", [
    ("cb", "apt", "macro_f1"), ("copa", "prefix", "accuracy"), ("conll04", "apt", "f1"),
])
def test_train_eval_predict(tmp_path, capsys, task, method, metric):
    run = tmp_path / "run"
    assert main(["train", "--task", task, "--method", method, "--epochs", "2", "--output", str(run), *QUICK]) == 0
    results = read_results(run)
    assert results["task"] == task and results["method"] == method and results["best_epoch"] in (1, 2)
    assert len(results["epochs"]) == 2 and metric in results["best"]["val"]
    assert results["trainable_params"] > 0 and results["train_examples_per_s"] > 0
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]
    if task == "conll04":
        assert "test" in results["best"]  # NER reports test at the best val epoch
    capsys.readouterr()

    assert main(["eval", str(run), "--split", "val"]) == 0
    scores = json.loads(capsys.readouterr().out)
    # the full val split here (no --limit-eval): the metric exists and is a proportion
    assert 0.0 <= scores[metric] <= 1.0

    source = {"cb": "superglue/cb/test.jsonl", "copa": "superglue/copa/test.jsonl", "conll04": None}[task]
    inp = tmp_path / "in.jsonl"
    if source:
        inp.write_text("".join((SHARED_DATA / source).read_text().splitlines(keepends=True)[:3]))
    else:
        inp.write_text('{"tokens": ["John", "lives", "in", "Boston", "."]}\n{"tokens": ["Hi"]}\n')
    out = tmp_path / "preds.jsonl"
    assert main(["predict", str(run / "adapter"), "--input", str(inp), "--output", str(out)]) == 0
    preds = [json.loads(x) for x in out.read_text().splitlines()]
    if task == "cb":
        assert len(preds) == 3 and set(preds[0]["probs"]) == {"entailment", "contradiction", "neutral"}
        assert sum(preds[0]["probs"].values()) == pytest.approx(1.0, abs=1e-4)
        assert preds[0]["label"] == max(preds[0]["probs"], key=preds[0]["probs"].get)
    elif task == "copa":
        assert len(preds) == 3 and preds[0]["label"] in (0, 1) and len(preds[0]["probs"]) == 2
    else:
        assert preds[0]["tokens"] == ["John", "lives", "in", "Boston", "."] and len(preds[0]["tags"]) == 5


def test_bad_input_is_a_clear_cli_error(tmp_path, capsys):
    bad = tmp_path / "data" / "superglue" / "cb"
    bad.mkdir(parents=True)
    (bad / "train.jsonl").write_text('{"premise": "p", "hypothesis": "h", "label": "entailment", "idx": 0}\n{"premise": 1\n')
    (bad / "val.jsonl").write_text('{"premise": "p", "hypothesis": "h", "label": "entailment", "idx": 0}\n')
    code = main(["train", "--task", "cb", "--data-dir", str(tmp_path / "data"), "--output", str(tmp_path / "r"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "train.jsonl:2: malformed JSON" in err and "Traceback" not in err
    assert main(["train", "--task", "nope", "--output", str(tmp_path / "r")]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err
    assert main(["train", "--task", "cb", "--prefix-len", "4,4", "--output", str(tmp_path / "r"), *QUICK]) == 2
    assert "prefix_len has 2 entries but the encoder has 6 layers" in capsys.readouterr().err


def test_resume_after_interruption_matches_uninterrupted(tmp_path, monkeypatch):
    args = ["train", "--task", "cb", "--method", "apt", "--epochs", "3", *QUICK]
    assert main([*args, "--output", str(tmp_path / "full")]) == 0
    full = read_results(tmp_path / "full")

    restore = interrupt_after_checkpoint(monkeypatch, 2)  # the process is stopped after epoch 2's checkpoint
    assert main([*args, "--output", str(tmp_path / "cut")]) == 130
    assert not (tmp_path / "cut" / "results.json").exists()
    restore()
    # the CPU time of the run's first part is carried over: mark it with a value no run here reaches
    state_file = tmp_path / "cut" / training.CHECKPOINT / training.STATE_FILE
    state = training.torch.load(state_file, weights_only=True)
    assert 0 < state["cpu_s"]
    training.torch.save({**state, "cpu_s": 1e6}, state_file)
    assert main([*args, "--output", str(tmp_path / "cut"), "--resume"]) == 0
    resumed = read_results(tmp_path / "cut")
    threads = resumed["torch_threads"]
    assert threads == training.torch.get_num_threads()
    assert 1e6 < resumed["cpu_s"] < 1e6 + (threads + 1) * resumed["wall_s"]  # the resumed part: under every thread busy
    assert 0 < full["cpu_s"] < (threads + 1) * full["wall_s"]
    assert [e["val"] for e in resumed["epochs"]] == [e["val"] for e in full["epochs"]]
    assert [e["train_loss"] for e in resumed["epochs"]] == pytest.approx([e["train_loss"] for e in full["epochs"]], abs=1e-6)
    assert (tmp_path / "full" / "adapter" / "adapter.safetensors").read_bytes() == \
        (tmp_path / "cut" / "adapter" / "adapter.safetensors").read_bytes()


def test_resume_with_more_epochs_extends_a_ner_run_into_the_fresh_longer_run(tmp_path, capsys):
    # NER's rate decays 0.95 per epoch whatever the run's length: a finished 2-epoch run resumed with --epochs 3
    # (then 4) must be the 4-epoch run trained in one go, epoch by epoch and in its best adapter
    args = ["train", "--task", "conll04", "--method", "apt", *QUICK]
    assert main([*args, "--epochs", "4", "--output", str(tmp_path / "fresh")]) == 0
    fresh = read_results(tmp_path / "fresh")
    grown = tmp_path / "grown"
    assert main([*args, "--epochs", "2", "--output", str(grown)]) == 0
    for epochs in (3, 4):
        capsys.readouterr()
        assert main([*args, "--epochs", str(epochs), "--output", str(grown), "--resume"]) == 0
        assert f"after epoch {epochs - 1} of {epochs} (extended: planned for {epochs - 1})" in capsys.readouterr().out
    extended = read_results(grown)
    assert extended["extended_from"] == [2, 3] and fresh["extended_from"] == []
    assert [e["val"] for e in extended["epochs"]] == [e["val"] for e in fresh["epochs"]]
    assert [e["lr"] for e in extended["epochs"]] == pytest.approx([e["lr"] for e in fresh["epochs"]], rel=1e-12)
    assert [e["train_loss"] for e in extended["epochs"]] == pytest.approx([e["train_loss"] for e in fresh["epochs"]],
                                                                         abs=1e-6)
    assert extended["best_epoch"] == fresh["best_epoch"] and extended["train_args"]["epochs"] == 4
    assert (grown / "adapter" / "adapter.safetensors").read_bytes() == \
        (tmp_path / "fresh" / "adapter" / "adapter.safetensors").read_bytes()
    # fewer epochs than the checkpoint has done is refused, not silently cut
    assert main([*args, "--epochs", "3", "--output", str(grown), "--resume"]) == 2
    assert "is after epoch 4; --epochs 3 is fewer" in capsys.readouterr().err


def test_resume_with_more_epochs_is_refused_under_linear_decay(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--task", "cb", "--method", "prefix", "--output", str(run), *QUICK]
    assert main([*args, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main([*args, "--epochs", "2", "--resume"]) == 2  # SuperGLUE: every step's rate depends on the length
    err = capsys.readouterr().err
    assert "epochs was 1, now 2 (the linear rate decay spans every epoch" in err and "Traceback" not in err
    assert read_results(run)["epochs"][-1]["epoch"] == 1  # the finished run is left as it was


def test_crash_while_writing_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    run = tmp_path / "run"
    args = ["train", "--task", "cb", "--epochs", "2", "--output", str(run), *QUICK]
    real_save = training.torch.save
    calls = {"n": 0}

    def failing_save(obj, path, *a, **k):
        calls["n"] += 1
        if calls["n"] == 2:
            Path(path).write_bytes(b"half")  # a torn write
            raise OSError("disk full")
        return real_save(obj, path, *a, **k)

    monkeypatch.setattr(training.torch, "save", failing_save)
    with pytest.raises(OSError):
        main(args)
    state = training.torch.load(run / training.CHECKPOINT / training.STATE_FILE, weights_only=True)  # plain data: no unpickling
    assert state["epoch"] == 0  # epoch 1's checkpoint, intact
    monkeypatch.undo()
    assert main([*args, "--resume"]) == 0
    assert read_results(run)["epochs"][-1]["epoch"] == 2


def test_runs_under_accelerate_launch_with_two_processes(tmp_path):
    accelerate = Path(sys.executable).parent / "accelerate"
    cli = Path(sys.executable).parent / "adaprefix"
    run = tmp_path / "ddp"
    # accelerate 1.15's `--cpu` starts one process unless MPI is set up; `--multi_gpu` starts torchrun workers, and
    # adaprefix's Accelerator falls back to CPU (gloo) when there is no GPU.
    # 25 training sentences, 2 x 8 per step: steps of 16 and 9, split 8/8 and 5/4 between the processes
    cmd = [str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", str(cli), "train", "--task", "conll04", "--epochs", "2", "--output", str(run), *QUICK,
           "--limit-train", "25", "--limit-eval", "13"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = read_results(run)
    assert results["processes"] == 2
    assert set(results["best"]) == {"val", "test"} and {"f1", "precision", "recall"} <= set(results["best"]["val"])
    for epoch in results["epochs"]:  # every example trained on once per epoch, every dev/test example scored once
        assert epoch["train_examples_seen"] == 25
        assert epoch["val"]["examples_scored"] == 13 and epoch["test"]["examples_scored"] == 13
    single = tmp_path / "single"
    assert main(["train", "--task", "conll04", "--epochs", "1", "--output", str(single), *QUICK]) == 0
    assert set(read_results(single)) == set(results)  # same results format


def test_early_stop_and_resume_of_a_stopped_run(tmp_path, capsys):
    run = tmp_path / "run"
    # a learning rate too small to change any prediction: val never improves after epoch 1
    args = ["train", "--task", "cb", "--epochs", "5", "--lr", "1e-12", "--early-stop", "1", "--output", str(run), *QUICK]
    assert main(args) == 0
    assert "early stop" in capsys.readouterr().out
    assert [e["epoch"] for e in read_results(run)["epochs"]] == [1, 2]
    assert main([*args, "--resume"]) == 0
    assert [e["epoch"] for e in read_results(run)["epochs"]] == [1, 2]
