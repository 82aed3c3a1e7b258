"""HF habits: run files (--config), trackers (--report-to), --metric and --class-weights."""

from __future__ import annotations

import json

import pytest
import torch

from adaprefix.cli import main
from conftest import SHARED_DATA

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")
QUICK = ["--data-dir", str(SHARED_DATA), "--limit-train", "16", "--limit-eval", "8", "--batch-size", "8",
         "--no-progress", "--max-length", "48", "--epochs", "1"]


def test_config_file_and_the_runs_own_resolved_config(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("task: cb\nmethod: prefix\nprefix-len: [2, 2, 2, 2, 2, 3]\nlr: 0.02\nseed: 12\n"
                   f"data_dir: {SHARED_DATA}\nlimit_train: 16\nlimit_eval: 8\nbatch_size: 8\nmax_length: 48\nepochs: 1\n")
    assert main(["train", "--config", str(cfg), "--output", str(tmp_path / "a"), "--seed", "13", "--no-progress"]) == 0
    first = json.loads((tmp_path / "a" / "results.json").read_text())
    assert first["train_args"]["lr"] == 0.02 and first["prefix_lengths"] == [2, 2, 2, 2, 2, 3]
    assert first["seed"] == 13  # the flag wins over the file
    # the run keeps its resolved settings; they rerun the same arithmetic
    assert main(["train", "--config", str(tmp_path / "a" / "train_config.yaml"), "--output", str(tmp_path / "b")]) == 0
    second = json.loads((tmp_path / "b" / "results.json").read_text())
    assert second["epochs"][0]["train_loss"] == first["epochs"][0]["train_loss"]
    capsys.readouterr()
    cfg.write_text("task: cb\nlearning_rate: 0.1\n")
    assert main(["train", "--config", str(cfg), "--output", str(tmp_path / "c")]) == 2
    assert "unknown option 'learning_rate'" in capsys.readouterr().err


def test_report_to_tensorboard_writes_event_files(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "run"
    assert main(["train", "--task", "cb", "--method", "apt", "--prefix-len", "2", "--report-to", "tensorboard",
                 "--output", str(run), *QUICK, "--epochs", "2"]) == 0
    events = list((run / "logs").rglob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert {"train/loss", "val/accuracy", "lr", "gates/lambda_0"} <= set(tags)
    results = json.loads((run / "results.json").read_text())
    logged = [e.value for e in acc.Scalars("val/accuracy")]
    assert logged == pytest.approx([e["val"]["accuracy"] for e in results["epochs"]])


def test_metric_choice_and_balanced_class_weights(tmp_path, capsys, monkeypatch):
    from sklearn.utils.class_weight import compute_class_weight

    from adaprefix.heads import TaskHead
    from adaprefix.tasks import get_task

    seen = {}
    real_loss = TaskHead.loss

    def spy(self, logits, labels):
        seen["weights"] = None if self.class_weights is None else self.class_weights.clone()
        return real_loss(self, logits, labels)

    monkeypatch.setattr(TaskHead, "loss", spy)
    run = tmp_path / "run"
    assert main(["train", "--task", "cb", "--metric", "macro_f1", "--class-weights", "balanced",
                 "--output", str(run), *QUICK, "--limit-train", "40"]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["selection_metric"] == "val.macro_f1"
    task = get_task("cb")
    gold = [e.label for e in task.load("train", SHARED_DATA)[:40]]
    import numpy as np

    expected = compute_class_weight("balanced", classes=np.array(task.label_names), y=gold)
    assert seen["weights"].tolist() == pytest.approx(expected.tolist())
    capsys.readouterr()
    assert main(["train", "--task", "cb", "--metric", "f1", "--output", str(tmp_path / "x"), *QUICK]) == 2
    assert "--metric f1: cb reports" in capsys.readouterr().err
