"""One writer per run folder: a second process training into a folder that is being trained gets a clear error,
and a sweep worker meeting such a folder waits for it and reads its results instead of training it twice (two
workers on one grid sweep did exactly that: Optuna's grid sampler hands out a taken point again at the end)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from adaprefix.experiments.sweep import finished_or_trained
from adaprefix.fileio import RunBusyError, exclusive_run
from adaprefix.training import TrainArgs, train
from conftest import SHARED_DATA

needs_data = pytest.mark.skipif(not SHARED_DATA.is_dir(), reason=f"benchmark data not at {SHARED_DATA}")

HOLDER = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from adaprefix.fileio import exclusive_run
    run = Path(sys.argv[1])
    with exclusive_run(run):
        (run / "holding").write_text("yes")
        time.sleep(float(sys.argv[2]))
        (run / "results.json").write_text(json.dumps({"written_by": "holder"}))
""")


def hold(run: Path, seconds: float) -> subprocess.Popen:
    """Another process that holds ``run``'s lock for ``seconds``, then writes a results.json and lets go."""
    run.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(run), str(seconds)], env=dict(os.environ))
    deadline = time.time() + 60
    while not (run / "holding").exists():
        assert proc.poll() is None and time.time() < deadline, "the lock holder did not start"
        time.sleep(0.05)
    return proc


def tiny_args(run: Path) -> TrainArgs:
    return TrainArgs(task="cb", output=str(run), method="prefix", data_dir=str(SHARED_DATA), epochs=1,
                     limit_train=8, limit_eval=4, max_length=32, batch_size=4, progress=False, resume=True)


def test_a_held_folder_refuses_a_second_writer_and_a_killed_holder_frees_it(tmp_path):
    run = tmp_path / "run"
    proc = hold(run, 60)
    try:
        with pytest.raises(RunBusyError, match="being trained by another process"):
            with exclusive_run(run):
                pass
    finally:
        proc.kill()
        proc.wait()
    with exclusive_run(run):  # an OS lock: the killed holder's is gone at once
        pass


@needs_data
def test_train_refuses_a_folder_in_use_before_touching_it(tmp_path):
    run = tmp_path / "run"
    proc = hold(run, 60)
    try:
        with pytest.raises(RunBusyError):
            train(tiny_args(run))
        assert sorted(p.name for p in run.iterdir() if p.name != ".lock") == ["holding"]  # nothing written
    finally:
        proc.kill()
        proc.wait()


@needs_data
def test_a_sweep_worker_waits_for_the_folder_and_reads_what_the_holder_finished(tmp_path):
    run = tmp_path / "run"
    proc = hold(run, 3)
    t0 = time.time()
    results = finished_or_trained(tiny_args(run))
    proc.wait()
    assert results == {"written_by": "holder"}  # read, not trained: a training run would have its own results
    assert time.time() - t0 > 1.0 and not (run / "metrics.jsonl").exists()
    assert json.loads((run / "results.json").read_text()) == {"written_by": "holder"}
