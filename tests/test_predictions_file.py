"""val-predictions.json: the best epoch's per-example dev predictions, written by training on tiny slices of
../shared/data with the packaged MiniLM, rescored here with the task's own scorer and checked against the saved
best adapter's predictions, through a resume, and carried by ``benchmarks/paper.py --collect``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import adaprefix.training as training
from adaprefix.adapter_io import load_adapter
from adaprefix.tasks import get_task
from adaprefix.tasks.encode import Collator, encode
from adaprefix.training import TrainArgs, decode, load_backbone, predict_logits, prediction_records, train
from conftest import SHARED_DATA, interrupt_after_checkpoint, load_benchmark

pytestmark = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")
# RTE, full fine-tuning: val accuracy 0.469, 0.406, 0.594, 0.531 over the 4 epochs, so the best epoch (3) is
# neither the first nor the last and epoch 2 does not improve
RTE = dict(task="rte", method="finetune", lr=5e-5, epochs=4, limit_train=48, limit_eval=32, batch_size=8,
           max_length=64, data_dir=str(SHARED_DATA), progress=False)


def run_args(output: Path, **settings) -> TrainArgs:
    return TrainArgs(output=str(output), **settings)


def read(path: Path) -> dict:
    return json.loads(path.read_text())


def repredict(run: Path, task, examples: list, max_length: int) -> list:
    """Predictions of the saved best adapter, computed afresh: independent of what training kept in memory."""
    tokenizer, encoder = load_backbone("minilm")
    model = load_adapter(run / "adapter", encoder)
    features = encode(examples, tokenizer, task.label_names, max_length)
    return decode(task, examples, features, predict_logits(model, features, Collator(tokenizer.pad_token_id), 16))


def check_predictions_file(run: Path, settings: dict) -> dict:
    """The file is the best epoch's, names every val example with its gold label in split order, rescores to the
    recorded best val scores, and holds the saved best adapter's predictions. Returns the document."""
    results = read(run / "results.json")
    assert results["val_predictions"] == training.VAL_PREDICTIONS
    doc = read(run / training.VAL_PREDICTIONS)
    assert doc["epoch"] == results["best_epoch"] and doc["split"] == "val"
    assert doc["selection_metric"] == results["selection_metric"]
    task = get_task(settings["task"])
    val = task.load("val", SHARED_DATA)[: settings["limit_eval"]]
    gold = [e.tags if hasattr(e, "tags") else e.label for e in val]
    assert [e["id"] for e in doc["examples"]] == [json.loads(json.dumps(e.idx)) for e in val]
    assert [e["gold"] for e in doc["examples"]] == gold
    records, preds = prediction_records(task, doc["examples"])
    recorded = {k: v for k, v in results["best"]["val"].items() if k != "examples_scored"}
    assert task.score(records, preds) == recorded
    assert task.score(val, preds) == recorded  # the rebuilt records score as the real ones do
    assert preds == repredict(run, task, val, settings["max_length"])
    return doc


@pytest.fixture(scope="module")
def rte_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("rte") / "run"
    train(run_args(run, **RTE))
    return run


def test_file_holds_the_best_epoch_not_the_last(rte_run):
    results = read(rte_run / "results.json")
    history = [e["val"]["accuracy"] for e in results["epochs"]]
    # preconditions that make this test able to tell the best epoch from the first and the last
    assert 1 < results["best_epoch"] < len(history), f"val accuracy per epoch {history}: no interior best epoch"
    assert history[results["best_epoch"] - 1] != history[-1]
    doc = check_predictions_file(rte_run, RTE)
    correct = sum(e["gold"] == e["pred"] for e in doc["examples"])
    assert correct / len(doc["examples"]) == history[results["best_epoch"] - 1] == doc["scores"]["accuracy"]


def test_resumed_run_keeps_the_best_epochs_file(rte_run, tmp_path, monkeypatch):
    run = tmp_path / "cut"
    best = read(rte_run / "results.json")["best_epoch"]
    restore = interrupt_after_checkpoint(monkeypatch, best)
    with pytest.raises(KeyboardInterrupt):
        train(run_args(run, **RTE))
    assert read(run / training.VAL_PREDICTIONS)["epoch"] == best
    restore()
    train(run_args(run, **RTE, resume=True))  # only later epochs run: none improves, the file must stay
    assert (run / training.VAL_PREDICTIONS).read_bytes() == (rte_run / training.VAL_PREDICTIONS).read_bytes()
    check_predictions_file(run, RTE)


