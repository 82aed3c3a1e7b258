"""Few-shot draws that cannot give K of a class: which classes came up short, on hand-made records (the run-level
report on CB is in test_run_notices.py); the fixed training subset (--train-subset)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from adaprefix.tasks.fewshot import draw_subset, few_shot_dev_split, sample_few_shot, short_classes
from adaprefix.tasks.records import PairExample, TokenExample


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


def test_train_subset_is_one_fixed_random_draw_in_file_order():
    train = records({"a": 30, "b": 20})
    subset = draw_subset(train, 12)
    positions = [train.index(e) for e in subset]
    assert len(set(positions)) == 12 and positions == sorted(positions)  # 12 distinct records, file order kept
    assert positions != list(range(12))  # a random draw, not the file's head (that is --limit-train)
    random.seed(5)  # neither the global random state nor a run's seed plays a part: every run gets this draw
    assert draw_subset(train, 12) == subset
    assert draw_subset(train, 12, seed=1) != subset
    assert draw_subset(train, 50) == train and draw_subset(train, 80) == train  # no more than the file holds
    with pytest.raises(ValueError, match="--train-subset must be >= 1"):
        draw_subset(train, 0)


def test_a_subset_of_grouped_records_takes_whole_questions():
    # MultiRC-like: 40 questions of 1-5 answer rows each, rows of a question side by side as in the file
    sizes = [1 + (q * 7) % 5 for q in range(40)]
    rows = [PairExample(idx=(q, a), text_a="p", text_b="q a", label="True", group=f"q{q}")
            for q, n in enumerate(sizes) for a in range(n)]
    subset = draw_subset(rows, 30, option="--eval-subset")
    groups = {r.group for r in subset}
    assert all(sum(r.group == g for r in subset) == sizes[int(g[1:])] for g in groups)  # every answer of each question
    assert 30 <= len(subset) < 30 + max(sizes)  # questions added until 30 rows are in, no more
    positions = [rows.index(r) for r in subset]
    assert positions == sorted(positions) and positions != list(range(len(subset)))  # file order, not the head
    assert draw_subset(rows, 30) == subset  # one fixed draw
    with pytest.raises(ValueError, match="--eval-subset must be >= 1"):
        draw_subset(rows, 0, option="--eval-subset")
