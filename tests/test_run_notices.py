"""What a run says about its data before training: examples that max_length cuts (counted here with the tokenizer,
independently of the run's own count) and few-shot classes the file cannot fill (CB's `neutral` has 16 training
examples, counted here from the file)."""

from __future__ import annotations

import json
import random

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


@needs_data
def test_an_eval_subset_scores_the_same_random_dev_records_for_every_seed(tmp_path, capsys):
    """--eval-subset 10 on CB: the 10 dev records drawn with seed 0 (file order), for every seed; the predictions
    file names exactly those records and the accuracy is theirs."""
    val = cb_rows("val")
    expected = [val[i]["idx"] for i in sorted(random.Random(0).sample(range(len(val)), 10))]
    assert expected != [r["idx"] for r in val[:10]]  # a draw, not the head (that is --limit-eval)
    for seed in ("11", "12"):
        run = tmp_path / f"s{seed}"
        assert main(["train", "--task", "cb", "--eval-subset", "10", "--limit-train", "16", "--max-length", "48",
                     "--seed", seed, "--output", str(run), *QUICK]) == 0
        results = json.loads((run / "results.json").read_text())
        assert (results["val_examples"], results["val_records"]) == (10, len(val))
        assert results["best"]["val"]["examples_scored"] == 10
        entries = json.loads((run / "val-predictions.json").read_text())["examples"]
        assert [e["id"] for e in entries] == expected
        gold = {r["idx"]: r["label"] for r in val}
        assert [e["gold"] for e in entries] == [gold[i] for i in expected]
        assert results["best"]["val"]["accuracy"] == pytest.approx(sum(e["gold"] == e["pred"] for e in entries) / 10)
    capsys.readouterr()
    assert main(["train", "--task", "cb", "--eval-subset", "10", "--limit-eval", "4", "--output", str(tmp_path / "x"),
                 *QUICK]) == 2
    assert "--eval-subset draws from the whole dev and test files" in capsys.readouterr().err


@needs_data
def test_a_train_subset_is_the_same_draw_for_every_seed_and_is_recorded(tmp_path, capsys):
    """--train-subset 24 on CB: the records drawn with seed 0 (file order), whichever the run's seed; counted here
    from the file: how many of them max_length 48 cuts, which the run reports for its training split."""
    rows = cb_rows("train")
    tok = AutoTokenizer.from_pretrained(minilm_path())
    drawn = [rows[i] for i in sorted(random.Random(0).sample(range(len(rows)), 24))]
    cut = sum(len(tok(r["premise"], r["hypothesis"])["input_ids"]) > 48 for r in drawn)
    head_cut = sum(len(tok(r["premise"], r["hypothesis"])["input_ids"]) > 48 for r in rows[:24])
    assert cut != head_cut  # the check tells the draw from the file's first 24
    for seed in ("11", "12"):
        run = tmp_path / f"s{seed}"
        assert main(["train", "--task", "cb", "--train-subset", "24", "--limit-eval", "4", "--max-length", "48",
                     "--seed", seed, "--output", str(run), *QUICK]) == 0
        results = json.loads((run / "results.json").read_text())
        assert (results["train_examples"], results["train_records"]) == (24, len(rows))
        assert results["truncated"]["train"] == cut and results["train_args"]["train_subset"] == 24
    capsys.readouterr()
    assert main(["train", "--task", "cb", "--train-subset", "24", "--shots", "4", "--output", str(tmp_path / "x"),
                 *QUICK]) == 2
    assert "--train-subset draws from the whole train file; it does not combine with --shots" in capsys.readouterr().err
