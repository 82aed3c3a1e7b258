"""What a run says about its data before training: examples that max_length cuts (counted here with the tokenizer,
independently of the run's own count) and few-shot classes the file cannot fill (CB's `neutral` has 16 training
examples, counted here from the file)."""

from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from adaprefix.cli import main
from conftest import SHARED_DATA, minilm_path

needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")
QUICK = ["--data-dir", str(SHARED_DATA), "--batch-size", "16", "--no-progress", "--epochs", "1", "--prefix-len", "2"]


def cb_rows(split: str) -> list[dict]:
    path = SHARED_DATA / "superglue" / "cb" / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@needs_data
def test_examples_cut_by_max_length_are_counted_and_reported(tmp_path, capsys):
    tok = AutoTokenizer.from_pretrained(minilm_path())
    full = [len(tok(r["premise"], r["hypothesis"])["input_ids"]) for r in cb_rows("train")[:24]]
    cut = sum(n > 48 for n in full)
    assert 0 < cut < 24  # the slice has both kinds, so the count means something
    run = tmp_path / "cut"
    assert main(["train", "--task", "cb", "--limit-train", "24", "--limit-eval", "4", "--max-length", "48",
                 "--output", str(run), *QUICK]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["truncated"]["train"] == cut
    out = capsys.readouterr().out
    assert f"cb: --max-length 48 cuts {cut} of 24 train examples ({100 * cut / 24:.0f}%)" in out
    assert main(["train", "--task", "cb", "--limit-train", "24", "--limit-eval", "4", "--max-length", "512",
                 "--output", str(tmp_path / "whole"), *QUICK]) == 0
    assert "cuts" not in capsys.readouterr().out


@needs_data
def test_cb_neutral_comes_up_short_in_the_few_shot_selection_split(tmp_path, capsys):
    neutral = sum(r["label"] == "neutral" for r in cb_rows("train"))
    assert neutral <= 16  # so a selection split beside a K = 16 draw gets none of it
    run = tmp_path / "fs"
    assert main(["train", "--task", "cb", "--shots", "16", "--shots-dev", "--limit-eval", "4", "--max-length", "32",
                 "--output", str(run), *QUICK]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["few_shot_short_classes"] == {"select": {"neutral": neutral - 16}}
    assert "the select draw has fewer than 16 of some classes" in capsys.readouterr().out
