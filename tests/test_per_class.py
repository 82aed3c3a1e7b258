"""benchmarks/per_class.py: per-label and per-entity-type dev scores from val-predictions.json, averaged over seeds
and paired between methods, each checked against counts worked out by hand here."""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

import pytest

from conftest import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
pc = load_benchmark("per_class")


def predictions(path: Path, pairs: list[tuple]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    doc = {"task": "x", "epoch": 1, "split": "val", "examples": [{"id": i, "gold": g, "pred": p}
                                                                 for i, (g, p) in enumerate(pairs)]}
    (path / "val-predictions.json").write_text(json.dumps(doc))
    return path / "val-predictions.json"


def f1(tp: int, fp: int, fn: int) -> float:
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def test_labels(tmp_path):
    # gold a a a b b c; pred a a b b c c -> a: tp 2 fn 1; b: tp 1 fp 1 fn 1; c: tp 1 fp 1
    file = predictions(tmp_path, list(zip("aaabbc", "aabbcc")))
    s = pc.class_scores(file)
    assert set(s) == {"a", "b", "c"}
    assert s["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": f1(2, 0, 1), "support": 3})
    assert s["b"]["f1"] == pytest.approx(f1(1, 1, 1)) and s["b"]["support"] == 2
    assert s["c"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": f1(1, 1, 0), "support": 1})


def test_entity_types(tmp_path):
    # sentence 1: Loc found (2 tokens), Peop tagged as Org; sentence 2: Loc missed, an Org found
    pairs = [(["B-Loc", "I-Loc", "O", "B-Peop"], ["B-Loc", "I-Loc", "O", "B-Org"]),
             (["B-Loc", "O", "B-Org", "I-Org"], ["O", "O", "B-Org", "I-Org"])]
    s = pc.class_scores(predictions(tmp_path, pairs))
    assert s["Loc"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": f1(1, 0, 1), "support": 2})
    assert s["Peop"] == pytest.approx({"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1})
    assert s["Org"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": f1(1, 1, 0), "support": 1})


def test_multiple_choice_has_no_classes(tmp_path):
    file = predictions(tmp_path, [(0, 1), (1, 1)])
    assert pc.class_scores(file) is None
    assert pc.per_class_table({"A": {11: file}, "B": {11: file}}) is None


def test_table_means_over_seeds_and_pairs_by_seed(tmp_path):
    # label x (support 3) and y (support 1); method B gets one more x right than A on seed 11, the same on 12
    gold = "xxxy"
    runs = {("A", 11): "xyyy", ("A", 12): "xxyy", ("B", 11): "xxyy", ("B", 12): "xxyy", ("B", 13): "xxxy"}
    groups: dict = {}
    for (g, seed), pred in runs.items():
        groups.setdefault(g, {})[seed] = predictions(tmp_path / f"{g}{seed}", list(zip(gold, pred)))

    def x_f1(pred: str) -> float:
        tp = sum(a == b == "x" for a, b in zip(gold, pred))
        return f1(tp, sum(b == "x" != a for a, b in zip(gold, pred)), sum(a == "x" != b for a, b in zip(gold, pred)))

    t = pc.per_class_table(groups, diff=("B", "A"))
    assert [r["class"] for r in t["rows"]] == ["x", "y"] and [r["support"] for r in t["rows"]] == [3, 1]
    x = t["rows"][0]
    b = [x_f1(runs[("B", s)]) for s in (11, 12, 13)]
    assert x["cells"]["B"]["values"] == pytest.approx(b) and x["cells"]["B"]["mean"] == pytest.approx(statistics.fmean(b))
    diffs = [x_f1(runs[("B", s)]) - x_f1(runs[("A", s)]) for s in (11, 12)]  # seed 13 has no A run
    assert x["diff"]["seeds"] == [11, 12] and x["diff"]["values"] == pytest.approx(diffs)
    assert diffs[0] > 0 and diffs[1] == 0
    md = pc.per_class_markdown(t)
    assert md.splitlines()[0] == "| class | dev support | A | B | B - A |"
    assert f"| x | 3 | {100 * statistics.fmean([x_f1(runs[('A', s)]) for s in (11, 12)]):.1f} ± " in md


def test_command_line(tmp_path, capsys):
    for g, pred in (("a", "xxyy"), ("b", "xxxy")):
        run = tmp_path / g / "run-s11"
        predictions(run, list(zip("xxxy", pred)))
        (run / "results.json").write_text(json.dumps({"seed": 11, "val_predictions": "val-predictions.json"}))
    assert pc.main([str(tmp_path / "a" / "*"), str(tmp_path / "b" / "*"), "--labels", "PT2", "APT"]) == 0
    out = capsys.readouterr().out
    assert "| class | dev support | PT2 | APT | APT - PT2 |" in out
    assert f"| x | 3 | {100 * f1(2, 0, 1):.1f} | 100.0 | {100 * (1 - f1(2, 0, 1)):+.1f} |" in out
