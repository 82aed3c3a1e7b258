"""paper.py --until: a sweep of runs that cannot be parked (FT) starts no run that would end after the deadline.
The sweep is simulated on a fake clock: runs of 4 epochs of 100 s each, one after another."""
from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import load_benchmark

deadline_mod = load_benchmark("paper_deadline")
T0 = 1_000_000.0


def touch(path: Path, t: float) -> None:
    os.utime(path, (t, t))


class FakeSweep:
    """Trains ``seeds`` in turn from T0, ``epochs`` epochs of ``epoch_s`` each, writing run folders as the
    runner does (folder at start, a metrics.jsonl line per epoch, results.json at the end); each poll is 10 s."""

    def __init__(self, runs: Path, seeds: list[int], epochs: int = 4, epoch_s: float = 100.0, returncode: int = 0,
                 resumed: int = 0):
        self.runs, self.now, self.args, self.terminated_at = runs, T0, ["sweep"], None
        self.events = []
        start = T0
        for i, seed in enumerate(seeds):
            first = resumed if i == 0 else 0  # the first run resumes a checkpoint of an earlier sweep at that epoch
            if first:
                run = runs / f"finetune-s{seed}"
                run.mkdir(parents=True)
                (run / "metrics.jsonl").write_text("".join(json.dumps({"epoch": e + 1}) + "\n" for e in range(first)))
                touch(run / "metrics.jsonl", T0 - 5000)
                touch(run, T0 - 5000)
            self.events.append((start, seed, 0))
            self.events += [(start + (e + 1 - first) * epoch_s, seed, e + 1) for e in range(first, epochs)]
            start += (epochs - first) * epoch_s
        self.epochs, self.final = epochs, returncode
        self.returncode = None

    def clock(self) -> float:
        return self.now

    def poll(self):
        if self.terminated_at is not None:
            return self.returncode
        self.now += 10
        while self.events and self.events[0][0] <= self.now:
            t, seed, epoch = self.events.pop(0)
            run = self.runs / f"finetune-s{seed}"
            if epoch == 0:
                run.mkdir(parents=True, exist_ok=True)  # a resumed run: its config is written again
            else:
                with open(run / "metrics.jsonl", "a") as log:
                    log.write(json.dumps({"epoch": epoch}) + "\n")
                touch(run / "metrics.jsonl", t)
                if epoch == self.epochs:
                    (run / "results.json").write_text("{}")
            touch(run, t)
        if not self.events:
            self.returncode = self.final
        return self.returncode

    def terminate(self):
        self.terminated_at, self.returncode = self.now, -15

    def wait(self):
        return self.returncode


def watch(tmp_path: Path, deadline_after: float, epoch_s: float | None, sweep: FakeSweep | None = None):
    sweep = sweep or FakeSweep(tmp_path / "runs", [11, 12, 13])
    said = []
    stopped = deadline_mod.run_until(sweep, tmp_path / "runs", 4, epoch_s, T0 + deadline_after, poll_s=0,
                                     clock=sweep.clock, say=said.append)
    return stopped, sweep, said


def test_without_a_prior_rate_the_run_that_would_end_late_is_stopped_after_its_first_epoch(tmp_path):
    """Deadline T0 + 1000: s11 (0-400) and s12 (400-800) fit; s13 starts at 800, and after its first epoch (900)
    it would end at 1200, 200 s (3 min) late."""
    old = tmp_path / "runs" / "finetune-s99"  # an earlier sweep's leftover, untouched: not looked at
    old.mkdir(parents=True)
    touch(old, T0 - 500)
    stopped, sweep, said = watch(tmp_path, 1000, None)
    assert stopped and sweep.terminated_at == T0 + 900
    assert said == [f"[paper] {tmp_path}/runs/finetune-s13: cannot be parked, and at epoch 1 of 4 it would end "
                    "3 min after --until; sweep stopped, the run trains in a later session"]
    assert (tmp_path / "runs" / "finetune-s12" / "results.json").is_file()


def test_with_the_main_tables_rate_the_late_run_is_stopped_as_it_starts(tmp_path):
    stopped, sweep, said = watch(tmp_path, 1000, 100.0)
    assert stopped and sweep.terminated_at == T0 + 800  # s13's folder appeared: 800 + 4 x 100 > 1000
    assert "finetune-s13: cannot be parked, and at epoch 0 of 4 it would end 3 min after" in said[0]
    # a run slower than the prior is judged by its own rate once it has one: by the prior s11 ends at 400, inside
    # a deadline of 500, but at 150 s an epoch it would end at 600: stopped after its first epoch
    slow = FakeSweep(tmp_path / "slow" / "runs", [11], 4, 150.0)
    stopped, sweep, said = watch(tmp_path / "slow", 500, 100.0, slow)
    assert stopped and sweep.terminated_at == T0 + 150
    assert "finetune-s11: cannot be parked, and at epoch 1 of 4 it would end 2 min after" in said[0]


