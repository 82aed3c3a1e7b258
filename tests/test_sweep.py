"""Sweeps on Optuna: a killed sweep resumes without rerunning finished trials; report tables."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adaprefix.experiments.report import best_per_method, collect_rows, markdown_table, write_report
from adaprefix.experiments.sweep import SweepSpec, _changed_settings, parse_grid
from adaprefix.training import TrainArgs
from conftest import SHARED_DATA

needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")


def test_parse_grid():
    assert parse_grid(["lr=5e-3,1e-2", "prefix_len=8,16"]) == {"lr": [5e-3, 1e-2], "prefix_len": [8, 16]}
    for bad, message in ((["lr"], "expected KEY=V1"), (["seed=1,2"], "cannot be swept"),
                         (["prefix_len=8,x"], "must be ints"), (["lr=1e-2,1e-2"], "repeated")):
        with pytest.raises(ValueError, match=message):
            parse_grid(bad)


def test_resume_accepts_an_older_sweep_only_where_new_settings_hold_their_default():
    spec = SweepSpec(task="cb", methods=["apt"], grid={"lr": [1e-2]}, seeds=[11], output="x",
                     base=TrainArgs(task="cb", output=""))
    now = json.loads(json.dumps(spec.identity(), default=str))
    older = json.loads(json.dumps(now))
    for added in ("gradient_checkpointing", "class_weights", "shots_dev", "train_subset", "eval_subset"):  # unknown to an older adaprefix
        del older["base"][added]
    assert _changed_settings(older, now) == []
    checkpointed = json.loads(json.dumps(now))
    checkpointed["base"]["gradient_checkpointing"] = True
    assert _changed_settings(older, checkpointed) == ["base.gradient_checkpointing"]
    other_lr = json.loads(json.dumps(now))
    other_lr["base"]["lr"] = 3e-2
    other_lr["seeds"] = [11, 12]
    assert _changed_settings(now, other_lr) == ["seeds", "base.lr"]


def _results(tmp_path: Path, name: str, seed: int, dev: float, lr: float, test: float | None = None) -> None:
    run = tmp_path / name
    run.mkdir()
    best = {"val": {"accuracy": dev}, **({"test": {"accuracy": test}} if test is not None else {})}
    (run / "results.json").write_text(json.dumps({
        "task": "rte", "method": "apt", "seed": seed, "selection_metric": "val.accuracy", "best": best,
        "train_args": {"lr": lr, "seed": seed, "output": str(run), "epochs": 3}, "prefix_lengths": [4, 4],
        "trainable_params": 10, "trainable_params_without_head": 8, "wall_s": 2.0, "best_epoch": 1}))


def test_report_groups_seeds_and_computes_spread(tmp_path):
    _results(tmp_path, "a", 11, 0.60, 1e-2)
    _results(tmp_path, "b", 12, 0.70, 1e-2)
    _results(tmp_path, "c", 11, 0.50, 2e-2)
    rows = collect_rows([tmp_path])
    assert len(rows) == 2
    top = rows[0]
    assert top["config"]["lr"] == 1e-2 and top["seeds"] == [11, 12]
    assert top["dev"]["mean"] == pytest.approx(0.65) and top["dev"]["std"] == pytest.approx(0.0707107, abs=1e-6)
    table = markdown_table(rows)
    assert "65.0 ± 7.1" in table and "50.0 ± 0.0" in table
    assert table.splitlines()[2].endswith("| yes |")  # lr 1e-2 is chosen (best mean dev)


def test_report_groups_a_run_from_before_a_setting_existed_with_runs_that_leave_it_at_its_default(tmp_path):
    _results(tmp_path, "old", 11, 0.56, 1e-2)  # its train_args predate eval_subset
    for name, seed, eval_subset in (("new", 12, None), ("subset", 13, 500)):
        _results(tmp_path, name, seed, 0.54, 1e-2)
        path = tmp_path / name / "results.json"
        results = json.loads(path.read_text())
        results["train_args"]["eval_subset"] = eval_subset
        path.write_text(json.dumps(results))
    rows = collect_rows([tmp_path])
    assert sorted(row["seeds"] for row in rows) == [[11, 12], [13]]
    assert next(r for r in rows if r["seeds"] == [13])["config"]["eval_subset"] == 500


def test_written_report_names_runs_relative_to_itself_whatever_the_working_directory(tmp_path, monkeypatch):
    sweep = tmp_path / "results" / "main" / "rte-apt-lr"
    sweep.mkdir(parents=True)
    _results(sweep, "apt-s11", 11, 0.60, 1e-2)
    _results(sweep, "apt-s12", 12, 0.70, 1e-2)
    out = tmp_path / "results" / "main" / "rte-apt-lr"  # as paper.py --collect writes it: beside the sweep folder
    _, by_absolute = write_report([sweep], output=out)
    monkeypatch.chdir(tmp_path)
    _, by_relative = write_report([Path("results/main/rte-apt-lr")], output=Path("results/main/rte-apt-lr"))
    written = json.loads(out.with_suffix(".json").read_text())
    assert by_absolute["rows"][0]["runs"] == by_relative["rows"][0]["runs"] == written["rows"][0]["runs"] \
        == ["rte-apt-lr/apt-s11", "rte-apt-lr/apt-s12"]
    for run in written["rows"][0]["runs"]:  # each entry leads from the JSON's folder to its run
        assert ((out.parent / run) / "results.json").is_file()


def test_ties_on_dev_go_to_fewer_parameters_then_the_smaller_learning_rate():
    def row(lr, params, dev):
        return {"task": "cb", "method": "prefix", "config": {"lr": lr}, "trainable_params_without_head": params,
                "dev": {"mean": dev}}

    for order in (1, -1):  # whatever the row order
        rows = [row(1e-2, 7000, 0.732), row(1e-2, 3000, 0.732), row(2e-2, 3000, 0.732), row(5e-3, 9000, 0.714)][::order]
        chosen = best_per_method(rows)["cb/prefix"]
        assert (chosen["config"]["lr"], chosen["trainable_params_without_head"]) == (1e-2, 3000)
    better = [row(1e-2, 3000, 0.732), row(2e-2, 9000, 0.75)]
    assert best_per_method(better)["cb/prefix"]["dev"]["mean"] == 0.75  # the score comes first


@needs_data
def test_killed_sweep_resumes_without_rerunning_finished_trials(tmp_path):
    out = tmp_path / "sweep"
    cmd = [str(Path(sys.executable).parent / "adaprefix"), "sweep", "--task", "cb", "--method", "prefix",
           "--grid", "lr=1e-2,2e-2,3e-2", "--seeds", "11", "--output", str(out), "--data-dir", str(SHARED_DATA),
           "--limit-train", "16", "--limit-eval", "8", "--epochs", "2", "--max-length", "48", "--batch-size", "8",
           "--no-progress"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not list(out.glob("runs/*/results.json")):
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # mid-sweep: one run finished, the next one under way
    proc.wait()
    finished = {p: p.read_bytes() for p in out.glob("runs/*/results.json")}
    assert len(finished) == 1
    first = next(iter(finished))
    stamp = first.stat().st_mtime_ns

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert first.read_bytes() == finished[first] and first.stat().st_mtime_ns == stamp  # not retrained
    runs = sorted(p.parent.name for p in out.glob("runs/*/results.json"))
    assert runs == ["prefix-lr0.01-s11", "prefix-lr0.02-s11", "prefix-lr0.03-s11"]
    for run in runs:  # every run's log holds each epoch once
        epochs = [json.loads(x)["epoch"] for x in (out / "runs" / run / "metrics.jsonl").read_text().splitlines()]
        assert epochs == [1, 2]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["study"]["trials"]["complete"] == 3
    assert len(summary["rows"]) == 3 and set(summary["chosen"]) == {"cb/prefix"}
    assert "| cb | prefix |" in (out / "summary.md").read_text()
