"""Scoring the splits that do not choose the epoch only when the choosing split improves (the default) gives the
same run as scoring every split every epoch (``--eval-every-epoch``): same training, same best epoch, same scores
and predictions there. Checked on CoNLL04 slices with the packaged MiniLM, few-shot (the epoch chosen on the
K-sentence selection split, dev and test scored lazily) and full-data (chosen on dev, test scored lazily)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from adaprefix.cli import main
from conftest import SHARED_DATA

needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")
QUICK = ["--task", "conll04", "--data-dir", str(SHARED_DATA), "--no-progress", "--max-length", "32",
         "--prefix-len", "2", "--lr", "0.05", "--limit-eval", "24", "--batch-size", "4"]


def run_pair(tmp_path: Path, extra: list[str]) -> tuple[Path, Path]:
    lazy, every = tmp_path / "lazy", tmp_path / "every"
    assert main(["train", *QUICK, *extra, "--output", str(lazy)]) == 0
    assert main(["train", *QUICK, *extra, "--eval-every-epoch", "--output", str(every)]) == 0
    return lazy, every


def history(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def improving_epochs(records: list[dict], split: str, metric: str = "f1") -> list[int]:
    """Epochs whose ``split`` score beats every earlier one (strictly), from the every-epoch history."""
    out, best = [], None
    for r in records:
        if best is None or r[split][metric] > best:
            out.append(r["epoch"])
            best = r[split][metric]
    return out


def assert_same_run(lazy: Path, every: Path) -> None:
    a, b = (json.loads((run / "results.json").read_text()) for run in (lazy, every))
    assert a["best_epoch"] == b["best_epoch"] and a["best"] == b["best"]
    assert [r["train_loss"] for r in a["epochs"]] == [r["train_loss"] for r in b["epochs"]]
    assert (lazy / "val-predictions.json").read_text() == (every / "val-predictions.json").read_text()
    wa, wb = (load_file(str(run / "adapter" / "adapter.safetensors")) for run in (lazy, every))
    assert wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)


@needs_data
def test_few_shot_scores_dev_and_test_only_when_the_selection_split_improves(tmp_path):
    lazy, every = run_pair(tmp_path, ["--shots", "4", "--shots-dev", "--epochs", "6"])
    assert_same_run(lazy, every)
    full = history(every)
    assert all("val" in r and "test" in r for r in full)
    improving = improving_epochs(full, "select")
    assert 1 < len(improving) < len(full)  # the slice exercises both branches
    for r in history(lazy):
        assert "select" in r
        assert ("val" in r) == ("test" in r) == (r["epoch"] in improving), r["epoch"]


@needs_data
def test_full_data_scores_test_only_when_dev_improves(tmp_path):
    lazy, every = run_pair(tmp_path, ["--limit-train", "24", "--epochs", "5"])
    assert_same_run(lazy, every)
    improving = improving_epochs(history(every), "val")
    assert 1 < len(improving) < 5
    lazy_history = history(lazy)
    assert all("val" in r for r in lazy_history)
    assert [r["epoch"] for r in lazy_history if "test" in r] == improving
