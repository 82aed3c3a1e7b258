"""Your own data end to end through the CLI: train, eval, predict, probe (README's four commands)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from adaprefix.cli import main

DATA = Path(__file__).resolve().parent / "data" / "custom"
SMALL = ["--epochs", "2", "--batch-size", "8", "--max-length", "32", "--no-progress", "--prefix-len", "2"]


def pairs_csv(path: Path, rows: int, seed: int) -> None:
    """Sentence pairs whose label is decidable from the words: 'same' when both mention one colour."""
    rng = random.Random(seed)
    colours, things = ["red", "blue", "green", "black"], ["car", "house", "bird", "shirt", "cup"]
    lines = ["sentence1,sentence2,label"]
    for _ in range(rows):
        a, b = rng.choice(colours), rng.choice(colours)
        lines.append(f"the {a} {rng.choice(things)} is here,I saw a {b} {rng.choice(things)},"
                     f"{'same' if a == b else 'different'}")
    path.write_text("\n".join(lines) + "\n")


def test_csv_pairs_train_eval_predict_probe(tmp_path, capsys):
    pairs_csv(tmp_path / "train.csv", 64, 0)
    pairs_csv(tmp_path / "dev.csv", 24, 1)
    run = tmp_path / "run"
    assert main(["train", "--task", "classification", "--train-file", str(tmp_path / "train.csv"),
                 "--validation-file", str(tmp_path / "dev.csv"), "--text-columns", "sentence1,sentence2",
                 "--label-column", "label", "--output", str(run), *SMALL]) == 0
    out = capsys.readouterr().out
    assert "class counts in training" in out
    results = json.loads((run / "results.json").read_text())
    assert results["task"] == "classification" and {"accuracy", "macro_f1"} <= set(results["best"]["val"])
    meta = json.loads((run / "adapter" / "adapter_config.json").read_text())
    assert meta["label_names"] == ["different", "same"] and meta["extra"]["custom_task"]["label_column"] == "label"

    (tmp_path / "train.csv").unlink()  # eval and predict rebuild the task from the adapter, not the files
    assert main(["eval", str(run)]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["accuracy"] == pytest.approx(results["best"]["val"]["accuracy"])  # the best epoch's adapter
    new = tmp_path / "new.jsonl"
    new.write_text('{"sentence1": "the red car is here", "sentence2": "I saw a red cup"}\n'
                   '{"sentence1": "the blue bird is here", "sentence2": "I saw a green house"}\n')
    assert main(["predict", str(run), "--input", str(new), "--output", str(tmp_path / "p.jsonl")]) == 0
    preds = [json.loads(x) for x in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(preds) == 2 and set(preds[0]["probs"]) == {"different", "same"}
    assert main(["probe", str(run), "--split", "val", "--no-progress"]) == 0
    assert (run / "probe" / "gates.png").is_file()
    assert json.loads((run / "probe" / "gates.json").read_text())["examples"] == 24


def test_conll_tokens_train_and_predict(tmp_path, capsys):
    run = tmp_path / "ner"
    assert main(["train", "--task", "token-classification", "--train-file", str(DATA / "ner_train.conll"),
                 "--validation-file", str(DATA / "ner_dev.conll"), "--output", str(run), *SMALL]) == 0
    results = json.loads((run / "results.json").read_text())
    assert results["selection_metric"] == "val.f1"
    new = tmp_path / "tokens.jsonl"
    new.write_text('{"tokens": ["Mary", "visited", "Paris", "."]}\n')
    assert main(["predict", str(run), "--input", str(new), "--output", str(tmp_path / "t.jsonl")]) == 0
    pred = json.loads((tmp_path / "t.jsonl").read_text())
    assert pred["tokens"] == ["Mary", "visited", "Paris", "."] and len(pred["tags"]) == 4


def test_own_data_options_need_an_own_data_task(tmp_path, capsys):
    assert main(["train", "--task", "cb", "--train-file", "x.csv", "--output", str(tmp_path / "r")]) == 2
    assert "own-data options need --task classification" in capsys.readouterr().err
    assert main(["train", "--task", "classification", "--output", str(tmp_path / "r")]) == 2
    assert "Traceback" not in capsys.readouterr().err