def test_a_run_resumed_from_an_older_checkpoint_is_timed_from_the_sweeps_start(tmp_path):
    """s11 resumes at epoch 2 of 4 (logged 5000 s before this sweep): its 2 epochs left end at 200, s12 at 600.
    Timed from its old log it would look 5000 s an epoch and be stopped; from the sweep's start it is not."""
    sweep = FakeSweep(tmp_path / "runs", [11, 12], resumed=2)
    stopped, sweep, said = watch(tmp_path, 650, None, sweep)
    assert not stopped and said == [] and (tmp_path / "runs" / "finetune-s12" / "results.json").is_file()
    sweep = FakeSweep(tmp_path / "late" / "runs", [11], resumed=2)  # with the prior, 0 + 2 x 100 is 50 s late
    stopped, sweep, said = watch(tmp_path / "late", 150, 100.0, sweep)
    assert stopped and sweep.terminated_at == T0 + 10 and "at epoch 2 of 4 it would end 1 min after" in said[0]


def test_a_sweep_that_fits_runs_to_its_end_and_a_failed_one_raises(tmp_path):
    stopped, sweep, said = watch(tmp_path, 1200, 100.0)
    assert not stopped and sweep.terminated_at is None and said == []
    assert all((tmp_path / "runs" / f"finetune-s{s}" / "results.json").is_file() for s in (11, 12, 13))
    with pytest.raises(subprocess.CalledProcessError):
        watch(tmp_path / "failed", 5000, None, FakeSweep(tmp_path / "failed" / "runs", [11], returncode=2))


def test_until_reads_a_clock_time_as_the_next_one_and_an_iso_time_as_given():
    now = dt.datetime(2026, 12, 7, 23, 30, tzinfo=dt.timezone.utc)
    assert deadline_mod.parse_until("01:30", now) - now.timestamp() == 7200
    assert deadline_mod.parse_until("23:45", now) - now.timestamp() == 900
    assert deadline_mod.parse_until("2026-12-08T01:30:00+01:00", now) - now.timestamp() == 3600
    with pytest.raises(ValueError, match="expected HH:MM"):
        deadline_mod.parse_until("half past one", now)


def test_prior_rate_is_the_median_epoch_time_of_the_main_tables_runs(tmp_path):
    for name, wall, epochs in (("conll04-finetune-lr/a", 400.0, 40), ("conll04-finetune-seeds/b", 600.0, 40),
                               ("conll04-finetune-seeds/c", 2000.0, 40), ("conll04-prefix-lr/d", 40.0, 40)):
        run = tmp_path / "main" / name
        run.mkdir(parents=True)
        (run / "results.json").write_text(json.dumps({"wall_s": wall, "epochs": [{}] * epochs}))
    assert deadline_mod.prior_epoch_seconds(tmp_path, "conll04", "finetune") == 15.0  # 10, 15, 50
    assert deadline_mod.prior_epoch_seconds(tmp_path, "multirc", "finetune") is None


def test_paper_runs_only_the_sweeps_of_unparkable_runs_under_until(tmp_path, monkeypatch):
    """paper.py --until: an FT sweep goes through run_until with its epochs and the main table's FT rate; a
    prefix-method sweep (parkable) runs as before."""
    from types import SimpleNamespace

    paper = load_benchmark("paper")
    committed = tmp_path / "results"
    run = committed / "main" / "conll04-finetune-seeds" / "finetune-s12"
    run.mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"wall_s": 1840.0, "epochs": [{}] * 40}))
    calls = []
    monkeypatch.setattr(paper.subprocess, "run", lambda cmd, check: calls.append(("run", cmd[cmd.index("--method") + 1])))
    monkeypatch.setattr(paper.subprocess, "Popen", lambda cmd: ("proc", cmd))
    monkeypatch.setattr(paper.paper_deadline, "run_until",
                        lambda proc, runs, epochs, epoch_s, deadline: calls.append(("until", proc[1][proc[1].index(
                            "--method") + 1], runs, epochs, epoch_s, deadline)))
    ns = SimpleNamespace(output=str(tmp_path / "paper"), data_dir="data", model="minilm", extra=[], methods=None,
                         results=str(committed), dry_run=False, until="2026-12-08T01:30:00+00:00")
    protocol = paper.Protocol(ns)
    protocol.sweep("longer", "conll04-finetune-epochs60", "conll04", "finetune", [], [11, 12, 13],
                   ["--lr", "5e-05", "--epochs", "60"])
    protocol.sweep("longer", "conll04-apt-epochs60", "conll04", "apt", [], [11, 12, 13], ["--epochs", "60"])
    deadline = dt.datetime(2026, 12, 8, 1, 30, tzinfo=dt.timezone.utc).timestamp()
    assert calls == [("until", "finetune", tmp_path / "paper" / "longer" / "conll04-finetune-epochs60" / "runs", 60,
                      46.0, deadline), ("run", "apt")]
    ns.until = None
    paper.Protocol(ns).sweep("main", "conll04-finetune-lr", "conll04", "finetune", ["lr=1e-5"], [11])
    assert calls[-1] == ("run", "finetune")