@pytest.mark.parametrize("task, method", [("cb", "apt"), ("copa", "prefix"), ("multirc", "apt"), ("conll04", "apt")])
def test_every_task_kind_rescores_from_the_file(tmp_path, task, method):
    settings = dict(task=task, method=method, epochs=2, limit_train=24, limit_eval=12, batch_size=8, max_length=64,
                    data_dir=str(SHARED_DATA), progress=False)
    train(run_args(tmp_path / "run", **settings))
    doc = check_predictions_file(tmp_path / "run", settings)
    if task == "multirc":
        assert all(e["group"] for e in doc["examples"])  # EM needs each answer's question
    if task == "conll04":
        assert all(len(e["pred"]) == len(e["gold"]) for e in doc["examples"])


def test_fresh_run_drops_a_stale_predictions_file(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / training.VAL_PREDICTIONS).write_text('{"epoch": 7}\n')
    training.start_fresh(run)
    assert not (run / training.VAL_PREDICTIONS).exists()


def load_paper():
    return load_benchmark("paper")


def test_paper_collect_copies_the_predictions_file(rte_run, tmp_path):
    paper = load_paper()
    sweep = tmp_path / "out" / "main" / "rte-finetune-lr"
    (sweep / "runs").mkdir(parents=True)
    (sweep / "sweep.json").write_text("{}\n")
    import shutil

    shutil.copytree(rte_run, sweep / "runs" / "finetune-lr5e-05-s11")
    assert paper.main(["--output", str(tmp_path / "out"), "--collect", str(tmp_path / "collected")]) == 0
    dest = tmp_path / "collected" / "main" / "rte-finetune-lr" / "finetune-lr5e-05-s11"
    assert (dest / "val-predictions.json").read_bytes() == (rte_run / training.VAL_PREDICTIONS).read_bytes()
    assert (dest / "results.json").read_bytes() == (rte_run / "results.json").read_bytes()
    assert not (dest / "checkpoint").exists()


def test_paper_methods_restrict_main_and_fewshot(tmp_path, capsys):
    paper = load_paper()
    out = str(tmp_path / "out")
    assert paper.main(["--output", out, "--dry-run", "--phase", "main", "fewshot", "--tasks", "cb",
                       "--methods", "apt", "finetune"]) == 0
    sweeps = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("[paper]")]
    assert sweeps == ["main/cb-apt-lr:", "main/cb-finetune-lr:", "fewshot/cb-k16-apt:", "fewshot/cb-k16-finetune:",
                      "fewshot/cb-k32-apt:", "fewshot/cb-k32-finetune:"]
    assert paper.main(["--output", out, "--dry-run", "--phase", "main", "--tasks", "cb"]) == 0
    sweeps = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line.startswith("[paper]")]
    assert sweeps == ["main/cb-prefix-lr:", "main/cb-apt-lr:", "main/cb-finetune-lr:"]


@pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")
def test_paper_length_stage_reuses_the_lr_stage_run_instead_of_retraining_it(tmp_path):
    """Stage 2 (length 8 vs 16 at the chosen lr) finds length 16 already trained by stage 1 (same configuration
    and seed): it is copied in, and only length 8 trains."""
    paper = load_paper()
    out = tmp_path / "paper"
    assert paper.main(["--output", str(out), "--results", str(tmp_path / "none"), "--data-dir", str(SHARED_DATA),
                       "--phase", "main", "--tasks", "rte", "--methods", "prefix", "--", "--epochs", "1",
                       "--limit-train", "16", "--limit-eval", "8", "--max-length", "48", "--batch-size", "8"]) == 0
    chosen = paper.Protocol.chosen(out / "main" / "rte-prefix-lr", "prefix")
    stage1 = out / "main" / "rte-prefix-lr" / "runs" / f"prefix-lr{chosen['lr']}-s11"
    stage2 = out / "main" / "rte-prefix-len" / "runs"
    assert (stage2 / "prefix-prefix_len16-s11" / "results.json").read_bytes() == (stage1 / "results.json").read_bytes()
    assert (stage2 / "prefix-prefix_len16-s11" / training.VAL_PREDICTIONS).is_file()
    assert not (stage2 / "prefix-prefix_len16-s11" / "metrics.jsonl").exists()  # not trained here
    assert (stage2 / "prefix-prefix_len8-s11" / "metrics.jsonl").is_file()  # the other length trained
    assert sorted(p.name for p in (out / "main" / "rte-prefix-seeds" / "runs").iterdir()) == ["prefix-s12", "prefix-s13"]
