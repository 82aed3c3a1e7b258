"""Few-shot draws that cannot give K of a class: which classes came up short, on hand-made records and on CB,
whose `neutral` class has 16 training examples (counted here from the file, not from the code under test)."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from adaprefix.tasks.fewshot import few_shot_dev_split, sample_few_shot, short_classes
from adaprefix.tasks.records import PairExample, TokenExample
from conftest import SHARED_DATA

needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")


def records(counts: dict[str, int]) -> list[PairExample]:
    return [PairExample(idx=f"{label}{i}", text_a="x", text_b=None, label=label)
            for label, n in counts.items() for i in range(n)]


def test_short_classes_on_hand_made_records():
    train = records({"a": 10, "b": 5, "c": 2})
    sample, drawn = sample_few_shot(train, 4, seed=1)
    assert Counter(e.label for e in sample) == {"a": 4, "b": 4, "c": 2}
    assert short_classes(train, drawn, 4) == {"c": 2}
    select, select_drawn = few_shot_dev_split(train, drawn, 4, seed=1)
    assert Counter(e.label for e in select) == {"a": 4, "b": 1}  # c has none left beside the training draw
    assert short_classes(train, select_drawn, 4) == {"b": 1, "c": 0}
    assert short_classes(train, drawn, 2) == {}


def test_no_per_class_report_for_ner_and_grouped_records():
    ner = [TokenExample(idx=i, words=["w"], tags=["O"]) for i in range(3)]
    assert short_classes(ner, [0], 8) == {}
    multirc = [PairExample(idx=i, text_a="q", text_b="a", label="True", group="g1") for i in range(3)]
    assert short_classes(multirc, [0, 1, 2], 8) == {}


@needs_data
def test_cb_neutral_comes_up_short_and_is_reported(tmp_path, capsys):
    rows = [json.loads(line) for line in (SHARED_DATA / "superglue" / "cb" / "train.jsonl").read_text().splitlines()
            if line.strip()]
    neutral = sum(r["label"] == "neutral" for r in rows)
    assert neutral <= 16  # so a selection split beside a K = 16 draw gets none of it
    from adaprefix.cli import main

    run = tmp_path / "fs"
    assert main(["train", "--task", "cb", "--shots", "16", "--shots-dev", "--data-dir", str(SHARED_DATA),
                 "--limit-eval", "4", "--batch-size", "16", "--no-progress", "--max-length", "32", "--epochs", "1",
                 "--prefix-len", "2", "--output", str(run)]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["few_shot_short_classes"] == {"select": {"neutral": neutral - 16}}
    assert "the select draw has fewer than 16 of some classes" in capsys.readouterr().out
